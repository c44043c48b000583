"""DeepSpeed ZeRO checkpoints (stages 1-3): ``latest`` + ``global_step<N>/`` of ``.pt`` files.

The ``.pt`` files are torch pickles naming DeepSpeed classes (``LossScaler``,
``ZeroStageEnum``, ``fragment_address``); they are read by our own unpickler,
so DeepSpeed need not be installed and none of its code runs.

The model-states file (``mp_rank_00_model_states.pt``; ZeRO-3: one
``zero_pp_rank_<r>_mp_rank_00_model_states.pt`` per rank) names every
parameter with its shape (``param_shapes``, one ordered dict per optimizer
group) and holds the module's own bf16/fp16 weights (empty placeholders under
ZeRO-3). Every rank's optimizer-states file holds its flat fp32 partition of
each group. The full fp32 weights are rebuilt as DeepSpeed's own
``zero_to_fp32.py`` does, as byte ranges rather than tensors:

- ZeRO-1/2: a group's flat vector is the ranks' partitions end to end; the
  parameters follow each other in it (plus any ``param_alignment_paddings``),
  and the end is padded to a multiple of ``2 * world_size``.
- ZeRO-3: every parameter is split into ``ceil(numel / world_size)`` elements
  per rank (the last rank padded); rank r's fragment is the next run of that
  many elements of its groups laid end to end.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ckpt_gui.core.errors import CheckpointError
from ckpt_gui.core.formats.distributed.layout import Piece, TensorLayout
from ckpt_gui.core.pickles.archive import TorchArchive, read_torch_file
from ckpt_gui.core.pickles.reconstruct import TensorRef
from ckpt_gui.core.pickles.unpickler import PickledObject

NAME = "deepspeed"
FP32 = "fp32"
MODULE = "module"
_RANK = re.compile(r"zero_pp_rank_(\d+)_")
_ITEM = {"F32": 4, "F16": 2, "BF16": 2, "F64": 8, "I64": 8, "I32": 4, "U8": 1, "I8": 1, "BOOL": 1}


@dataclass
class DeepSpeedCheckpoint:
    folder: Path  # the global_step folder
    tag: str
    tags: list[str]
    stage: int
    world_size: int
    weight_sets: dict[str, dict[str, TensorLayout]] = field(default_factory=dict)
    facts: dict[str, Any] = field(default_factory=dict)
    files: list[str] = field(default_factory=list)


def find_tags(folder: Path) -> list[str]:
    return sorted(
        (p.name for p in folder.iterdir() if p.is_dir() and _model_files(p)),
        key=_natural,
    )


def is_deepspeed_folder(folder: Path) -> bool:
    if (folder / "latest").is_file() and any((folder / t).is_dir() for t in find_tags(folder)):
        return True
    return bool(_model_files(folder)) and bool(_optim_files(folder))


def latest_tag(folder: Path) -> str | None:
    """The tag the ``latest`` file of ``folder`` names (what DeepSpeed loads), or None."""
    latest = folder / "latest"
    if not latest.is_file():
        return None
    return latest.read_text(encoding="utf-8", errors="replace").strip() or None


def resolve(folder: Path, tag: str | None = None) -> tuple[Path, str, list[str]]:
    """The step folder to read, its tag, and the tags beside it.

    ``folder`` is the top folder (``tag``, else what ``latest`` names, else the last
    tag) or one step folder (its own tag; another ``tag`` is refused: its pieces
    would lie outside the folder the checkpoint was opened from).
    """
    if _model_files(folder):
        tags = find_tags(folder.parent) if folder.parent != folder else []
        if tag is not None and tag != folder.name:
            raise CheckpointError(
                folder,
                f"is the folder of tag {folder.name!r}; open {folder.parent} to choose tag {tag!r}",
            )
        return folder, folder.name, tags
    tags = find_tags(folder)
    if tag is not None:
        if tag not in tags:
            raise CheckpointError(folder, f"no tag {tag!r} (have {', '.join(tags) or 'none'})")
        return folder / tag, tag, tags
    tag = latest_tag(folder) or (tags[-1] if tags else None)
    if not tag or not (folder / tag).is_dir():
        raise CheckpointError(
            folder / "latest", f"names tag {tag!r}, but there is no such folder (have {tags})"
        )
    return folder / tag, tag, tags


def read(folder: Path, tag: str | None = None) -> DeepSpeedCheckpoint:
    """Read the step folder ``tag`` of ``folder``; piece files are relative to ``folder``."""
    step, tag, tags = resolve(folder, tag)
    model_files = _model_files(step)
    optim_files = _optim_files(step)
    if not model_files:
        raise CheckpointError(step, "no *model_states.pt file: not a DeepSpeed checkpoint")
    if not optim_files:
        raise CheckpointError(step, "no *optim_states.pt files: the fp32 weights are missing")
    model = read_torch_file(model_files[0])
    states = _dict(model, "model states")
    optims = [read_torch_file(p) for p in optim_files]
    optim_states = [_dict(o, "optimizer states").get("optimizer_state_dict") for o in optims]
    first = optim_states[0]
    if not isinstance(first, dict):
        raise CheckpointError(optim_files[0], "no optimizer_state_dict")
    stage = _int(first.get("zero_stage"))
    counts = first.get("partition_count")
    world = max(counts) if isinstance(counts, list) and counts else _int(counts)
    if stage not in (1, 2, 3) or world < 1:
        raise CheckpointError(optim_files[0], f"unknown ZeRO stage {stage} / world size {world}")
    if len(optims) != world:
        raise CheckpointError(
            step,
            f"the optimizer states say {world} ranks, but the folder has "
            f"{len(optims)} *optim_states.pt files",
        )
    if stage == 3 and len(model_files) != world:
        raise CheckpointError(
            step, f"ZeRO-3 with {world} ranks needs {world} model-states files, found "
            f"{len(model_files)}"
        )
    result = DeepSpeedCheckpoint(step, tag, tags, stage, world)
    result.files = [p.relative_to(folder).as_posix() for p in [*model_files, *optim_files]]
    shapes = _param_shapes(model_files[0], states)
    flat_key = "fp32_flat_groups" if stage == 3 else "single_partition_of_fp32_groups"
    partitions = []
    for path, archive, state in zip(optim_files, optims, optim_states, strict=True):
        groups = state.get(flat_key) if isinstance(state, dict) else None
        if not isinstance(groups, list) or not all(isinstance(g, TensorRef) for g in groups):
            raise CheckpointError(path, f"no {flat_key} in the optimizer states")
        partitions.append([_span(path, archive, g, folder) for g in groups])
    if stage == 3:
        fp32 = _zero3(step, shapes, partitions, world)
    else:
        paddings = first.get("param_alignment_paddings")
        fp32 = _zero2(step, shapes, partitions, world, paddings if isinstance(paddings, list) else None)
    module = _module_tensors(model_files[0], model, states, folder)
    buffers = states.get("buffer_names") or []
    for name in buffers if isinstance(buffers, list) else []:
        if name in module:  # zero_to_fp32 adds buffers, widened to float32
            fp32[name] = TensorLayout(name, "F32", module[name].shape, module[name].pieces)
    shared = states.get("shared_params")
    for target, source in (shared.items() if isinstance(shared, dict) else []):
        if source in fp32:
            fp32[str(target)] = TensorLayout(str(target), "F32", fp32[source].shape, fp32[source].pieces)
    result.weight_sets[FP32] = fp32
    if stage < 3 and module:
        result.weight_sets[MODULE] = module
    result.facts = {
        "zero_stage": stage,
        "world_size": world,
        "tag": tag,
        "tags": tags,
        # What DeepSpeed's load_checkpoint would pick; for a step folder, its parent's.
        "latest": latest_tag(folder if step != folder else folder.parent),
        "step_folder": step == folder,  # opened from one tag's folder: no other tag to pick
        "ds_version": states.get("ds_version"),
        "global_steps": states.get("global_steps"),
        "frozen_parameters": len(states.get("frozen_param_shapes") or {}),
    }
    return result


def _model_files(folder: Path) -> list[Path]:
    try:
        found = [p for p in folder.iterdir() if p.name.endswith("model_states.pt")]
    except OSError:
        return []
    return sorted(found, key=lambda p: _natural(p.name))


def _optim_files(folder: Path) -> list[Path]:
    try:
        found = [p for p in folder.iterdir() if p.name.endswith("optim_states.pt")]
    except OSError:
        return []
    return sorted(found, key=lambda p: _natural(p.name))


def _natural(text: str) -> list[Any]:
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", text)]


def _dict(archive: TorchArchive, what: str) -> dict[str, Any]:
    if not isinstance(archive.value, dict):
        raise CheckpointError(archive.path, f"{what} file holds no dict")
    return archive.value


def _int(value: Any) -> int:
    if isinstance(value, PickledObject) and value.args:  # an IntEnum rebuilt from its value
        value = value.args[0]
    return value if isinstance(value, int) and not isinstance(value, bool) else -1


def _param_shapes(path: Path, states: dict[str, Any]) -> list[dict[str, tuple[int, ...]]]:
    groups = states.get("param_shapes")
    if isinstance(groups, dict):
        groups = [groups]
    if not isinstance(groups, list) or not all(isinstance(g, dict) for g in groups):
        raise CheckpointError(path, "no param_shapes: cannot name the flat fp32 weights")
    out = []
    for group in groups:
        checked: dict[str, tuple[int, ...]] = {}
        for name, shape in group.items():
            if not (isinstance(shape, tuple) and all(isinstance(d, int) and d >= 0 for d in shape)):
                raise CheckpointError(path, f"parameter '{name}': malformed shape")
            checked[str(name)] = shape
        out.append(checked)
    return out


@dataclass(frozen=True)
class _Flat:
    """A rank's flat fp32 partition of one group: ``numel`` floats at ``offset`` in ``file``."""

    file: str
    offset: int
    numel: int


def _span(path: Path, archive: TorchArchive, ref: TensorRef, root: Path) -> _Flat:
    if ref.dtype != "F32" or len(ref.shape) != 1 or not ref.contiguous:
        raise CheckpointError(path, f"fp32 partition is {ref.dtype} {list(ref.shape)}, not flat F32")
    span = archive.storages.get(ref.storage.key)
    if span is None or (ref.offset + ref.numel) * 4 > span.nbytes:
        raise CheckpointError(path, "fp32 partition runs past its storage")
    return _Flat(path.relative_to(root).as_posix(), span.offset + ref.offset * 4, ref.numel)


def _take(flats: list[_Flat], start: int, count: int, dest: int) -> list[Piece]:
    """Pieces for ``count`` elements from ``start`` of ``flats`` laid end to end."""
    pieces = []
    base = 0
    for flat in flats:
        if count <= 0:
            break
        if start < base + flat.numel:
            local = max(0, start - base)
            n = min(flat.numel - local, count)
            pieces.append(
                Piece(flat.file, flat.offset + local * 4, n * 4, flat_start=dest, flat_count=n)
            )
            start += n
            dest += n
            count -= n
        base += flat.numel
    return pieces


def _zero2(
    step: Path,
    shapes: list[dict[str, tuple[int, ...]]],
    partitions: list[list[_Flat]],
    world: int,
    paddings: list[Any] | None,
) -> dict[str, TensorLayout]:
    out: dict[str, TensorLayout] = {}
    for group, params in enumerate(shapes):
        if any(len(p) <= group for p in partitions):
            raise CheckpointError(step, f"a rank has no fp32 partition for group {group}")
        flats = [p[group] for p in partitions]
        available = sum(f.numel for f in flats)
        offset = 0
        for index, (name, shape) in enumerate(params.items()):
            numel = math.prod(shape)
            pieces = _take(flats, offset, numel, 0)
            if sum(p.flat_count for p in pieces) != numel:
                raise CheckpointError(
                    step, f"fp32 partitions end inside '{name}' ({available:,} elements)"
                )
            out[name] = TensorLayout(name, "F32", shape, tuple(pieces))
            offset += numel
            if paddings is not None and group < len(paddings):
                pads = paddings[group]
                offset += pads[index] if isinstance(pads, list) and index < len(pads) else 0
        align = 2 * world
        if align * math.ceil(offset / align) != align * math.ceil(available / align):
            raise CheckpointError(
                step, f"group {group}: the parameters use {offset:,} of {available:,} fp32 elements"
            )
    return out


def _zero3(
    step: Path, shapes: list[dict[str, tuple[int, ...]]], partitions: list[list[_Flat]], world: int
) -> dict[str, TensorLayout]:
    out: dict[str, TensorLayout] = {}
    offset = 0
    for params in shapes:
        for name, shape in params.items():
            numel = math.prod(shape)
            per_rank = math.ceil(numel / world)
            pieces: list[Piece] = []
            for rank, flats in enumerate(partitions):
                dest = rank * per_rank
                count = min(per_rank, numel - dest)
                if count > 0:
                    pieces += _take(flats, offset, count, dest)
            if sum(p.flat_count for p in pieces) != numel:
                raise CheckpointError(step, f"fp32 partitions end inside '{name}'")
            out[name] = TensorLayout(name, "F32", shape, tuple(pieces))
            offset += per_rank
    available = sum(f.numel for f in partitions[0])
    if offset != available:
        raise CheckpointError(
            step, f"the parameters use {offset * world:,} of {available * world:,} fp32 elements"
        )
    return out


def _module_tensors(
    path: Path, archive: TorchArchive, states: dict[str, Any], root: Path
) -> dict[str, TensorLayout]:
    """The module's own weights in the model-states file (bf16/fp16 under ZeRO-1/2)."""
    module = states.get("module")
    out: dict[str, TensorLayout] = {}
    if not isinstance(module, dict):
        return out
    file = path.relative_to(root).as_posix()
    for name, ref in module.items():
        if not isinstance(ref, TensorRef) or ref.numel == 0 or not ref.contiguous:
            continue
        item = _ITEM.get(ref.dtype)
        span = archive.storages.get(ref.storage.key)
        if item is None or span is None or (ref.offset + ref.numel) * item > span.nbytes:
            continue
        piece = Piece(
            file, span.offset + ref.offset * item, ref.numel * item, encoding="raw",
            key=ref.dtype, flat_start=0, flat_count=ref.numel,
        )
        out[str(name)] = TensorLayout(str(name), ref.dtype, ref.shape, (piece,))
    return out
