"""``export merge-lora BASE ADAPTER OUT``: the base with a LoRA adapter merged in, streamed.

The plan is the base's own (``plan_from_checkpoint``: disk order, shard split,
companion files, ``--dtype``), with every tensor the adapter changes turned into a
generated one. While the engine streams the base, unchanged tensors are copied
file to file as in a re-shard; a changed tensor is read once, merged
(``core.adapters.delta``) and written. Memory: the adapter (small) plus one base
tensor at a time. Before anything is written the adapter is checked against the
base's real shapes, so an adapter for another base writes nothing.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ckpt_gui.core.adapters.fit import expected_adapter_shapes, require_lora
from ckpt_gui.core.adapters.keys import classify
from ckpt_gui.core.adapters.settings import LoraSettings
from ckpt_gui.core.errors import CheckpointError
from ckpt_gui.core.export.atomic import check_target
from ckpt_gui.core.export.engine import ExportOptions, ExportResult, run_export
from ckpt_gui.core.export.pickled import PickledTensors
from ckpt_gui.core.export.plan import (
    DEFAULT_MAX_SHARD_SIZE,
    ExportPlan,
    PlannedTensor,
    split_into_shards,
)
from ckpt_gui.core.export.sources import plan_from_checkpoint
from ckpt_gui.core.jobs import Job
from ckpt_gui.core.model import Checkpoint, TensorInfo
from ckpt_gui.core.positional_io import read_into_at
from ckpt_gui.core.targets import open_target


@dataclass
class MergeStep:
    """How one base tensor changes: replaced by an adapter tensor, then LoRA added."""

    target: str
    kind: str  # "linear", "embedding", "bias" or "replace"
    module: str = ""
    roles: dict[str, str] = field(default_factory=dict)  # role -> adapter key
    scale: float = 1.0
    replace_with: str | None = None


@dataclass
class MergeContext:
    adapter_root: Path
    adapter_files: dict[str, str]  # adapter key -> file (relative to adapter_root)
    steps: dict[str, MergeStep]
    base_tensors: dict[str, TensorInfo]
    fan_in_fan_out: bool


def plan_merge_lora(
    base: str | Path,
    adapter: str | Path,
    output: str | Path,
    *,
    dtype: str | None = None,
    max_shard_size: int | None = None,
    overwrite: bool = False,
) -> ExportPlan:
    """Plan the merge; raises (nothing written) when the adapter does not fit the base."""
    adapter_checkpoint = open_target(adapter)
    settings = require_lora(adapter_checkpoint)
    if adapter_checkpoint.root is None:
        raise CheckpointError(adapter, "only a local adapter can be merged (download it first)")
    check_target(Path(output).expanduser(), [Path(adapter).expanduser()], overwrite)
    plan, base_checkpoint = plan_from_checkpoint(
        "merge-lora", base, output, dtype=dtype, max_shard_size=max_shard_size, overwrite=overwrite
    )
    steps, warnings = merge_steps(settings, adapter_checkpoint, base_checkpoint)
    planned = [dataclasses.replace(t, source=None) if t.name in steps else t for t in plan.tensors]
    metadata = dict(plan.shards[0].metadata) if plan.shards else {"format": "pt"}
    limit = max_shard_size or DEFAULT_MAX_SHARD_SIZE
    by_name = {t.name: t for t in base_checkpoint.tensors}
    context = MergeContext(
        adapter_root=adapter_checkpoint.root,
        adapter_files={t.name: t.file for t in adapter_checkpoint.tensors},
        steps=steps,
        base_tensors=by_name,
        fan_in_fan_out=settings.fan_in_fan_out,
    )
    return dataclasses.replace(
        plan,
        kind="merge-lora",
        shards=split_into_shards(planned, limit, metadata),
        warnings=plan.warnings + tuple(warnings),
        extra={
            **plan.extra,
            "adapter": str(adapter),
            "merged_tensors": sorted(steps),
            "sources": [str(base), str(adapter)],
        },
        context=context,
    )


def merge_steps(
    settings: LoraSettings, adapter: Checkpoint, base: Checkpoint
) -> tuple[dict[str, MergeStep], list[str]]:
    """What changes in the base, checked against its real shapes (first problem raised)."""
    shapes = {t.name: t.shape for t in base.tensors}
    vocab = base.config.get("vocab_size") if base.config is not None else None
    wanted = expected_adapter_shapes(settings, shapes, vocab if isinstance(vocab, int) else None)
    problems: list[str] = []
    steps: dict[str, MergeStep] = {}
    for tensor in adapter.tensors:
        key = classify(tensor.name)
        if key is None:
            problems.append(f"'{tensor.name}' is not a LoRA weight")
            continue
        need = wanted.get(tensor.name)
        if need is None and key.replaces is not None:
            need = shapes.get(key.replaces)
        if need is None:
            problems.append(f"'{tensor.name}' has no target in the base")
            continue
        if need != () and need != tensor.shape:
            problems.append(f"'{tensor.name}' is {list(tensor.shape)}, the base needs {list(need)}")
            continue
        if key.replaces is not None:
            step = steps.setdefault(key.replaces, MergeStep(key.replaces, "replace"))
            step.replace_with = tensor.name
        elif key.role == "B_bias":
            step = steps.setdefault(f"{key.module}.bias", MergeStep(f"{key.module}.bias", "bias"))
            step.roles["B_bias"], step.scale = tensor.name, settings.scale_for(key.module)
        else:
            target = f"{key.module}.weight"
            step = steps.setdefault(target, MergeStep(target, "replace"))
            step.module = key.module
            if key.role.startswith("embedding"):
                step.kind = "embedding"
            elif key.role in ("A", "B"):
                step.kind = "linear"
            if key.role in ("A", "B") and len(shapes[target]) != 2:
                problems.append(f"'{tensor.name}': convolution LoRA layers cannot be merged yet")
            step.roles[key.role] = tensor.name
            step.scale = settings.scale_for(key.module)
    for step in steps.values():
        if step.kind == "replace" and step.roles:
            problems.append(f"module {step.module} has a DoRA magnitude but no LoRA weights")
        if step.kind == "bias" and step.target not in shapes:
            problems.append(f"'{step.roles['B_bias']}' adds to {step.target}, which the base lacks")
        needed = {"linear": ("A", "B"), "embedding": ("embedding_A", "embedding_B")}.get(step.kind)
        if needed and not all(r in step.roles for r in needed):
            problems.append(f"module {step.module} has only {sorted(step.roles)} of {list(needed)}")
    if problems:
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        raise CheckpointError(
            adapter.source, f"does not fit the base {base.source}: {problems[0]}{more}"
        )
    warnings = []
    lora_modules = {s.module for s in steps.values() if s.kind in ("linear", "embedding")}
    targeted = {k.module for n in wanted if (k := classify(n)) is not None and k.low_rank}
    absent = sorted(targeted - lora_modules)
    if absent:
        warnings.append(
            f"{len(absent)} targeted modules have no adapter weights (left as in the base), "
            f"e.g. {absent[0]}"
        )
    return steps, warnings


def run_merge_lora(plan: ExportPlan, options: ExportOptions | None = None) -> Job[ExportResult]:
    """The job for a ``plan_merge_lora`` plan (what the CLI and the GUI's worker run)."""
    options = options or ExportOptions()
    context = plan.context
    if not isinstance(context, MergeContext):
        raise CheckpointError(plan.source, "not a merge-lora plan")
    root = Path(plan.extra["source_root"])
    provider = MergedTensors(context, root)
    sources = [Path(s).expanduser() for s in plan.extra["sources"]]
    try:
        result = yield from run_export(
            plan, sources, options, provider=provider, release=provider.release_base
        )
    finally:
        provider.close()
    result.warnings.extend(dict.fromkeys(provider.warnings))
    return result


class MergedTensors:
    """The engine's provider: merged tensors computed on demand, others from pickles."""

    def __init__(self, context: MergeContext, base_root: Path) -> None:
        self.context = context
        self.base_root = base_root
        self.pickled = PickledTensors(base_root)
        self.adapter: dict[str, Any] | None = None
        self.fds: dict[Path, int] = {}
        self.warnings = self.pickled.warnings
        self.work: Any = None  # float32 workspace, as large as the largest merged tensor
        self.raw: Any = None  # read buffer for base tensor bytes

    def __call__(self, planned: PlannedTensor) -> Any:
        step = self.context.steps.get(planned.name)
        if step is None:
            return self.pickled(planned)  # an unchanged tensor of a pickled base
        import torch

        from ckpt_gui.core.adapters.delta import merged_bias, merged_weight
        from ckpt_gui.core.export.convert_kernels import torch_dtype

        adapter = self._adapter()
        with torch.no_grad():
            # The float32 copy of the base tensor lives in one buffer reused by every
            # merged tensor: fresh pages, not arithmetic, are the cost here.
            work = self._workspace(planned.shape)
            if step.replace_with is not None:
                work.copy_(adapter[step.replace_with])
            else:
                self._read_into(self.context.base_tensors[step.target], work)
            if step.kind == "bias":
                value = merged_bias(work, adapter[step.roles["B_bias"]], step.scale)
            elif step.kind in ("linear", "embedding"):
                roles = {role: adapter[key] for role, key in step.roles.items()}
                value = merged_weight(
                    work, roles, step.kind, step.scale, self.context.fan_in_fan_out
                )
            else:
                value = work
            # A fresh output: the engine's queued writes keep it until they are done.
            out = torch.empty(planned.shape, dtype=torch_dtype(planned.dtype))
            out.copy_(value)
            return out

    def _adapter(self) -> dict[str, Any]:
        if self.adapter is None:
            self.adapter = {}
            files = sorted(set(self.context.adapter_files.values()))
            for file in files:
                self.adapter.update(_load_small(self.context.adapter_root / file))
        return self.adapter

    def _workspace(self, shape: tuple[int, ...]) -> Any:
        import math

        import torch

        count = math.prod(shape)
        if self.work is None or self.work.numel() < count:
            self.work = torch.empty(count, dtype=torch.float32)
        return self.work[:count].view(shape)

    def _read_into(self, info: TensorInfo, work: Any) -> None:
        """The base tensor's values into ``work`` (float32), through a reused read buffer."""
        if info.offset is None:
            work.copy_(
                self.pickled(PlannedTensor(info.name, info.dtype, info.shape, info.nbytes, info))
            )
            return
        import torch

        from ckpt_gui.core.export.convert_kernels import torch_dtype

        path = self.base_root / info.file
        fd = self.fds.get(path)
        if fd is None:
            fd = self.fds[path] = os.open(path, os.O_RDONLY)
        if self.raw is None or self.raw.numel() < info.nbytes:
            self.raw = torch.empty(info.nbytes, dtype=torch.uint8)
        data = self.raw[: info.nbytes]
        view = memoryview(data.numpy())
        done = 0
        while done < info.nbytes:
            got = _read_at(fd, view[done:], info.offset + done)
            if got <= 0:
                raise CheckpointError(path, f"file ends inside tensor '{info.name}'")
            done += got
        work.copy_(data.view(torch_dtype(info.dtype)).view(info.shape))

    def release_base(self) -> None:
        self.pickled.release()

    def close(self) -> None:
        self.pickled.release()
        fds, self.fds = self.fds, {}
        for fd in fds.values():
            os.close(fd)
        self.adapter = None
        self.work = self.raw = None


def _read_at(fd: int, view: memoryview, offset: int) -> int:
    """Read into ``view`` at ``offset`` (``os.preadv`` where there is one)."""
    return read_into_at(fd, view, offset)


def _load_small(path: Path) -> dict[str, Any]:
    """All tensors of an adapter file (adapters are small: megabytes)."""
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        try:
            return dict(load_file(str(path)))
        except Exception as exc:  # safetensors' own error types vary by version
            raise CheckpointError(path, f"cannot read adapter weights: {exc}") from None
    import torch

    from ckpt_gui.core.dtypes import SAFETENSORS_TO_TORCH
    from ckpt_gui.core.formats import open_file
    from ckpt_gui.core.values.strided import strided_bytes

    # Our own non-executing reader finds each tensor's bytes in the file; nothing is unpickled.
    checkpoint = open_file(path, path.parent)
    tensors: dict[str, Any] = {}
    with path.open("rb") as stream:
        for info in checkpoint.tensors:
            if info.offset is not None:
                stream.seek(info.offset)
                raw = bytearray(stream.read(info.nbytes))
            else:
                raw = bytearray(strided_bytes(path, info).tobytes())
            dtype = getattr(torch, SAFETENSORS_TO_TORCH[info.dtype])
            value = torch.frombuffer(raw, dtype=dtype) if raw else torch.empty(0, dtype=dtype)
            tensors[info.name] = value.reshape(info.shape)
    return tensors
