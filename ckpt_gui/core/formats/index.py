"""Sharded checkpoints: ``*.index.json`` for safetensors and ``.bin`` shards, validated.

The index is checked against the shards themselves: a missing shard, a key
listed but absent, a tensor in two shards, a tensor a shard holds that the index
does not list, and shard paths that leave the folder are all refused. A weight
file beside the index that it does not list is a warning (it is not shown).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from ckpt_gui.core.errors import CheckpointError
from ckpt_gui.core.model import Checkpoint, FileInfo, PickleGlobal, TensorInfo
from ckpt_gui.core.pickles.polyglot import refuse_if_torch_would_unpickle

NAME = "index"
MAX_INDEX_BYTES = 64 * 1024 * 1024
_SHARD_NUMBERING = re.compile(r"^(?P<stem>.+)-(?P<i>\d+)-of-(?P<n>\d+)(?P<ext>\.\w+)$")


def sniff(head: bytes) -> bool:
    stripped = head.lstrip()
    return stripped.startswith(b"{") and b"weight_map" in head


def read(path: Path, root: Path | None = None) -> Checkpoint:
    from ckpt_gui.core.formats import pytorch, safetensors

    base = root or path.parent
    folder = path.parent
    weight_map, index_metadata = load_index(path)
    shards = sorted(set(weight_map.values()))
    files = [FileInfo(path.relative_to(base).as_posix(), path.stat().st_size)]
    tensors: list[TensorInfo] = []
    metadata: dict[str, Any] = {"index": index_metadata} if index_metadata else {}
    pickle_globals: dict[str, PickleGlobal] = {}
    seen_in: dict[str, str] = {}
    kinds: set[str] = set()
    for shard in shards:
        shard_path = resolve_shard(folder, shard, path)
        relative = shard_path.relative_to(base).as_posix()
        head = _head(shard_path)
        if safetensors.sniff(head):
            # Judged as torch.load would judge it, like a file opened on its own.
            refuse_if_torch_would_unpickle(shard_path, head, shard_path.stat().st_size)
            shard_tensors, shard_meta, size = safetensors.read_file(shard_path, relative)
            if shard_meta:
                metadata.setdefault("__metadata__", dict(shard_meta))
            kinds.add("safetensors")
        elif pytorch.sniff(head):
            shard_tensors, shard_meta, globals_, kind = pytorch.read_file(shard_path, relative)
            size = shard_path.stat().st_size
            pickle_globals.update({g.name: g for g in globals_})
            kinds.add(f"pytorch-{kind}")
        else:
            raise CheckpointError(shard_path, "shard is neither safetensors nor a PyTorch file")
        files.append(FileInfo(relative, size))
        for tensor in shard_tensors:
            if tensor.name in seen_in:
                raise CheckpointError(
                    path, f"tensor '{tensor.name}' is in both {seen_in[tensor.name]} and {shard}"
                )
            seen_in[tensor.name] = shard
        tensors.extend(shard_tensors)
    # Checked after every shard was read, so that a duplicate is named as such.
    for tensor in tensors:
        listed = weight_map.get(tensor.name)
        if listed is None:
            raise CheckpointError(
                path,
                f"shard {seen_in[tensor.name]} holds '{tensor.name}', which the index does not list",
            )
        if listed != seen_in[tensor.name]:
            raise CheckpointError(
                path, f"index puts '{tensor.name}' in {listed} but it is in {seen_in[tensor.name]}"
            )
    absent = [key for key in weight_map if key not in seen_in]
    if absent:
        more = f" (and {len(absent) - 1} more)" if len(absent) > 1 else ""
        raise CheckpointError(
            path,
            f"index lists '{absent[0]}' in {weight_map[absent[0]]} but the shard lacks it{more}",
        )
    _check_numbered_siblings(folder, shards, path)
    warnings = _unlisted_siblings(folder, shards)
    order = {name: i for i, name in enumerate(weight_map)}
    tensors.sort(key=lambda t: order[t.name])
    format_name = "+".join(sorted(kinds)) if kinds else "empty"
    return Checkpoint(
        source=str(path),
        format=f"{format_name}-sharded",
        tensors=tuple(tensors),
        files=tuple(files),
        root=base,
        metadata=metadata,
        warnings=tuple(warnings),
        pickle_globals=tuple(pickle_globals.values()),
    )


def load_index(path: Path) -> tuple[dict[str, str], dict[str, Any]]:
    size = path.stat().st_size
    if size > MAX_INDEX_BYTES:
        raise CheckpointError(path, f"index file is {size:,} bytes: too large to be an index")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError:
        raise CheckpointError(path, "index file is not UTF-8 text") from None
    except json.JSONDecodeError as exc:
        raise CheckpointError(
            path, f"index is not valid JSON ({exc.msg} at byte {exc.pos})"
        ) from None
    if not isinstance(data, dict):
        raise CheckpointError(path, "index is not a JSON object")
    weight_map = data.get("weight_map")
    if not isinstance(weight_map, dict) or not weight_map:
        raise CheckpointError(path, "index has no weight_map object")
    for key, shard in weight_map.items():
        if not isinstance(shard, str) or not shard:
            raise CheckpointError(path, f"weight_map entry for '{key}' is not a file name")
    metadata = data.get("metadata")
    return weight_map, metadata if isinstance(metadata, dict) else {}


def resolve_shard(folder: Path, shard: str, index_path: Path) -> Path:
    candidate = Path(shard)
    if candidate.is_absolute() or ".." in candidate.parts or "\\" in shard:
        raise CheckpointError(index_path, f"shard path '{shard}' leaves the checkpoint folder")
    # Checked lexically, not with resolve(): in the HF cache every shard is a
    # symlink into ../../blobs, which is fine.
    resolved = folder / candidate
    if not resolved.exists():
        raise CheckpointError(index_path, f"shard {shard} is missing")
    if not resolved.is_file():
        raise CheckpointError(index_path, f"shard {shard} is not a regular file")
    return resolved


def _check_numbered_siblings(folder: Path, shards: list[str], index_path: Path) -> None:
    """A file named like one of this set (``-0000k-of-0000n``) but not in the index is refused."""
    patterns = {
        (m["stem"], m["n"], m["ext"]) for s in shards if (m := _SHARD_NUMBERING.match(Path(s).name))
    }
    listed = {Path(s).name for s in shards}
    for sibling in folder.iterdir():
        match = _SHARD_NUMBERING.match(sibling.name)
        if (
            match
            and (match["stem"], match["n"], match["ext"]) in patterns
            and sibling.name not in listed
        ):
            raise CheckpointError(
                index_path, f"shard {sibling.name} is in the folder but not in the index"
            )


def _unlisted_siblings(folder: Path, shards: list[str]) -> list[str]:
    """Weight files of the shards' kind beside the index but not in it: not shown, say so.

    A leftover of an earlier save (another shard count, or the unsharded
    ``model.safetensors``) looks like part of the checkpoint but no loader reads
    it; opening without a word would let the user believe it is included.
    """
    suffixes = {Path(s).suffix for s in shards if Path(s).suffix}
    listed = {(folder / s).resolve() for s in shards}
    unlisted = sorted(
        entry.name
        for entry in folder.iterdir()
        if entry.suffix in suffixes and entry.is_file() and entry.resolve() not in listed
    )
    if not unlisted:
        return []
    more = f" (and {len(unlisted) - 1} more)" if len(unlisted) > 1 else ""
    return [
        f"{unlisted[0]}{more} is beside the index but not in it "
        "(left from an earlier save?): not shown"
    ]


def _head(path: Path) -> bytes:
    with path.open("rb") as stream:
        return stream.read(16)
