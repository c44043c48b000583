"""Distributed checkpoints as a ``Checkpoint``: the full tensors of one weight set.

DCP: the weight sets are the state dict's top-level groups holding tensors
(``model`` by default; ``optim`` and the others are summarised, not listed).
DeepSpeed: ``fp32`` (the master weights rebuilt from every rank, what
``zero_to_fp32.py`` gives; the default) and, under ZeRO-1/2, ``module`` (the
bf16/fp16 weights the engine held). A DeepSpeed folder holds one checkpoint per
tag (``global_step<N>/``): ``tag`` picks one (default: what ``latest`` names), and
the chosen tag is in ``metadata["deepspeed"]["tag"]``. ``layouts`` gives the
chosen set's pieces, of the chosen tag, back to the value readers and exports.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ckpt_gui.core.errors import CheckpointError
from ckpt_gui.core.formats.distributed import dcp, deepspeed
from ckpt_gui.core.formats.distributed.layout import Piece, TensorLayout
from ckpt_gui.core.model import Checkpoint, FileInfo, TensorInfo

FORMATS = ("dcp", "deepspeed")
TOP_LEVEL = "(top level)"  # torchtitan saves the model's weights at the state dict's top level


def is_distributed(checkpoint: Checkpoint) -> bool:
    return checkpoint.format.split("-", 1)[0] in FORMATS


def read(
    folder: Path, kind: str, weight_set: str | None = None, tag: str | None = None
) -> Checkpoint:
    """``folder`` as a ``Checkpoint`` of ``weight_set`` (DeepSpeed: of the step folder ``tag``)."""
    if tag is not None and kind != "deepspeed":
        raise CheckpointError(folder, f"--tag chooses a DeepSpeed tag; this is a {kind} folder")
    layouts, facts, sets, chosen, files, warnings = _read(folder, kind, weight_set, tag)
    tensors = tuple(
        TensorInfo(name, layout.dtype, layout.shape, dcp.nbytes(layout), layout.pieces[0].file)
        if layout.pieces
        else TensorInfo(name, layout.dtype, layout.shape, 0, "")
        for name, layout in layouts.items()
    )
    metadata: dict[str, Any] = {
        kind: facts,
        "weight_set": chosen,
        "weight_sets": [_summary(name, kind, found) for name, found in sets.items()],
        "chunks": {
            name: {"count": len(layout.pieces), "files": list(layout.files)}
            for name, layout in layouts.items()
        },
    }
    fmt = kind if kind == "dcp" else f"deepspeed-zero{facts['zero_stage']}"
    return Checkpoint(
        source=str(folder),
        format=fmt,
        tensors=tensors,
        files=tuple(FileInfo(name, size) for name, size in files.items()),
        root=folder,
        metadata=metadata,
        warnings=tuple(warnings),
    )


@dataclass(frozen=True)
class TagChoice:
    """The DeepSpeed tag a checkpoint shows, the others beside it, and what ``latest`` names."""

    tag: str
    tags: tuple[str, ...]
    latest: str | None
    step_folder: bool  # opened from the tag's own folder: the others need its parent opened

    @property
    def others(self) -> tuple[str, ...]:
        return tuple(t for t in self.tags if t != self.tag)

    @property
    def choosable(self) -> bool:
        """More than one tag, and opened from the folder holding them all."""
        return not self.step_folder and len(self.tags) > 1

    def describe(self) -> str:
        """``global_step2 (named by latest)`` or ``global_step1 (latest names global_step2)``."""
        if self.latest == self.tag:
            return f"{self.tag} (named by latest)"
        if self.latest:
            return f"{self.tag} (latest names {self.latest})"
        return f"{self.tag} (no latest file)"


def tag_choice(checkpoint: Checkpoint) -> TagChoice | None:
    """The tag facts of a DeepSpeed checkpoint (None for anything else)."""
    facts = checkpoint.metadata.get("deepspeed")
    if not isinstance(facts, dict) or not isinstance(facts.get("tag"), str):
        return None
    tags = facts.get("tags")
    latest = facts.get("latest")
    return TagChoice(
        facts["tag"],
        tuple(str(t) for t in tags) if isinstance(tags, list) else (facts["tag"],),
        latest if isinstance(latest, str) else None,
        bool(facts.get("step_folder")),
    )


def _summary(name: str, kind: str, layouts: dict[str, TensorLayout]) -> dict[str, Any]:
    """One weight set as the pickle reader describes its own (``pickles/weights.py``)."""
    weights = name in ("model", TOP_LEVEL, deepspeed.FP32, deepspeed.MODULE)
    return {
        "key": name,
        "kind": f"{kind} {'weights' if weights else 'state'}",
        "tensors": len(layouts),
        "parameters": sum(layout.numel for layout in layouts.values()),
        "class": None,
    }


def layouts(checkpoint: Checkpoint) -> tuple[dict[str, TensorLayout], dict[str, Piece]]:
    """The pieces of every tensor of ``checkpoint`` (as read), and DCP's byte entries."""
    assert checkpoint.root is not None
    kind = checkpoint.format.split("-", 1)[0]
    chosen = str(checkpoint.metadata.get("weight_set"))
    if kind == "dcp":
        meta = dcp.read_metadata(checkpoint.root)
        group = None if chosen == TOP_LEVEL else chosen
        return meta.model_tensors(group), meta.byte_entries
    tag = checkpoint.metadata.get("deepspeed", {}).get("tag")
    found = deepspeed.read(checkpoint.root, tag)
    return found.weight_sets[chosen], {}


def _read(
    folder: Path, kind: str, weight_set: str | None, tag: str | None = None
) -> tuple[
    dict[str, TensorLayout],
    dict[str, Any],
    dict[str, dict[str, TensorLayout]],
    str,
    dict[str, int],
    list[str],
]:
    """The chosen set's tensors, the facts, every weight set, the choice, files, warnings."""
    if kind == "dcp":
        meta = dcp.read_metadata(folder)
        names = _dcp_sets(meta)
        chosen = weight_set or ("model" if "model" in names else names[0] if names else "")
        if weight_set is not None and weight_set not in names:
            raise CheckpointError(folder, f"no weight set '{weight_set}' (have {', '.join(names)})")
        sets = {n: meta.model_tensors(None if n == TOP_LEVEL else n) for n in names}
        return sets.get(chosen, {}), _dcp_facts(meta), sets, chosen, meta.files, meta.warnings
    found = deepspeed.read(folder, tag)
    chosen = weight_set or deepspeed.FP32
    if chosen not in found.weight_sets:
        have = ", ".join(found.weight_sets)
        raise CheckpointError(folder, f"no weight set '{chosen}' (have {have})")
    files = {name: (folder / name).stat().st_size for name in found.files}
    return found.weight_sets[chosen], found.facts, found.weight_sets, chosen, files, []


def _dcp_sets(meta: dcp.DcpMetadata) -> list[str]:
    groups = Counter(meta.group_of(flat)[0] for flat in meta.tensors)
    if meta.model_group() is None and any(g not in dcp.NON_MODEL_GROUPS for g in groups):
        sets = [TOP_LEVEL]
    else:
        sets = [g for g in groups if g and g not in dcp.NON_MODEL_GROUPS]
    return sets + [g for g in groups if g in dcp.NON_MODEL_GROUPS]


def _dcp_facts(meta: dcp.DcpMetadata) -> dict[str, Any]:
    groups: dict[str, dict[str, Any]] = {}
    for flat, layout in meta.tensors.items():
        group = groups.setdefault(meta.group_of(flat)[0] or TOP_LEVEL, {"tensors": 0, "bytes": 0})
        group["tensors"] += 1
        group["bytes"] += dcp.nbytes(layout)
    for flat in meta.byte_entries:
        group = groups.setdefault(meta.group_of(flat)[0], {"tensors": 0, "bytes": 0})
        group["values"] = group.get("values", 0) + 1
    for name in ("optim", "optimizer"):
        if name in groups:
            groups[name]["summary"] = _optimizer_summary(meta, name)
    return {"groups": groups, "files": len(meta.files), "ranks": len(meta.files)}


def _optimizer_summary(meta: dcp.DcpMetadata, group: str) -> str:
    kinds: Counter[str] = Counter()
    params = set()
    for flat in meta.tensors:
        top, inner = meta.group_of(flat)
        if top == group and inner.startswith("state."):
            param, _, kind = inner[len("state."):].rpartition(".")
            kinds[kind] += 1
            params.add(param)
    if not kinds:
        return "no per-parameter state"
    return f"{', '.join(sorted(kinds))} for {len(params)} parameters"
