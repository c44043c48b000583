"""PyTorch pickles (.bin/.pt/.pth/.ckpt): zip, legacy and TorchScript, read without running them.

``core/pickles`` unpickles the file with our own interpreter (nothing the file
names is imported or called), finds its weight sets (state dicts, whole
``nn.Module`` objects, TorchScript modules, optimizer state) and the rest of
its contents. The chosen set's tensors become ``TensorInfo`` rows that point
straight at their bytes in the file (a zip record or the legacy stream), so
statistics, scans, diffs and exports read them without torch.

A file that names code-running globals (``os.system``, ``eval``...) is still
refused: there is no legitimate reason for a checkpoint to hold them, and
``pickle-risk`` explains what they are.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ckpt_gui.core.dtypes import BITS_PER_ELEMENT
from ckpt_gui.core.errors import CheckpointError, UnsafePickleError
from ckpt_gui.core.model import Checkpoint, FileInfo, PickleGlobal, TensorInfo
from ckpt_gui.core.pickles import contents
from ckpt_gui.core.pickles.archive import ZIP_MAGIC, StorageSpan, TorchArchive, read_torch_file
from ckpt_gui.core.pickles.groups import CODE, classify
from ckpt_gui.core.pickles.reconstruct import TensorRef
from ckpt_gui.core.pickles.weights import WeightSet, find_weight_sets, select

NAME = "pytorch"


def sniff(head: bytes) -> bool:
    """Zip archives (torch >= 1.6) or a pickle protocol-2+ stream (legacy)."""
    return head.startswith(ZIP_MAGIC) or (len(head) >= 2 and head[0] == 0x80 and 2 <= head[1] <= 5)


@dataclass
class TorchFileContents:
    tensors: list[TensorInfo]
    metadata: dict[str, Any]
    pickle_globals: list[PickleGlobal]
    kind: str
    config: dict[str, Any] | None
    warnings: list[str]


def read(path: Path, root: Path | None = None, weights_key: str | None = None) -> Checkpoint:
    base = root or path.parent
    relative = path.relative_to(base).as_posix()
    found = read_contents(path, relative, weights_key)
    return Checkpoint(
        source=str(path),
        format=f"{NAME}-{found.kind}",
        tensors=tuple(found.tensors),
        files=(FileInfo(relative, path.stat().st_size),),
        root=base,
        metadata=found.metadata,
        warnings=tuple(found.warnings),
        config=found.config,
        pickle_globals=tuple(found.pickle_globals),
    )


def read_file(path: Path, relative: str) -> tuple[list[TensorInfo], dict[str, Any], list[Any], str]:
    """Tensors, metadata, pickle globals and "zip"/"legacy"/"torchscript" for one shard."""
    found = read_contents(path, relative, None)
    return found.tensors, found.metadata, found.pickle_globals, found.kind


def read_contents(path: Path, relative: str, weights_key: str | None) -> TorchFileContents:
    """Everything ckpt-gui shows of one torch file; ``weights_key`` picks the weight set."""
    try:
        archive = read_torch_file(path)
    except CheckpointError:
        # A file we cannot read may still be one torch would run.
        refuse_if_dangerous(path, lambda: _scan_globals(path))
        raise
    return archive_contents(archive, relative, weights_key)


def archive_contents(
    archive: TorchArchive, relative: str, weights_key: str | None
) -> TorchFileContents:
    """What ``read_contents`` shows of an archive, however it was read (a local file or
    ``pickles/listing.py`` over a remote one): one place decides, so both show the same."""
    path = archive.path
    pickle_globals = [classify(name) for name in dict.fromkeys(archive.globals)]
    dangers = [g.name for g in pickle_globals if g.group == CODE]
    if dangers:
        raise UnsafePickleError(path, dangers)
    sets = find_weight_sets(archive.value)
    chosen = select(sets, weights_key)
    if chosen is None:
        raise CheckpointError(path, _no_weights_problem(archive, sets, weights_key))
    tensors = [
        _tensor_info(path, name, ref, archive, relative) for name, ref in chosen.tensors.items()
    ]
    metadata = _metadata(archive, sets, chosen)
    config = contents.find_config(archive.value, chosen)
    if config is not None:
        metadata["embedded_config"] = True
    warnings = _warnings(pickle_globals, sets, chosen)
    return TorchFileContents(tensors, metadata, pickle_globals, archive.kind, config, warnings)


def _scan_globals(path: Path) -> list[str]:
    from ckpt_gui.core.pickles.opcodes import scan_pickle_file

    return scan_pickle_file(path).globals


def refuse_if_dangerous(path: Path, scan: Callable[[], list[str]]) -> None:
    """Raise UnsafePickleError if ``scan()`` (the opcode walk's globals) names code that runs."""
    try:
        names = scan()
    except CheckpointError:
        return
    dangers = [name for name in names if classify(name).group == CODE]
    if dangers:
        raise UnsafePickleError(path, dangers)


def _no_weights_problem(archive: TorchArchive, sets: list[WeightSet], key: str | None) -> str:
    if key is not None and sets:
        available = ", ".join(repr(w.path) for w in sets)
        return f"no weight set at key {key!r} (the file has {available})"
    value = archive.value
    if isinstance(value, dict) and not value:
        return "contains an empty dict: no tensors"
    if isinstance(value, dict):
        return "no state dict found (no entry holds a dict of tensors or a model)"
    return f"contains {_kind(value)}, not a state dict or a model"


def _kind(value: Any) -> str:
    name = getattr(value, "name", None)
    return f"a {name}" if isinstance(name, str) else f"a {type(value).__name__}"


def _tensor_info(
    path: Path, name: str, ref: TensorRef, archive: TorchArchive, relative: str
) -> TensorInfo:
    storage = ref.storage
    span: StorageSpan | None = archive.storages.get(getattr(storage, "key", ""))
    if span is None:
        raise CheckpointError(path, f"tensor '{name}' has no storage in the file")
    bits = BITS_PER_ELEMENT.get(span.dtype, 8)
    if ref.extent() > span.numel:
        raise CheckpointError(
            path,
            f"tensor '{name}' reaches element {ref.extent():,} of a storage of {span.numel:,}",
        )
    nbytes = (ref.numel * bits + 7) // 8
    start = span.offset + ref.offset * bits // 8
    contiguous = ref.contiguous
    return TensorInfo(
        name=name,
        dtype=span.dtype,
        shape=ref.shape,
        nbytes=nbytes,
        file=relative,
        offset=start if contiguous else None,
        storage=span.key,
        storage_start=span.offset,
        storage_offset=ref.offset,
        stride=ref.stride,
    )


def _metadata(archive: TorchArchive, sets: list[WeightSet], chosen: WeightSet) -> dict[str, Any]:
    metadata: dict[str, Any] = {}
    value = archive.value
    if isinstance(value, dict) and chosen.path:
        # The other top-level entries, one line each (epoch, step, args...).
        first = chosen.path.split(".", 1)[0]
        for key, item in value.items():
            if isinstance(key, str) and key != first:
                metadata[key] = summarize(item, sets)
    if chosen.path:
        metadata["state_dict_key"] = chosen.path
    metadata["weight_sets"] = [w.summary() for w in sets]
    metadata["weight_set"] = chosen.path
    if chosen.module_classes:
        metadata["module_classes"] = dict(chosen.module_classes)
    metadata["pickle_contents"] = contents.render(value, sets)
    return metadata


def summarize(value: Any, sets: list[WeightSet]) -> Any:
    """A short, JSON-friendly description of a non-weight checkpoint entry."""
    rendered = contents.render(value, sets)
    if isinstance(rendered, dict) and "__class__" not in rendered:
        if "param_groups" in rendered and "state" in rendered:
            groups = rendered["param_groups"]
            return f"optimizer state ({len(groups)} parameter groups)"
        if len(rendered) > 50 or not all(
            v is None or isinstance(v, bool | int | float | str) for v in rendered.values()
        ):
            return f"dict with {len(rendered)} entries"
    if isinstance(value, list | tuple):
        return f"{type(value).__name__} of {len(value)} items"
    return rendered


def _warnings(globals_: list[PickleGlobal], sets: list[WeightSet], chosen: WeightSet) -> list[str]:
    notes: list[str] = []
    classes = [g.name for g in globals_ if g.group == "class"]
    if classes:
        shown = ", ".join(classes[:3]) + (
            f" and {len(classes) - 3} more" if len(classes) > 3 else ""
        )
        notes.append(
            f"read without running it: torch.load would import {shown} "
            "(weights_only=True refuses the file)"
        )
    if len(sets) > 1:
        others = ", ".join(repr(w.path or "<top level>") for w in sets if w is not chosen)
        notes.append(
            f"showing weight set {chosen.path or '<top level>'!r}; the file also holds {others} "
            "(choose with --key)"
        )
    return notes
