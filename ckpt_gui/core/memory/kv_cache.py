"""KV cache size from a config: per token, and for a context and batch.

Per layer and token a standard attention layer keeps a key and a value for each
KV head: ``2 * num_key_value_heads * head_dim`` values, ``head_dim`` as the config
states it (Gemma's differs from ``hidden_size / num_attention_heads``). Sliding-window
layers (``layer_types`` entries ``sliding_attention``, or every layer of a config with
a ``sliding_window`` and no ``layer_types``, as Mistral's) keep at most the window.
Multi-head latent attention (DeepSeek-V2/V3: ``kv_lora_rank``) caches one compressed
latent plus the shared rotary key per token: ``kv_lora_rank + qk_rope_head_dim``
values, which is what MLA serving engines allocate; transformers' own DynamicCache
stores the decompressed keys and values, reported beside it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class KvCacheShape:
    """What the config says about the cache; ``values_per_token`` per layer."""

    layers: int
    kv_heads: int
    head_dim: int
    values_per_token: int  # per layer, keys and values together
    windows: tuple[int | None, ...]  # per layer: None = full attention
    attention: str  # "mha", "gqa", "mqa" or "mla"
    decompressed_values_per_token: int | None = None  # MLA in transformers' DynamicCache

    def bytes_per_token(self, element_bytes: float) -> int:
        return round(self.layers * self.values_per_token * element_bytes)

    def bytes_for(self, context: int, batch: int, element_bytes: float) -> int:
        tokens = sum(min(context, w) if w else context for w in self.windows)
        return round(tokens * batch * self.values_per_token * element_bytes)

    def to_json(self) -> dict[str, Any]:
        sliding = [w for w in self.windows if w]
        return {
            "layers": self.layers,
            "kv_heads": self.kv_heads,
            "head_dim": self.head_dim,
            "attention": self.attention,
            "values_per_token_per_layer": self.values_per_token,
            "sliding_layers": len(sliding),
            "sliding_window": sliding[0] if sliding else None,
            "decompressed_values_per_token_per_layer": self.decompressed_values_per_token,
        }


def text_config(config: Mapping[str, Any]) -> Mapping[str, Any]:
    """Multimodal configs keep the language model's values under ``text_config``."""
    nested = config.get("text_config")
    return nested if isinstance(nested, Mapping) else config


def kv_cache_shape(config: Mapping[str, Any] | None) -> tuple[KvCacheShape | None, list[str]]:
    """The cache layout the config describes, or None (with the reason) when it cannot tell."""
    if not config:
        return None, ["no config.json: the KV cache cannot be estimated"]
    values = text_config(config)
    layers = _first_int(values, "num_hidden_layers", "n_layer", "num_layers", "n_layers")
    heads = _first_int(values, "num_attention_heads", "n_head", "num_heads")
    hidden = _first_int(values, "hidden_size", "n_embd", "d_model")
    if not layers or not heads:
        return None, ["config states no layer or head count: the KV cache cannot be estimated"]
    kv_heads = _first_int(values, "num_key_value_heads", "num_kv_heads", "n_head_kv") or heads
    head_dim = _first_int(values, "head_dim") or (hidden // heads if hidden else 0)
    windows = _windows(values, layers)
    lora_rank = _first_int(values, "kv_lora_rank")
    if lora_rank:
        rope = _first_int(values, "qk_rope_head_dim") or 0
        nope = _first_int(values, "qk_nope_head_dim") or 0
        v_dim = _first_int(values, "v_head_dim") or nope
        return KvCacheShape(
            layers, heads, head_dim, lora_rank + rope, windows, "mla",
            decompressed_values_per_token=heads * (nope + rope + v_dim),
        ), []  # fmt: skip
    if not head_dim:
        return None, ["config states no head_dim or hidden_size: the KV cache cannot be estimated"]
    kind = "mha" if kv_heads == heads else "mqa" if kv_heads == 1 else "gqa"
    return KvCacheShape(layers, kv_heads, head_dim, 2 * kv_heads * head_dim, windows, kind), []


def _windows(values: Mapping[str, Any], layers: int) -> tuple[int | None, ...]:
    window = _first_int(values, "sliding_window")
    types = values.get("layer_types")
    if isinstance(types, list) and len(types) == layers:
        return tuple(window if t == "sliding_attention" and window else None for t in types)
    if window and values.get("use_sliding_window", True) is not False:
        return (window,) * layers
    return (None,) * layers


def default_context(config: Mapping[str, Any] | None) -> int | None:
    if not config:
        return None
    values = text_config(config)
    return _first_int(values, "max_position_embeddings", "n_positions", "max_seq_len", "seq_length")


def _first_int(values: Mapping[str, Any], *names: str) -> int | None:
    for name in names:
        value = values.get(name)
        if isinstance(value, int) and not isinstance(value, bool) and value > 0:
            return value
    return None
