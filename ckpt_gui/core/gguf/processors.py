"""transformers' GGUF ``TensorProcessor``s, as data: what each does to one tensor.

``modeling_gguf_pytorch_utils`` (transformers 5.23) undoes llama.cpp's layout changes
per architecture when it loads a GGUF file; that module imports torch, so its rules
are repeated here (tests check every one against ``from_pretrained(gguf_file=...)``):

- llama: q/k rows un-permuted (``permuted_heads``, streamed by ``values.PermutedRows``);
- bloom: the fused qkv weight and bias regrouped per head (``qkv_heads``);
- gpt2: Conv1D weights (``attn_qkv``, ``attn_output``, ``ffn_up``, ``ffn_down``)
  transposed, and ``output.weight`` named ``lm_head.weight``;
- mamba: ``ssm_a`` holds ``-exp(A_log)`` (``log_neg``), ``ssm_conv1d`` gets its
  middle dimension back;
- nemotron, gemma2, gemma3: every ``*norm.weight`` stored ``w + 1`` (``add: -1``);
- qwen2moe, qwen3moe: ``ffn_gate_exps`` and ``ffn_up_exps`` concatenated on dim 1
  into ``mlp.experts.gate_up_proj`` (``parts``), ``ffn_gate_inp_shexp`` (H,) -> (1, H).

``steps`` says which of these a tensor needs (entries of the GGUF tensor table,
``metadata["gguf.tensors"]``); ``hf_shape`` its shape as transformers holds it.
Architectures ckpt-gui does not convert are in ``REFUSED`` with the reason.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

# transformers' own GGUF loader cannot load these as a causal LM, or loads them
# through its newer weight-conversion path (integrations/gguf), not repeated here.
REFUSED: dict[str, str] = {
    "t5": "T5 is an encoder-decoder model (ckpt-gui converts decoder-only GGUF models)",
    "t5encoder": "T5 encoders are not decoder-only models (ckpt-gui converts those)",
    "gpt-oss": (
        "transformers' GGUF processor for gpt-oss names per-expert tensors "
        "(block_sparse_moe.experts.N) that GptOssForCausalLM does not have"
    ),
    "minimax-m2": "MiniMax-M2 expert merges are not repeated by ckpt-gui yet",
    "qwen35": "transformers converts Qwen3.5 through its new GGUF path (value-head tiling)",
    "qwen35moe": "transformers converts Qwen3.5-MoE through its new GGUF path",
    "lfm2": "transformers converts LFM2 through its new GGUF path (torch dequantization)",
}
MOE_MERGED_ARCHS = frozenset({"qwen2moe", "qwen3moe"})
NORM_OFFSET_ARCHS = frozenset({"nemotron", "gemma2", "gemma3"})
_GPT2_TRANSPOSED = ("attn_qkv.weight", "ffn_down.weight", "ffn_up.weight", "attn_output.weight")
# Table entries that make a tensor's values computed rather than read as stored.
COMPUTED_KEYS = ("parts", "transpose", "add", "log_neg", "qkv_heads")


def steps(arch: str, gguf_name: str, config: Mapping[str, Any]) -> dict[str, Any]:
    """The table entries saying what transformers does to this tensor's values."""
    if arch == "llama":
        heads = _permuted_heads(gguf_name, config)
        return {} if heads is None else {"permuted_heads": heads}
    if arch == "bloom" and "attn_qkv" in gguf_name:
        heads = config.get("n_head")
        return {"qkv_heads": heads} if isinstance(heads, int) else {}
    if arch == "gpt2" and any(p in gguf_name for p in _GPT2_TRANSPOSED):
        return {"transpose": True}
    if arch == "mamba" and "ssm_a" in gguf_name:
        return {"log_neg": True}
    if arch in NORM_OFFSET_ARCHS and "norm.weight" in gguf_name:
        return {"add": -1.0}
    return {}


def hf_shape(arch: str, gguf_name: str, shape: tuple[int, ...]) -> tuple[int, ...]:
    """The tensor's shape once transformers has processed it (``shape``: stored, torch order)."""
    if arch == "gpt2" and any(p in gguf_name for p in _GPT2_TRANSPOSED):
        return tuple(reversed(shape))
    if arch == "mamba" and "ssm_conv1d.weight" in gguf_name and len(shape) == 2:
        return (shape[0], 1, shape[1])
    if arch in MOE_MERGED_ARCHS and "ffn_gate_inp_shexp" in gguf_name:
        return (1, *shape)
    return shape


def merged_slot(arch: str, gguf_name: str) -> int | None:
    """For MoE expert tensors merged into ``gate_up_proj``: 0 (gate, first) or 1 (up)."""
    if arch not in MOE_MERGED_ARCHS or not gguf_name.endswith("_exps.weight"):
        return None
    if ".ffn_gate_exps." in gguf_name:
        return 0
    if ".ffn_up_exps." in gguf_name:
        return 1
    return None


def extra_names(arch: str, hf_keys: list[str], name_map: Any) -> dict[str, str]:
    """GGUF -> HF names transformers adds beyond gguf's ``TensorNameMap`` (its fallbacks)."""
    found: dict[str, str] = {}
    if arch == "gpt2":
        found["output.weight"] = "lm_head.weight"
    if arch in MOE_MERGED_ARCHS:
        for key in hf_keys:
            head, sep, _ = key.partition(".mlp.experts.gate_up_proj")
            if sep and key.endswith("gate_up_proj") and ".layers." in head:
                layer = head.rsplit(".", 1)[-1]
                found[f"blk.{layer}.ffn_gate_exps.weight"] = key
                found[f"blk.{layer}.ffn_up_exps.weight"] = key
            elif key.endswith(".mlp.experts.down_proj"):
                gguf_name = name_map.get_name(key)
                if gguf_name is not None:
                    found[gguf_name + ".weight"] = key
    return found


def is_computed(entry: Mapping[str, Any]) -> bool:
    return any(entry.get(k) for k in COMPUTED_KEYS)


def _permuted_heads(gguf_name: str, config: Mapping[str, Any]) -> int | None:
    """Head count whose q/k row permutation llama.cpp applied (LlamaTensorProcessor)."""
    if not (".attn_q." in gguf_name or ".attn_k." in gguf_name):
        return None
    heads, kv_heads = config.get("num_attention_heads"), config.get("num_key_value_heads")
    if not isinstance(heads, int) or not isinstance(kv_heads, int):
        return None
    return heads if ".attn_q." in gguf_name else kv_heads
