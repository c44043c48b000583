"""A GGUF header -> Checkpoint: config, transformers names, metadata, warnings.

``describe`` is what listing uses (names from shipped templates only, no torch);
``with_hf_names`` redoes the naming from the model built on the meta device, for
the commands that import torch anyway (check, export, diff).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from ckpt_gui.core.gguf import metadata as gguf_metadata
from ckpt_gui.core.gguf.header import GGUFHeader
from ckpt_gui.core.gguf.hf_config import UnsupportedArchitecture, derive_config, with_architecture
from ckpt_gui.core.gguf.hf_names import VALUE_PROCESSED_ARCHS, gguf_to_hf, permuted_heads
from ckpt_gui.core.model import Checkpoint, FileInfo, TensorInfo

# Recorded by transformers but no part of the model: left out of the config so that a
# shipped template answers for it (the name is in the summary).
_RECORD_ONLY = ("_model_name_or_path",)
TENSORS_KEY = "gguf.tensors"
NAMED_KEY = "gguf.hf_names"  # True once the tensors carry transformers names


def describe(
    header: GGUFHeader,
    *,
    source: str,
    relative: str,
    root: Path | None,
    hf_keys: Iterable[str] | None = None,
) -> Checkpoint:
    warnings: list[str] = []
    arch = gguf_metadata.architecture(header) or ""
    config: dict[str, Any] | None
    try:
        config = with_architecture(derive_config(header))
        config = {k: v for k, v in config.items() if k not in _RECORD_ONLY}
    except UnsupportedArchitecture as exc:
        config = None
        warnings.append(f"no transformers config: {exc}")
    if hf_keys is None and config is not None:
        hf_keys = _template_keys(config, source)
    mapping: dict[str, str] = {}
    if hf_keys is not None and config is not None:
        mapping = gguf_to_hf(
            str(config.get("model_type", "")), int(config.get("num_hidden_layers") or 0), hf_keys
        )
    elif config is not None:
        warnings.append(
            "transformers names need the model built (check, export and diff do it); "
            "showing GGUF names"
        )
    tensors: list[TensorInfo] = []
    table: dict[str, dict[str, Any]] = {}
    unmapped: list[str] = []
    for entry in header.tensors:
        name = mapping.get(entry.name, entry.name)
        if mapping and entry.name not in mapping:
            unmapped.append(entry.name)
        info: dict[str, Any] = {"gguf_name": entry.name, "type": entry.type_name}
        heads = permuted_heads(arch, entry.name, config or {})
        if heads is not None:
            info["permuted_heads"] = heads
        table[name] = info
        tensors.append(
            TensorInfo(name, entry.type_name, entry.shape, entry.nbytes, relative, entry.offset)
        )
    if unmapped:
        shown = ", ".join(unmapped[:3]) + (" ..." if len(unmapped) > 3 else "")
        warnings.append(
            f"{len(unmapped)} GGUF tensors have no transformers name ({shown}): "
            "transformers skips them when loading"
        )
    if arch in VALUE_PROCESSED_ARCHS:
        warnings.append(
            f"transformers reshapes some {arch} tensors when loading; values are shown as stored "
            "and conversion to safetensors is not supported for this architecture"
        )
    meta: dict[str, Any] = {
        "gguf": gguf_metadata.summary(header),
        "gguf.fields": gguf_metadata.field_tree(header),
        TENSORS_KEY: table,
        NAMED_KEY: bool(mapping),
    }
    return Checkpoint(
        source=source,
        format="gguf",
        tensors=tuple(tensors),
        files=(FileInfo(relative, header.file_size),),
        root=root,
        metadata=meta,
        warnings=tuple(warnings),
        config=config,
    )


def _template_keys(config: dict[str, Any], source: str) -> list[str] | None:
    """The model's state-dict keys from a shipped template, or None (no torch either way).

    Only the names are wanted (shapes come from the file), so when the template does
    not answer for the config as it is, it is asked again with the fields that change
    shapes or ties but no key name (an explicit ``head_dim``, tied embeddings, whose
    ``lm_head.weight`` stays a state-dict key).
    """
    from ckpt_gui.core.check.config_source import ResolvedConfig
    from ckpt_gui.core.check.templates.template import template_for

    architectures = config.get("architectures") or [None]
    attempts = (
        config,
        {**config, "tie_word_embeddings": False},
        {k: v for k, v in config.items() if k != "head_dim"},
        {k: v for k, v in config.items() if k != "head_dim"} | {"tie_word_embeddings": False},
    )
    for values in attempts:
        expected = template_for(ResolvedConfig(source, values, architectures[0]), None)
        if expected is not None:
            return list(expected.tensors) + [k for k in expected.tied if k not in expected.tensors]
    return None


def gguf_name(checkpoint: Checkpoint, tensor: TensorInfo) -> str:
    entry = checkpoint.metadata.get(TENSORS_KEY, {}).get(tensor.name, {})
    return str(entry.get("gguf_name", tensor.name))


def permutation_heads(checkpoint: Checkpoint, tensor: TensorInfo) -> int | None:
    if checkpoint.format != "gguf":
        return None
    entry = checkpoint.metadata.get(TENSORS_KEY, {}).get(tensor.name, {})
    heads = entry.get("permuted_heads")
    return heads if isinstance(heads, int) else None


def with_hf_names(checkpoint: Checkpoint) -> Checkpoint:
    """The checkpoint under transformers names, building the model when listing could not."""
    if checkpoint.format != "gguf" or checkpoint.metadata.get(NAMED_KEY):
        return checkpoint
    if checkpoint.config is None or checkpoint.root is None:
        return checkpoint
    from ckpt_gui.core.check.config_source import ResolvedConfig
    from ckpt_gui.core.check.expected_cache import load_expected
    from ckpt_gui.core.gguf.header import read_header

    architectures = checkpoint.config.get("architectures") or [None]
    expected = load_expected(ResolvedConfig(checkpoint.source, checkpoint.config, architectures[0]))
    keys = list(expected.tensors) + [k for k in expected.tied if k not in expected.tensors]
    file = checkpoint.files[0].path
    header = read_header(checkpoint.root / file, checkpoint.source)
    named = describe(
        header, source=checkpoint.source, relative=file, root=checkpoint.root, hf_keys=keys
    )
    return dataclasses.replace(named, source=checkpoint.source)


def gguf_names(checkpoint: Checkpoint) -> dict[str, str]:
    """{shown name: GGUF name} for the tensors whose two names differ."""
    table = checkpoint.metadata.get(TENSORS_KEY, {})
    return {
        name: str(entry["gguf_name"])
        for name, entry in table.items()
        if isinstance(entry, dict) and entry.get("gguf_name") not in (None, name)
    }
