"""One remote Checkpoint from its files' descriptions, as the local readers assemble them.

Kept apart from ``inspect.py`` (which plans and fetches) so that what a repo shows
is decided next to the rules it mirrors: ``formats/index.py`` for an index,
``folder.merge`` for several files, the file's own reader for one.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from ckpt_gui.core.errors import CheckpointError
from ckpt_gui.core.hub.ref import HubRef
from ckpt_gui.core.hub.select import WeightPlan
from ckpt_gui.core.model import Checkpoint, FileInfo, PickleGlobal, TensorInfo


@dataclasses.dataclass
class FileResult:
    """One remote weight file as the local reader of its format describes it."""

    tensors: list[TensorInfo]
    metadata: dict[str, Any]
    pickle_globals: list[PickleGlobal]
    format: str  # "safetensors", "pytorch-zip", "pytorch-legacy", "pytorch-torchscript"
    config: dict[str, Any] | None = None
    warnings: list[str] = dataclasses.field(default_factory=list)


def assemble(
    ref: HubRef,
    plan: WeightPlan,
    sizes: dict[str, int | None],
    results: dict[str, FileResult],
    weight_map: dict[str, str] | None,
    index_metadata: dict[str, Any],
) -> Checkpoint:
    """One Checkpoint from the per-file results, as the local readers assemble them.

    One file is what ``formats/pytorch.py`` or ``safetensors.py`` shows of it (its
    config and warnings included); an index is checked against its shards as
    ``formats/index.py`` does (of a pickle shard only its tensors and globals count);
    several files without an index are merged as ``folder.merge`` merges them.
    """
    where = f"{ref.repo_id}/{plan.index}" if plan.index else str(ref)
    seen: dict[str, str] = {}
    tensors: list[TensorInfo] = []
    metadata: dict[str, Any] = {"index": index_metadata} if index_metadata else {}
    pickle_globals: dict[str, PickleGlobal] = {}
    prefix = plan.index.rpartition("/")[0] + "/" if plan.index and "/" in plan.index else ""
    for filename in plan.shards:
        result = results[filename]
        if result.metadata:
            if not plan.index:
                metadata.update(result.metadata)
            elif result.format == "safetensors":
                metadata.setdefault("__metadata__", result.metadata)
        pickle_globals.update({g.name: g for g in result.pickle_globals})
        for tensor in result.tensors:
            if tensor.name in seen:
                raise CheckpointError(
                    where, f"tensor '{tensor.name}' is in both {seen[tensor.name]} and {filename}"
                )
            seen[tensor.name] = filename
            if weight_map is not None:
                listed = weight_map.get(tensor.name)
                if listed is None:
                    raise CheckpointError(
                        where,
                        f"shard {filename} holds '{tensor.name}', which the index does not list",
                    )
                if prefix + listed != filename:
                    raise CheckpointError(
                        where, f"index puts '{tensor.name}' in {listed} but it is in {filename}"
                    )
            tensors.append(tensor)
    if weight_map is not None:
        absent = [key for key in weight_map if key not in seen]
        if absent:
            raise CheckpointError(
                where,
                f"index lists '{absent[0]}' in {weight_map[absent[0]]} but the shard lacks it",
            )
        order = {name: i for i, name in enumerate(weight_map)}
        tensors.sort(key=lambda t: order[t.name])
    formats = "+".join(sorted({results[f].format for f in plan.shards})) or "empty"
    config: dict[str, Any] | None = None
    warnings: tuple[str, ...] = ()
    if plan.index:
        formats += "-sharded"
    elif len(plan.shards) > 1:
        formats += "-multi"
    else:
        only = results[plan.shards[0]]
        config, warnings = only.config, tuple(only.warnings)
    return Checkpoint(
        source=str(ref),
        format=formats,
        tensors=tuple(tensors),
        files=tuple(FileInfo(f, sizes.get(f) or 0) for f in plan.files),
        root=None,
        metadata=metadata,
        warnings=warnings,
        config=config,
        pickle_globals=tuple(pickle_globals.values()),
    )
