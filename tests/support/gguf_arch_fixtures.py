"""GGUF files of architectures whose tensors transformers reshapes, written at test time.

A tiny transformers model of each architecture (random weights) is written the way
llama.cpp's ``convert_hf_to_gguf.py`` writes it: GGUF names from gguf's own
``TensorNameMap``, and the layout changes transformers' ``TensorProcessor``s undo
made forward (GPT-2's Conv1D weights transposed, Bloom's fused qkv rows regrouped,
Mamba's ``A_log`` stored as ``-exp(A_log)`` and its conv kernel squeezed, norms
stored ``w + 1`` for Gemma 2/3 and Nemotron, MoE ``gate_up_proj`` split into
``ffn_gate_exps`` and ``ffn_up_exps``). The oracle is transformers loading the file
(``from_pretrained(dir, gguf_file=...)``), never these forward transforms.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np


@dataclass(frozen=True)
class ArchSpec:
    gguf_arch: str
    config_class: str
    config: dict[str, Any]
    metadata: Callable[[Any], dict[str, Any]]
    # HF state-dict key, value -> [(GGUF name, stored array)]
    forward: Callable[[Any, str, np.ndarray], list[tuple[str, np.ndarray]]] | None = None
    model_class: str = "AutoModelForCausalLM"
    extra: dict[str, Any] = field(default_factory=dict)


def _common(c: Any, eps: str = "rms_norm_eps") -> dict[str, Any]:
    return {
        "context_length": c.max_position_embeddings,
        "embedding_length": c.hidden_size,
        "block_count": c.num_hidden_layers,
        "feed_forward_length": c.intermediate_size,
        "attention.head_count": c.num_attention_heads,
        "attention.head_count_kv": c.num_key_value_heads,
        "attention.layer_norm_rms_epsilon": float(getattr(c, eps)),
        "rope.freq_base": 10000.0,
        "vocab_size": c.vocab_size,
    }


def _gemma(c: Any) -> dict[str, Any]:
    return {
        **_common(c),
        "attention.key_length": c.head_dim,
        "attention.sliding_window": c.sliding_window,
    }


def _plus_one(_c: Any, name: str, array: np.ndarray) -> list[tuple[str, np.ndarray]]:
    return [(name, array + 1 if name.endswith("norm.weight") else array)]


def _gpt2_forward(_c: Any, name: str, array: np.ndarray) -> list[tuple[str, np.ndarray]]:
    for part in ("attn_qkv.weight", "ffn_down.weight", "ffn_up.weight", "attn_output.weight"):
        if part in name:
            return [(name, np.ascontiguousarray(array.T))]
    return [(name, array)]


def _bloom_forward(c: Any, name: str, array: np.ndarray) -> list[tuple[str, np.ndarray]]:
    if "attn_qkv" not in name:
        return [(name, array)]
    heads, embed = c.n_head, c.hidden_size
    grouped = array.reshape(heads, 3, embed // heads, *array.shape[1:])
    return [(name, np.ascontiguousarray(grouped.swapaxes(0, 1).reshape(array.shape)))]


def _mamba_forward(_c: Any, name: str, array: np.ndarray) -> list[tuple[str, np.ndarray]]:
    if "ssm_a" in name:
        return [(name, -np.exp(array))]
    if "ssm_conv1d.weight" in name:
        return [(name, np.ascontiguousarray(array[:, 0, :]))]
    return [(name, array)]


def _moe_forward(_c: Any, name: str, array: np.ndarray) -> list[tuple[str, np.ndarray]]:
    if name.endswith("ffn_gate_up_exps.weight"):
        half = array.shape[1] // 2
        return [
            (name.replace("gate_up", "gate"), np.ascontiguousarray(array[:, :half])),
            (name.replace("gate_up", "up"), np.ascontiguousarray(array[:, half:])),
        ]
    if "ffn_gate_inp_shexp" in name:
        return [(name, array.reshape(-1))]
    return [(name, array)]


_LLAMA_LIKE = {
    "vocab_size": 64,
    "hidden_size": 64,
    "intermediate_size": 128,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "max_position_embeddings": 64,
    "tie_word_embeddings": False,
}

ARCHS: dict[str, ArchSpec] = {
    "gpt2": ArchSpec(
        "gpt2",
        "GPT2Config",
        # transformers maps context_length to n_ctx, not n_positions: keep GPT-2's 1024.
        {"vocab_size": 64, "n_embd": 64, "n_layer": 2, "n_head": 4, "tie_word_embeddings": False},
        lambda c: {
            "block_count": c.n_layer,
            "context_length": c.n_positions,
            "embedding_length": c.n_embd,
            "feed_forward_length": 4 * c.n_embd,
            "attention.head_count": c.n_head,
            "attention.layer_norm_epsilon": float(c.layer_norm_epsilon),
        },
        _gpt2_forward,
    ),
    "bloom": ArchSpec(
        "bloom",
        "BloomConfig",
        {"vocab_size": 64, "hidden_size": 64, "n_layer": 2, "n_head": 4},
        lambda c: {
            "block_count": c.n_layer,
            "embedding_length": c.hidden_size,
            "attention.head_count": c.n_head,
            "vocab_size": c.vocab_size,
            "attention.layer_norm_epsilon": float(c.layer_norm_epsilon),
        },
        _bloom_forward,
    ),
    "mamba": ArchSpec(
        "mamba",
        "MambaConfig",
        {
            "vocab_size": 64,
            "hidden_size": 64,
            "state_size": 16,
            "num_hidden_layers": 2,
            "conv_kernel": 4,
            "expand": 2,
            "time_step_rank": 8,
        },
        lambda c: {
            "vocab_size": c.vocab_size,
            "context_length": 64,
            "embedding_length": c.hidden_size,
            "attention.layer_norm_rms_epsilon": float(c.layer_norm_epsilon),
            "block_count": c.num_hidden_layers,
            "ssm.conv_kernel": c.conv_kernel,
            "ssm.state_size": c.state_size,
            "ssm.time_step_rank": c.time_step_rank,
            "ssm.inner_size": c.intermediate_size,
        },
        _mamba_forward,
    ),
    "nemotron": ArchSpec(
        "nemotron",
        "NemotronConfig",
        {**_LLAMA_LIKE, "norm_eps": 1e-5},
        lambda c: _common(c, "norm_eps"),
        _plus_one,
    ),
    "gemma2": ArchSpec(
        "gemma2",
        "Gemma2Config",
        {**_LLAMA_LIKE, "head_dim": 16, "sliding_window": 32, "tie_word_embeddings": True},
        _gemma,
        _plus_one,
    ),
    "gemma3": ArchSpec(
        "gemma3",
        "Gemma3TextConfig",
        {**_LLAMA_LIKE, "head_dim": 16, "sliding_window": 32, "tie_word_embeddings": True},
        _gemma,
        _plus_one,
    ),
    "qwen2moe": ArchSpec(
        "qwen2moe",
        "Qwen2MoeConfig",
        # moe/shared-expert sizes are not in transformers' GGUF mapping: their defaults.
        {**_LLAMA_LIKE, "num_hidden_layers": 1, "num_experts": 4, "num_experts_per_tok": 2},
        lambda c: {
            **_common(c),
            "expert_count": c.num_experts,
            "expert_used_count": c.num_experts_per_tok,
        },
        _moe_forward,
    ),
    "qwen3moe": ArchSpec(
        "qwen3moe",
        "Qwen3MoeConfig",
        {
            **_LLAMA_LIKE,
            "num_hidden_layers": 1,
            "head_dim": 16,
            "num_experts": 4,
            "num_experts_per_tok": 2,
        },
        lambda c: {
            **_common(c),
            "attention.key_length": c.head_dim,
            "expert_count": c.num_experts,
            "expert_used_count": c.num_experts_per_tok,
        },
        _moe_forward,
    ),
}


def tiny_model(arch: str) -> Any:
    import torch
    import transformers

    spec = ARCHS[arch]
    torch.manual_seed(0)
    config = getattr(transformers, spec.config_class)(**spec.config)
    model = transformers.AutoModelForCausalLM.from_config(config)
    return model


def write_arch_gguf(arch: str, path: Path, qtype: str = "F32") -> Path:
    """Write a tiny ``arch`` model as llama.cpp would (2-D tensors as ``qtype``)."""
    import gguf

    spec = ARCHS[arch]
    model = tiny_model(arch)
    config = model.config
    writer = gguf.GGUFWriter(str(path), spec.gguf_arch)
    writer.add_name(f"tiny {arch}")
    for key, value in spec.metadata(config).items():
        full = f"{spec.gguf_arch}.{key}"
        if isinstance(value, bool):
            writer.add_bool(full, value)
        elif isinstance(value, int):
            writer.add_uint32(full, value)
        elif isinstance(value, float):
            writer.add_float32(full, value)
        else:
            writer.add_string(full, value)
    vocab = config.vocab_size
    writer.add_tokenizer_model("gpt2")
    writer.add_token_list([f"<t{i}>" for i in range(vocab)])
    writer.add_token_types([1] * vocab)
    writer.add_token_merges([])
    writer.add_bos_token_id(1)
    writer.add_eos_token_id(2)
    arch_id = next(k for k, v in gguf.MODEL_ARCH_NAMES.items() if v == spec.gguf_arch)
    name_map = gguf.get_tensor_name_map(arch_id, _layers(config))
    tied = bool(getattr(config, "tie_word_embeddings", False))
    for hf_name, value in model.state_dict().items():
        if hf_name == "lm_head.weight" and tied:
            continue
        gguf_name = _gguf_name(name_map, hf_name)
        if gguf_name is None:
            continue
        array = value.detach().float().numpy().copy()
        stored = spec.forward(config, gguf_name, array) if spec.forward else [(gguf_name, array)]
        for name, data in stored:
            _add(writer, name, np.ascontiguousarray(data, dtype=np.float32), qtype)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


def _layers(config: Any) -> int:
    return int(getattr(config, "num_hidden_layers", None) or config.n_layer)


def _gguf_name(name_map: Any, hf_name: str) -> str | None:
    base, suffix = hf_name, ""
    if hf_name.endswith((".weight", ".bias")):
        base, suffix = hf_name.rsplit(".", 1)
        suffix = "." + suffix
    if base.endswith("mlp.experts.gate_up_proj"):
        down = name_map.get_name(base.replace("gate_up_proj", "down_proj"))
        return None if down is None else down.replace("ffn_down", "ffn_gate_up") + ".weight"
    found = name_map.get_name(base)
    if found is None and "." in base:
        found = name_map.get_name(base.split(".", 1)[1])  # BloomModel's names
    if found is None:
        return None
    if base.endswith("mlp.experts.down_proj"):
        suffix = ".weight"  # llama.cpp names the fused expert tensors like weights
    return found + suffix


def _add(writer: Any, name: str, array: np.ndarray, qtype: str) -> None:
    import gguf

    if qtype == "F32" or array.ndim == 1 or array.shape[-1] % 32:
        writer.add_tensor(name, array)
        return
    kind = getattr(gguf.GGMLQuantizationType, qtype)
    quantized = gguf.quants.quantize(array, kind)
    writer.add_tensor(name, quantized, raw_shape=quantized.shape, raw_dtype=kind)
