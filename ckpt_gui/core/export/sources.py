"""Plans for exports that read an existing checkpoint (convert, reshard, safetensors).

Tensors keep the order they have on disk (file by file, by offset), so every
source file is read once, front to back.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from ckpt_gui.core.dtypes import nbytes_for
from ckpt_gui.core.errors import CheckpointError
from ckpt_gui.core.export import renames as rename_rules
from ckpt_gui.core.export.atomic import check_target
from ckpt_gui.core.export.keep_fp32 import compile_patterns, keep_in_fp32_patterns
from ckpt_gui.core.export.plan import (
    DEFAULT_MAX_SHARD_SIZE,
    ExportPlan,
    PlannedTensor,
    split_into_shards,
)
from ckpt_gui.core.formats.distributed.checkpoint import is_distributed
from ckpt_gui.core.formats.folder import WEIGHT_SUFFIXES
from ckpt_gui.core.model import Checkpoint, TensorInfo
from ckpt_gui.core.targets import open_target

# Files of distributed checkpoints that are not part of an HF model folder.
DISTRIBUTED_BOOKKEEPING = frozenset({"latest", "zero_to_fp32.py", "zero_to_torch.py"})
CONVERTIBLE = frozenset({"F32", "F16", "BF16"})
TORCH_DTYPE_NAMES = {"F32": "float32", "F16": "float16", "BF16": "bfloat16"}
# Copied along when the source is a single file (a whole folder's other files otherwise).
MODEL_FILES = (
    "config.json",
    "generation_config.json",
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "tokenizer.model",
    "vocab.json",
    "vocab.txt",
    "merges.txt",
    "added_tokens.json",
    "chat_template.jinja",
    "chat_template.json",
    "preprocessor_config.json",
    "processor_config.json",
)


def plan_from_checkpoint(
    kind: str,
    target: str | Path,
    output: str | Path,
    *,
    dtype: str | None = None,
    max_shard_size: int | None = None,
    renames: Iterable[rename_rules.RenameRuleLike] | None = None,
    overwrite: bool = False,
    subtree: str | None = None,
    config: str | Path | None = None,
    weights_key: str | None = None,
    tag: str | None = None,
) -> tuple[ExportPlan, Checkpoint]:
    checkpoint = open_target(target, weights_key, tag)
    if config is not None:
        checkpoint = dataclasses.replace(checkpoint, config=read_config_file(config))
    out = Path(output).expanduser()
    root = checkpoint.root
    if root is None:
        raise CheckpointError(target, "only local checkpoints can be exported")
    sources = [Path(target).expanduser()]
    check_target(out, sources, overwrite)
    if dtype is not None and dtype not in CONVERTIBLE:
        raise ValueError(f"target dtype must be F32, F16 or BF16, not {dtype}")
    rules = rename_rules.normalize(renames)
    ordered = _disk_order(checkpoint)
    if subtree:
        # Export one module (the GUI's context menu): its tensors, names unchanged.
        ordered = [t for t in ordered if t.name == subtree or t.name.startswith(subtree + ".")]
        if not ordered:
            raise CheckpointError(target, f"no tensors under '{subtree}'")
    names = rename_rules.rename_all((t.name for t in ordered), rules, str(target))
    keep = compile_patterns(keep_in_fp32_patterns(checkpoint.config, dtype or ""))
    warnings: list[str] = []
    planned: list[PlannedTensor] = []
    kept = 0
    for info in ordered:
        new_name = names[info.name]
        out_dtype = info.dtype
        if dtype is not None and info.dtype in CONVERTIBLE:
            # transformers matches keep-in-fp32 patterns against the loaded (renamed) name.
            if keep is not None and keep.search(new_name):
                out_dtype = "F32"
                kept += 1
            else:
                out_dtype = dtype
        planned.append(
            PlannedTensor(
                new_name, out_dtype, info.shape, nbytes_for(out_dtype, info.parameters), info
            )
        )
    if kept:
        warnings.append(f"{kept} tensors kept in F32 (the architecture's _keep_in_fp32_modules)")
    unchanged = sum(
        1
        for t in planned
        if dtype is not None and t.source is not None and t.source.dtype not in CONVERTIBLE
    )
    if unchanged:
        warnings.append(f"{unchanged} non-float16/32 tensors copied unchanged")
    metadata = _safetensors_metadata(checkpoint)
    shards = split_into_shards(planned, max_shard_size or DEFAULT_MAX_SHARD_SIZE, metadata)
    copied, generated = _companion_files(
        checkpoint, Path(target).expanduser(), dtype, planned, config is not None
    )
    if checkpoint.format.startswith("pytorch"):
        warnings.append("pickled source read without running it (ckpt-gui's own reader)")
        warnings += _shared_storage_warnings(ordered)
    plan = ExportPlan(
        kind=kind,
        source=str(target),
        output=out,
        shards=shards,
        max_shard_size=max_shard_size or DEFAULT_MAX_SHARD_SIZE,
        copied_files=tuple(copied),
        generated_files=tuple(generated),
        warnings=tuple(warnings) + checkpoint.warnings,
        extra={"source_root": str(root), "dtype": dtype, **_distributed_extra(checkpoint)},
    )
    return plan, checkpoint


def _shared_storage_warnings(tensors: list[TensorInfo]) -> list[str]:
    """Tensors that share one torch storage (tied weights): safetensors cannot alias them."""
    owners: dict[tuple[str, str], str] = {}
    notes: list[str] = []
    for info in tensors:
        if info.storage is None or info.parameters == 0:
            continue
        owner = owners.setdefault((info.file, info.storage), info.name)
        if owner != info.name:
            notes.append(
                f"'{info.name}' shares storage with '{owner}' in {info.file}: "
                "written as a separate copy"
            )
    return notes


def _disk_order(checkpoint: Checkpoint) -> list[TensorInfo]:
    file_rank = {f.path: i for i, f in enumerate(checkpoint.files)}
    position = {t.name: i for i, t in enumerate(checkpoint.tensors)}
    return sorted(
        checkpoint.tensors,
        key=lambda t: (
            file_rank.get(t.file, len(file_rank)),
            t.offset if t.offset is not None else position[t.name],
        ),
    )


def _safetensors_metadata(checkpoint: Checkpoint) -> dict[str, str]:
    """Keep the source's ``__metadata__``; ``format: pt`` as transformers writes it."""
    raw: Any = checkpoint.metadata
    if checkpoint.format.endswith("-sharded"):
        raw = checkpoint.metadata.get("__metadata__", {})
    elif not checkpoint.format.startswith("safetensors"):
        raw = {}
    metadata = {str(k): v for k, v in dict(raw).items() if isinstance(v, str)}
    metadata.setdefault("format", "pt")
    return metadata


def _companion_files(
    checkpoint: Checkpoint,
    target: Path,
    dtype: str | None,
    planned: list[PlannedTensor],
    given_config: bool = False,
) -> tuple[list[tuple[Path, str]], list[tuple[str, bytes]]]:
    """Non-weight files copied along; config.json rewritten when the dtype changes.

    ``given_config``: the user named the config (``--config``); it is written
    instead of any config.json beside the source.
    """
    root = checkpoint.root
    assert root is not None
    weight_files = {f.path for f in checkpoint.files}
    if target.is_dir():
        candidates = [p for p in sorted(root.iterdir()) if p.is_file()]
    else:
        candidates = [root / name for name in MODEL_FILES if (root / name).is_file()]
    copied: list[tuple[Path, str]] = []
    generated: list[tuple[str, bytes]] = []
    if checkpoint.config is not None and (
        given_config or not any(p.name == "config.json" for p in candidates)
    ):
        # The user's --config, or the one a whole-model pickle carries: written so that
        # from_pretrained loads the output.
        config = dict(checkpoint.config)
        if dtype is not None:
            config = _with_dtype(config, TORCH_DTYPE_NAMES[dtype])
        generated.append(
            ("config.json", (json.dumps(config, indent=2, sort_keys=True) + "\n").encode())
        )
    for path in candidates:
        name = path.name
        if given_config and name == "config.json":
            continue
        if (
            name in weight_files
            or name in DISTRIBUTED_BOOKKEEPING
            or name.startswith(".")
            or name.endswith(WEIGHT_SUFFIXES)
            or _is_weight_index(path)
        ):
            continue
        if name == "config.json" and dtype is not None and checkpoint.config is not None:
            config = _with_dtype(dict(checkpoint.config), TORCH_DTYPE_NAMES[dtype])
            generated.append((name, (json.dumps(config, indent=2, sort_keys=True) + "\n").encode()))
            continue
        copied.append((path, name))
    return copied, generated


def read_config_file(config: str | Path) -> dict[str, Any]:
    """A config.json (or a folder holding one) named by the user, for exports."""
    path = Path(config).expanduser()
    if path.is_dir():
        path = path / "config.json"
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise CheckpointError(path, "no such config file") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CheckpointError(path, f"not a readable JSON config ({exc})") from None
    if not isinstance(value, dict):
        raise CheckpointError(path, "config is not a JSON object")
    return value


def _distributed_extra(checkpoint: Checkpoint) -> dict[str, Any]:
    """What the distributed provider needs to find the chosen weights again."""
    if not is_distributed(checkpoint):
        return {}
    return {
        "distributed": {
            "format": checkpoint.format,
            "weight_set": checkpoint.metadata.get("weight_set"),
            "tag": checkpoint.metadata.get("deepspeed", {}).get("tag"),
        }
    }


def _is_weight_index(path: Path) -> bool:
    if not path.name.endswith(".index.json"):
        return False
    try:
        head = path.open("rb").read(4096)
    except OSError:
        return False
    return b"weight_map" in head


def _with_dtype(config: dict[str, Any], name: str) -> dict[str, Any]:
    """Set ``dtype`` (and a legacy ``torch_dtype``) here and in every sub-config."""
    updated: dict[str, Any] = {}
    for key, value in config.items():
        if isinstance(value, Mapping) and "model_type" in value:
            value = _with_dtype(dict(value), name)
        updated[key] = value
    updated["dtype"] = name
    if "torch_dtype" in updated:
        updated["torch_dtype"] = name
    return updated
