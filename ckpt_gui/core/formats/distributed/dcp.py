"""torch.distributed.checkpoint folders (FSDP2, torchtitan, accelerate): ``.metadata`` + ``*.distcp``.

``.metadata`` is a pickle of ``torch.distributed.checkpoint.metadata.Metadata``;
it is read by our own unpickler, never by ``pickle``, and nothing of
torch.distributed is imported. It names every entry of the saved state dict,
flattened (``model.model.layers.0...``, ``optim.state...``): a tensor's global
shape, dtype and chunks (N-d boxes), and for every chunk the file and byte range
holding it. ``planner_data`` maps each flat name back to its nested path, which
is how the top-level groups (``model``, ``optim``, ...) are told apart.

Two chunk encodings exist: the default writes each chunk as a small torch zip
archive of one tensor at the recorded range; ``SerializationFormat.SAFETENSORS``
writes each rank file as byte entries followed by one safetensors file whose
tensors are the chunks, named by their flat names.
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeGuard

from ckpt_gui.core.dtypes import TORCH_TO_SAFETENSORS, nbytes_for
from ckpt_gui.core.errors import CheckpointError
from ckpt_gui.core.formats.distributed.layout import Piece, TensorLayout, covers_exactly
from ckpt_gui.core.pickles import reconstruct
from ckpt_gui.core.pickles.unpickler import Global, PickledObject, load_pickle

NAME = "dcp"
METADATA = ".metadata"
MAX_METADATA_BYTES = 1 << 30
# Top-level state-dict entries that are not model weights (torchtitan, accelerate, DCP's own).
NON_MODEL_GROUPS = ("optim", "optimizer", "lr_scheduler", "dataloader", "train_state", "extra_state")
_CLASS = "torch.distributed.checkpoint.metadata."


@dataclass
class DcpMetadata:
    """What ``.metadata`` says, as plain values."""

    folder: Path
    tensors: dict[str, TensorLayout] = field(default_factory=dict)  # by flat name
    byte_entries: dict[str, Piece] = field(default_factory=dict)
    groups: dict[str, tuple[str, str]] = field(default_factory=dict)  # flat -> (group, inner)
    files: dict[str, int] = field(default_factory=dict)  # referenced file -> size on disk
    warnings: list[str] = field(default_factory=list)

    def group_of(self, flat: str) -> tuple[str, str]:
        if flat in self.groups:
            return self.groups[flat]
        head, _, rest = flat.partition(".")
        return (head, rest) if rest else ("", flat)

    def model_group(self) -> str | None:
        """The group holding the model's weights ("model"), or None: they sit at top level."""
        names = {self.group_of(f)[0] for f in self.tensors}
        if "model" in names and "" not in names:
            return "model"
        return None

    def model_tensors(self, group: str | None = None) -> dict[str, TensorLayout]:
        """The weights under the names the model uses (group prefix removed)."""
        group = group if group is not None else self.model_group()
        out: dict[str, TensorLayout] = {}
        for flat, layout in self.tensors.items():
            top, inner = self.group_of(flat)
            if group is not None:
                if top == group:
                    out[inner] = layout
            elif top not in NON_MODEL_GROUPS:
                out[flat] = layout
        return out


def is_dcp_folder(folder: Path) -> bool:
    return (folder / METADATA).is_file() and any(folder.glob("*.distcp"))


def read_metadata(folder: Path) -> DcpMetadata:
    path = folder / METADATA
    try:
        size = path.stat().st_size
        if size > MAX_METADATA_BYTES:
            raise CheckpointError(path, f"{size:,} bytes: too large for DCP metadata")
        data = path.read_bytes()
    except OSError as exc:
        raise CheckpointError(path, exc.strerror or str(exc)) from None
    root = load_pickle(
        data, name=str(path), reconstruct=reconstruct.reconstruct, build=reconstruct.build
    ).value
    if not (isinstance(root, PickledObject) and root.name == _CLASS + "Metadata"):
        raise CheckpointError(path, f"not DCP metadata (holds {_what(root)})")
    attributes = root.attributes
    entries = attributes.get("state_dict_metadata")
    storage = attributes.get("storage_data")
    if not isinstance(entries, dict) or not isinstance(storage, dict):
        raise CheckpointError(path, "DCP metadata without state_dict_metadata or storage_data")
    result = DcpMetadata(folder)
    planner = attributes.get("planner_data")
    if isinstance(planner, dict):
        for flat, nested in planner.items():
            if isinstance(flat, str) and isinstance(nested, tuple) and len(nested) >= 2:
                result.groups[flat] = (str(nested[0]), ".".join(str(p) for p in nested[1:]))
            elif isinstance(flat, str):
                result.groups[flat] = ("", flat)  # saved at the state dict's top level
    where = _storage_index(path, storage)
    for flat, entry in entries.items():
        if not isinstance(flat, str) or not isinstance(entry, PickledObject):
            raise CheckpointError(path, f"malformed entry {flat!r}")
        if entry.name == _CLASS + "BytesStorageMetadata":
            piece = where.get((flat, None))
            if piece is not None:
                result.byte_entries[flat] = piece
            continue
        if entry.name != _CLASS + "TensorStorageMetadata":
            raise CheckpointError(path, f"entry '{flat}' is a {entry.short}, not a tensor")
        result.tensors[flat] = _tensor_layout(path, flat, entry, where)
    _check_files(result)
    return result


def _storage_index(path: Path, storage: dict[Any, Any]) -> dict[tuple[str, Any], Piece]:
    """(flat name, chunk offsets or None) -> where that chunk's bytes are."""
    where: dict[tuple[str, Any], Piece] = {}
    for index, info in storage.items():
        if not (isinstance(index, PickledObject) and isinstance(info, PickledObject)):
            raise CheckpointError(path, "malformed storage_data entry")
        key = index.attributes
        value = info.attributes
        relative, offset, length = (value.get(k) for k in ("relative_path", "offset", "length"))
        if not (isinstance(relative, str) and _is_count(offset) and _is_count(length)):
            raise CheckpointError(path, f"malformed storage entry for '{key.get('fqn')}'")
        if value.get("transform_descriptors"):
            raise CheckpointError(
                path,
                f"'{key.get('fqn')}' is stored with transforms "
                f"{list(value['transform_descriptors'])}: not supported",
            )
        if "/" in relative or relative.startswith("."):
            raise CheckpointError(path, f"storage path {relative!r} leaves the checkpoint folder")
        chunk = key.get("offset")
        where[(str(key.get("fqn")), tuple(chunk) if chunk is not None else None)] = Piece(
            relative, offset, length
        )
    return where


def _tensor_layout(
    path: Path, flat: str, entry: PickledObject, where: dict[tuple[str, Any], Piece]
) -> TensorLayout:
    attributes = entry.attributes
    shape = attributes.get("size")
    properties = attributes.get("properties")
    chunks = attributes.get("chunks")
    if not (isinstance(shape, tuple) and all(_is_count(d) for d in shape)):
        raise CheckpointError(path, f"'{flat}': malformed size")
    dtype = _dtype(properties)
    if dtype is None:
        raise CheckpointError(path, f"'{flat}': unknown dtype")
    pieces = []
    for chunk in chunks if isinstance(chunks, list) else []:
        box = chunk.attributes if isinstance(chunk, PickledObject) else {}
        offsets, sizes = box.get("offsets"), box.get("sizes")
        if not (_is_box(offsets, shape) and _is_box(sizes, shape)):
            raise CheckpointError(path, f"'{flat}': malformed chunk")
        if any(o + s > d for o, s, d in zip(offsets, sizes, shape, strict=True)):
            raise CheckpointError(path, f"'{flat}': a chunk reaches outside the tensor")
        piece = where.get((flat, tuple(offsets)))
        if piece is None:
            raise CheckpointError(path, f"'{flat}': chunk at {list(offsets)} has no storage entry")
        pieces.append(
            Piece(piece.file, piece.offset, piece.length, box_offsets=offsets, box_sizes=sizes)
        )
    layout = TensorLayout(flat, dtype, shape, tuple(pieces))
    if not covers_exactly(layout):
        covered = sum(p.elements for p in pieces)
        raise CheckpointError(
            path, f"'{flat}': chunks hold {covered:,} of its {layout.numel:,} elements"
        )
    return layout


def _check_files(result: DcpMetadata) -> None:
    """Every referenced file exists and holds every byte range the metadata points at."""
    needed: dict[str, int] = {}
    pieces = [p for t in result.tensors.values() for p in t.pieces]
    for piece in [*pieces, *result.byte_entries.values()]:
        needed[piece.file] = max(needed.get(piece.file, 0), piece.offset + piece.length)
    counts: dict[str, int] = {}
    for piece in pieces:
        counts[piece.file] = counts.get(piece.file, 0) + 1
    for name, end in sorted(needed.items()):
        path = result.folder / name
        try:
            size = path.stat().st_size
        except FileNotFoundError:
            raise CheckpointError(
                path, f"missing: the metadata places {counts.get(name, 0)} chunks in this file"
            ) from None
        if end > size:
            raise CheckpointError(
                path, f"the metadata points at byte {end:,} but the file has {size:,}"
            )
        result.files[name] = size
    strays = sorted(p.name for p in result.folder.glob("*.distcp") if p.name not in needed)
    if strays:
        result.warnings.append(
            f"{len(strays)} .distcp files are not in the metadata ({', '.join(strays[:3])}): "
            "left over from another save? They are ignored"
        )


def safetensors_part(folder: Path, file: str, byte_entries: dict[str, Piece]) -> tuple[int, dict[str, Any]]:
    """Start and header of the safetensors file inside a SAFETENSORS-format rank file.

    The rank file holds its byte entries first, then the safetensors file.
    """
    start = max((p.offset + p.length for p in byte_entries.values() if p.file == file), default=0)
    path = folder / file
    try:
        with path.open("rb") as stream:
            stream.seek(start)
            head = stream.read(8)
            if len(head) != 8:
                raise CheckpointError(path, "file ends before its safetensors header")
            (length,) = struct.unpack("<Q", head)
            if length > 100_000_000:
                raise CheckpointError(path, f"safetensors header of {length:,} bytes: too large")
            header = json.loads(stream.read(length))
    except (OSError, ValueError, UnicodeDecodeError) as exc:
        raise CheckpointError(path, f"unreadable safetensors part ({exc})") from None
    if not isinstance(header, dict):
        raise CheckpointError(path, "safetensors header is not an object")
    return start + 8 + length, header


def _dtype(properties: Any) -> str | None:
    state = properties.state if isinstance(properties, PickledObject) else None
    value = state[0] if isinstance(state, tuple) and state else None
    if isinstance(state, dict):
        value = state.get("dtype")
    if isinstance(value, Global) and value.module == "torch":
        return TORCH_TO_SAFETENSORS.get(value.qualname)
    return None


def _is_count(value: Any) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _is_box(value: Any, shape: tuple[int, ...]) -> TypeGuard[tuple[int, ...]]:
    return isinstance(value, tuple) and len(value) == len(shape) and all(map(_is_count, value))


def _what(value: Any) -> str:
    return value.name if isinstance(value, PickledObject) else type(value).__name__


def nbytes(layout: TensorLayout) -> int:
    return nbytes_for(layout.dtype, layout.numel)
