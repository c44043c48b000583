"""What the export dialog asks for, without widgets: the request, planning, defaults.

``make_plan(request)`` runs the matching core ``plan_*`` (call it on a Worker);
``prefix_fields`` and ``default_output`` compute what the dialog prefills.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ckpt_gui.core.export import (
    ExportPlan,
    RenameRule,
    plan_convert,
    plan_random_init,
    plan_reshard,
    plan_safetensors,
)


@dataclass
class ExportRequest:
    """What the dialog asks the planner for (read from the widgets on the GUI thread)."""

    kind: str
    source: str
    output: str
    dtype: str | None = None
    max_shard_size: int | None = None
    seed: int = 0
    overwrite: bool = False
    subtree: str | None = None
    renames: list[RenameRule] = field(default_factory=list)
    config: str | None = None  # a config.json (or folder) to write beside the weights
    base: str | None = None  # merge-lora: the base model (``source`` is the adapter)
    tag: str | None = None  # a DeepSpeed folder's global_step tag (None: what latest names)
    weights_key: str | None = None  # the weight set of a pickle or DeepSpeed folder (None: default)


def make_plan(request: ExportRequest) -> ExportPlan:
    """Run the matching ``plan_*`` (on a worker thread)."""
    if request.kind == "merge-lora":
        from ckpt_gui.core.export.merge_lora import plan_merge_lora

        if not request.base:
            raise ValueError("choose the base model to merge the adapter into")
        return plan_merge_lora(
            request.base,
            request.source,
            request.output,
            dtype=request.dtype,
            max_shard_size=request.max_shard_size,
            overwrite=request.overwrite,
        )
    common: dict[str, Any] = {"renames": request.renames, "overwrite": request.overwrite}
    if request.kind == "random-init":
        return plan_random_init(
            request.source,
            request.output,
            dtype=request.dtype,
            max_shard_size=request.max_shard_size,
            seed=request.seed,
            **common,
        )
    common["subtree"] = request.subtree
    common["config"] = request.config
    if request.tag is not None:
        common["tag"] = request.tag
    if request.weights_key is not None:
        common["weights_key"] = request.weights_key
    if request.kind == "convert":
        assert request.dtype is not None
        return plan_convert(
            request.source,
            request.output,
            request.dtype,
            max_shard_size=request.max_shard_size,
            **common,
        )
    if request.kind == "gguf-safetensors":
        from ckpt_gui.core.export.gguf_source import plan_gguf_safetensors

        return plan_gguf_safetensors(
            request.source,
            request.output,
            dtype=request.dtype,
            max_shard_size=request.max_shard_size,
            renames=request.renames,
            overwrite=request.overwrite,
        )
    if request.kind == "reshard":
        assert request.max_shard_size is not None
        return plan_reshard(request.source, request.output, request.max_shard_size, **common)
    return plan_safetensors(
        request.source, request.output, max_shard_size=request.max_shard_size, **common
    )


def prefix_fields(renames: Sequence[RenameRule]) -> tuple[str, str, list[RenameRule]]:
    """Split renames into (strip prefix, add prefix, the rest) when they are prefix rules.

    Only a leading strip followed by an add keeps its meaning in the dialog's fixed
    order (strip, add, then the rest); anything else stays in the list as it is.
    """
    rules = list(renames)
    strip = add = ""
    if rules and (prefix := _stripped_prefix(rules[0])) is not None:
        strip = prefix
        rules.pop(0)
    if rules and (prefix := _added_prefix(rules[0])) is not None:
        add = prefix
        rules.pop(0)
    return strip, add, rules


def _stripped_prefix(rule: RenameRule) -> str | None:
    if rule.replacement or not rule.pattern.startswith("^") or rule.pattern == "^":
        return None
    prefix = re.sub(r"\\(.)", r"\1", rule.pattern[1:])
    return prefix.removesuffix(".") if RenameRule.strip_prefix(prefix) == rule else None


def _added_prefix(rule: RenameRule) -> str | None:
    if rule.pattern != "^" or not rule.replacement:
        return None
    prefix = rule.replacement.replace("\\\\", "\\")
    return prefix.removesuffix(".") if RenameRule.add_prefix(prefix) == rule else None


def default_output(kind: str, source: str, dtype: str | None, subtree: str | None) -> str:
    """A sibling folder of the source named after the job, e.g. ``llama-bf16``."""
    if not source:
        return ""
    path = Path(source).expanduser()
    if kind == "gguf-safetensors":
        # A GGUF file is a whole model: name the folder after the file, next to it.
        return str(path.parent / f"{path.stem}-safetensors")
    folder = path if path.is_dir() else path.parent
    suffix = {
        "convert": (dtype or "bf16").lower(),
        "reshard": "resharded",
        "safetensors": "safetensors",
        "random-init": "random-init",
        "merge-lora": "merged",
    }[kind]
    if kind == "random-init" and dtype:
        suffix += f"-{dtype.lower()}"
    name = folder.name or "model"
    if subtree:
        name += f"-{subtree}"
    return str(folder.parent / f"{name}-{suffix}")


def as_rename(item: RenameRule | tuple[str, str] | Any) -> RenameRule:
    if isinstance(item, RenameRule):
        return item
    pattern = getattr(item, "pattern", None)
    replacement = getattr(item, "replacement", None)
    if isinstance(pattern, str) and isinstance(replacement, str):
        return RenameRule(pattern, replacement)  # a RenameRule-like object from another module
    first, second = item
    return RenameRule(str(first), str(second))
