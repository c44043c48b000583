"""A GGUF header -> Checkpoint: config, transformers names, metadata, warnings.

``describe`` is what listing uses (names from shipped templates only, no torch);
``with_hf_names`` redoes the naming from the model built on the meta device, for
the commands that import torch anyway (check, export, diff).
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from ckpt_gui.core.gguf import metadata as gguf_metadata
from ckpt_gui.core.gguf.header import GGUFHeader
from ckpt_gui.core.gguf.hf_config import UnsupportedArchitecture, derive_config, with_architecture
from ckpt_gui.core.gguf.hf_names import gguf_to_hf
from ckpt_gui.core.gguf.processors import REFUSED, hf_shape, is_computed, merged_slot, steps
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
    files: tuple[tuple[str, int], ...] | None = None,
) -> Checkpoint:
    """``files``: (relative name, size) of every part of a split set (``gguf.splits``)."""
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
        mapping = gguf_to_hf(str(config.get("model_type", "")), num_layers(config), hf_keys)
    elif config is not None:
        warnings.append(
            "transformers names need the model built (check, export and diff do it); "
            "showing GGUF names"
        )
    tensors, table, unmapped = _tensor_table(header, arch, config or {}, mapping, relative)
    if unmapped:
        shown = ", ".join(unmapped[:3]) + (" ..." if len(unmapped) > 3 else "")
        warnings.append(
            f"{len(unmapped)} GGUF tensors have no transformers name ({shown}): "
            "transformers skips them when loading"
        )
    if arch in REFUSED:
        warnings.append(f"conversion to safetensors is not supported: {REFUSED[arch]}")
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
        files=tuple(FileInfo(n, size) for n, size in files or ((relative, header.file_size),)),
        root=root,
        metadata=meta,
        warnings=tuple(warnings),
        config=config,
    )


def _tensor_table(
    header: GGUFHeader,
    arch: str,
    config: dict[str, Any],
    mapping: dict[str, str],
    relative: str,
) -> tuple[list[TensorInfo], dict[str, dict[str, Any]], list[str]]:
    """TensorInfos under transformers names and shapes, and the table of what each needs.

    MoE expert tensors transformers concatenates (``processors.merged_slot``) become one
    tensor whose ``parts`` say where each half is stored.
    """
    tensors: list[TensorInfo] = []
    table: dict[str, dict[str, Any]] = {}
    unmapped: list[str] = []
    merged: dict[str, list[tuple[int, Any]]] = {}
    for entry in header.tensors:
        name = mapping.get(entry.name, entry.name)
        file = entry.file or relative
        if mapping and entry.name not in mapping:
            unmapped.append(entry.name)
        slot = merged_slot(arch, entry.name) if name != entry.name else None
        if slot is not None:
            if name not in merged:
                merged[name] = []
                tensors.append(TensorInfo(name, entry.type_name, (), 0, file, entry.offset))
            merged[name].append((slot, entry))
            continue
        info: dict[str, Any] = {"gguf_name": entry.name, "type": entry.type_name}
        info.update(steps(arch, entry.name, config))
        shape = hf_shape(arch, entry.name, entry.shape)
        if shape != entry.shape:
            info["gguf_shape"] = list(entry.shape)
        table[name] = info
        tensors.append(TensorInfo(name, entry.type_name, shape, entry.nbytes, file, entry.offset))
    for position, tensor in enumerate(tensors):
        halves = merged.get(tensor.name)
        if halves is None:
            continue
        halves.sort(key=lambda pair: int(pair[0]))
        parts = [half for _slot, half in halves]
        types = sorted({p.type_name for p in parts})
        first = parts[0].shape
        shape = (first[0], sum(p.shape[1] for p in parts), *first[2:])
        table[tensor.name] = {
            "gguf_name": " + ".join(p.name for p in parts),
            "type": "+".join(types),
            "parts": [
                {
                    "gguf_name": p.name,
                    "type": p.type_name,
                    "shape": list(p.shape),
                    "nbytes": p.nbytes,
                    "offset": p.offset,
                    "file": p.file or relative,
                }
                for p in parts
            ],
        }
        tensors[position] = TensorInfo(
            tensor.name,
            "+".join(types),
            shape,
            sum(p.nbytes for p in parts),
            tensor.file,
            parts[0].offset,
        )
    return tensors, table, unmapped


def num_layers(config: dict[str, Any]) -> int:
    """The layer count, under whichever name the config class uses (GPT-2, Bloom: n_layer)."""
    for key in ("num_hidden_layers", "n_layer", "num_layers"):
        value = config.get(key)
        if isinstance(value, int):
            return value
    return 0


def _template_keys(config: dict[str, Any], source: str) -> list[str] | None:
    """The model's state-dict keys from a shipped template, or None (no torch either way).

    Only the names are wanted (shapes come from the file), so when the template does
    not answer for the config as it is, it is asked again with the fields that change
    shapes or ties but no key name (an explicit ``head_dim``, tied embeddings, whose
    ``lm_head.weight`` stays a state-dict key).
    """
    from ckpt_gui.core.check.resolved import ResolvedConfig
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


def table_entry(checkpoint: Checkpoint, tensor: TensorInfo) -> dict[str, Any]:
    """The tensor's row of the GGUF table ({} for other formats)."""
    if checkpoint.format != "gguf":
        return {}
    entry = checkpoint.metadata.get(TENSORS_KEY, {}).get(tensor.name, {})
    return entry if isinstance(entry, dict) else {}


def values_computed(checkpoint: Checkpoint, tensor: TensorInfo) -> bool:
    """Whether transformers' values are computed from the stored ones (not just read)."""
    return is_computed(table_entry(checkpoint, tensor))


def permutation_heads(checkpoint: Checkpoint, tensor: TensorInfo) -> int | None:
    entry = table_entry(checkpoint, tensor)
    heads = entry.get("permuted_heads")
    return heads if isinstance(heads, int) else None


def gguf_names(checkpoint: Checkpoint) -> dict[str, str]:
    """{shown name: GGUF name} for the tensors whose two names differ."""
    table = checkpoint.metadata.get(TENSORS_KEY, {})
    return {
        name: str(entry["gguf_name"])
        for name, entry in table.items()
        if isinstance(entry, dict) and entry.get("gguf_name") not in (None, name)
    }
