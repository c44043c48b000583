"""Exports from an existing checkpoint: dtype conversion, re-sharding, pickle to safetensors.

All three are one streaming job with different defaults: ``convert`` changes
float dtypes (F32/F16/BF16; everything else is copied unchanged), ``reshard``
changes the shard size and copies bytes untouched when the dtype stays, and
``to_safetensors`` turns a pickled checkpoint into safetensors. Every one of
them takes ``renames`` and ``max_shard_size``.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from ckpt_gui.core.export.distributed import DistributedTensors
from ckpt_gui.core.export.engine import ExportOptions, ExportResult, run_export
from ckpt_gui.core.export.pickled import PickledTensors
from ckpt_gui.core.export.plan import ExportPlan
from ckpt_gui.core.export.renames import RenameRuleLike
from ckpt_gui.core.export.sources import plan_from_checkpoint
from ckpt_gui.core.jobs import Job


def plan_convert(
    target: str | Path,
    output: str | Path,
    dtype: str,
    *,
    max_shard_size: int | None = None,
    renames: Iterable[RenameRuleLike] | None = None,
    overwrite: bool = False,
    subtree: str | None = None,
    config: str | Path | None = None,
    weights_key: str | None = None,
    tag: str | None = None,
) -> ExportPlan:
    """Plan a dtype conversion (``dtype``: "F32", "F16" or "BF16")."""
    plan, _ = plan_from_checkpoint(
        "convert",
        target,
        output,
        dtype=dtype,
        max_shard_size=max_shard_size,
        renames=renames,
        overwrite=overwrite,
        subtree=subtree,
        config=config,
        weights_key=weights_key,
        tag=tag,
    )
    return plan


def plan_reshard(
    target: str | Path,
    output: str | Path,
    max_shard_size: int,
    *,
    renames: Iterable[RenameRuleLike] | None = None,
    overwrite: bool = False,
    subtree: str | None = None,
    config: str | Path | None = None,
    weights_key: str | None = None,
    tag: str | None = None,
) -> ExportPlan:
    plan, _ = plan_from_checkpoint(
        "reshard",
        target,
        output,
        max_shard_size=max_shard_size,
        renames=renames,
        overwrite=overwrite,
        subtree=subtree,
        config=config,
        weights_key=weights_key,
        tag=tag,
    )
    return plan


def plan_safetensors(
    target: str | Path,
    output: str | Path,
    *,
    max_shard_size: int | None = None,
    renames: Iterable[RenameRuleLike] | None = None,
    overwrite: bool = False,
    subtree: str | None = None,
    config: str | Path | None = None,
    weights_key: str | None = None,
    tag: str | None = None,
) -> ExportPlan:
    plan, _ = plan_from_checkpoint(
        "safetensors",
        target,
        output,
        max_shard_size=max_shard_size,
        renames=renames,
        overwrite=overwrite,
        subtree=subtree,
        config=config,
        weights_key=weights_key,
        tag=tag,
    )
    return plan


def run_plan(plan: ExportPlan, options: ExportOptions | None = None) -> Job[ExportResult]:
    """Run a plan from any ``plan_*`` of this module (what the GUI's worker calls)."""
    options = options or ExportOptions()
    from ckpt_gui.core.export.gguf_source import KIND as GGUF_KIND

    if plan.kind == GGUF_KIND:
        from ckpt_gui.core.export.gguf_source import run_gguf_plan

        return (yield from run_gguf_plan(plan, options))
    root = Path(plan.extra["source_root"])
    provider: PickledTensors | DistributedTensors
    if "distributed" in plan.extra:
        order = [t.source.name for t in plan.tensors if t.source is not None]
        provider = DistributedTensors(root, plan.extra["distributed"], order)
    else:
        provider = PickledTensors(root)
    result = yield from run_export(
        plan, [Path(plan.source).expanduser()], options, provider=provider, release=provider.release
    )
    result.warnings.extend(dict.fromkeys(provider.warnings))
    return result


def convert(
    target: str | Path,
    output: str | Path,
    dtype: str,
    *,
    max_shard_size: int | None = None,
    renames: Iterable[RenameRuleLike] | None = None,
    options: ExportOptions | None = None,
) -> Job[ExportResult]:
    options = options or ExportOptions()
    plan = plan_convert(
        target,
        output,
        dtype,
        max_shard_size=max_shard_size,
        renames=renames,
        overwrite=options.overwrite,
    )
    return (yield from run_plan(plan, options))


def reshard(
    target: str | Path,
    output: str | Path,
    max_shard_size: int,
    *,
    renames: Iterable[RenameRuleLike] | None = None,
    options: ExportOptions | None = None,
) -> Job[ExportResult]:
    options = options or ExportOptions()
    plan = plan_reshard(
        target, output, max_shard_size, renames=renames, overwrite=options.overwrite
    )
    return (yield from run_plan(plan, options))


def to_safetensors(
    target: str | Path,
    output: str | Path,
    *,
    max_shard_size: int | None = None,
    renames: Iterable[RenameRuleLike] | None = None,
    options: ExportOptions | None = None,
) -> Job[ExportResult]:
    options = options or ExportOptions()
    plan = plan_safetensors(
        target, output, max_shard_size=max_shard_size, renames=renames, overwrite=options.overwrite
    )
    return (yield from run_plan(plan, options))
