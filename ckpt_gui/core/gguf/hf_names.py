"""GGUF tensor names -> transformers names, as ``get_gguf_hf_weights_map`` finds them.

transformers walks the state dict of the model built from the derived config and asks
gguf's own ``TensorNameMap`` for each key's GGUF name; the map is the reverse of that.
``gguf_to_hf`` does the same over the model's key list, which comes from a shipped
template (no torch: what listing uses) or from the model built on the meta device
(``check``, ``export`` and ``diff``, which import torch anyway). Its ``model_type`` ->
gguf architecture renames and the processors' extra names (``processors.extra_names``)
follow ``modeling_gguf_pytorch_utils`` (that module imports torch, so they are repeated
here).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from ckpt_gui.core.gguf.processors import extra_names

# get_gguf_hf_weights_map's "hack: ggufs have a different name" renames.
_GGUF_ARCH_OF_MODEL_TYPE = {
    "cohere": "command-r",
    "qwen2_moe": "qwen2moe",
    "qwen3_moe": "qwen3moe",
    "gemma3_text": "gemma3",
    "gemma4_text": "gemma4",
    "umt5": "t5",
    "minimax_m2": "minimax-m2",
    "gpt_oss": "gpt-oss",
}
def gguf_to_hf(model_type: str, num_layers: int, hf_keys: Iterable[str]) -> dict[str, str]:
    """{GGUF name: transformers name} for a model with these state-dict keys."""
    import gguf

    arch_name = _GGUF_ARCH_OF_MODEL_TYPE.get(model_type, model_type)
    arch = next((k for k, v in gguf.MODEL_ARCH_NAMES.items() if v == arch_name), None)
    if arch is None:
        return {}
    name_map = gguf.get_tensor_name_map(arch, num_layers)
    keys = list(hf_keys)
    mapping: dict[str, str] = {}
    _add(mapping, name_map, keys, "")
    # transformers then repeats the walk for each child module (Bloom's files name the
    # base model's keys); one level, without overwriting, as it does.
    children: dict[str, list[str]] = {}
    for key in keys:
        head, dot, rest = key.partition(".")
        if dot:
            children.setdefault(head, []).append(rest)
    for head, child_keys in children.items():
        _add(mapping, name_map, child_keys, head + ".")
    mapping.update(extra_names(arch_name, keys, name_map))
    return mapping


def _add(mapping: dict[str, str], name_map: Any, keys: Iterable[str], qual_name: str) -> None:
    found: dict[str, str] = {}
    for hf_name in keys:
        name, suffix = hf_name, ""
        if hf_name.endswith((".weight", ".bias")):
            name, suffix = hf_name.rsplit(".", 1)
            suffix = "." + suffix
        gguf_name = name_map.get_name(name)
        if gguf_name is not None:
            found[gguf_name + suffix] = qual_name + hf_name
    for key, value in found.items():
        mapping.setdefault(key, value)
