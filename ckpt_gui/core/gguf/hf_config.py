"""The transformers config a GGUF file stands for, derived as transformers derives it.

Architectures covered by transformers' new config builders
(``transformers.integrations.gguf.GGUF_CONFIG_ARCHS``: Qwen3.5, LFM2) are handed to
``get_gguf_config`` itself. The rest go through the legacy path of
``modeling_gguf_pytorch_utils.load_gguf_checkpoint``; that module imports torch at
import time, so its control flow (architecture renames, tied embeddings, defaults,
vocab size from the tokenizer) is repeated here over its own tables
(``transformers.integrations.ggml.GGUF_CONFIG_MAPPING``, ``GGUF_CONFIG_DEFAULTS_MAPPING``),
which import without torch (read as ``tf_tables`` explains). Tests compare the result with ``AutoConfig.from_pretrained``.
"""

from __future__ import annotations

from typing import Any

from ckpt_gui.core.gguf.header import GGUFHeader
from ckpt_gui.core.gguf.tf_tables import config_builders, ggml_tables

# model_type -> the class AutoModelForCausalLM picks (transformers' MODEL_FOR_CAUSAL_LM_MAPPING_NAMES,
# whose module imports torch); a test checks every entry against that mapping.
CAUSAL_LM_CLASSES: dict[str, str] = {
    "llama": "LlamaForCausalLM",
    "mistral": "MistralForCausalLM",
    "qwen2": "Qwen2ForCausalLM",
    "qwen2_moe": "Qwen2MoeForCausalLM",
    "qwen3": "Qwen3ForCausalLM",
    "qwen3_moe": "Qwen3MoeForCausalLM",
    "falcon": "FalconForCausalLM",
    "stablelm": "StableLmForCausalLM",
    "gpt2": "GPT2LMHeadModel",
    "starcoder2": "Starcoder2ForCausalLM",
    "phi3": "Phi3ForCausalLM",
    "bloom": "BloomForCausalLM",
    "mamba": "MambaForCausalLM",
    "nemotron": "NemotronForCausalLM",
    "gemma": "GemmaForCausalLM",
    "gemma2": "Gemma2ForCausalLM",
    "gemma3_text": "Gemma3ForCausalLM",
    "cohere": "CohereForCausalLM",
    "gpt_oss": "GptOssForCausalLM",
    "lfm2": "Lfm2ForCausalLM",
    "minimax_m2": "MiniMaxM2ForCausalLM",
}
# What the legacy path renames (modeling_gguf_pytorch_utils.load_gguf_checkpoint).
_ARCH_RENAMES = {
    "qwen2moe": "qwen2_moe",
    "gpt-oss": "gpt_oss",
    "gpt_oss": "gpt_oss",
    "qwen3moe": "qwen3_moe",
    "minimax-m2": "minimax_m2",
}
_NOT_TIED = ("falcon", "bloom")


class UnsupportedArchitecture(Exception):
    pass


def derive_config(header: GGUFHeader) -> dict[str, Any]:
    """The config dict ``AutoConfig.from_pretrained(dir, gguf_file=...)`` starts from.

    Raises ``UnsupportedArchitecture`` when transformers cannot load this architecture.
    """
    fields = header.fields
    architecture = fields.get("general.architecture")
    if not isinstance(architecture, str):
        raise UnsupportedArchitecture("the file names no general.architecture")
    tensor_names = tuple(t.name for t in header.tensors)
    builders = config_builders()
    if architecture in builders.GGUF_CONFIG_ARCHS:
        metadata = {
            k: (len(v) if k == "tokenizer.ggml.tokens" and isinstance(v, list) else v)
            for k, v in fields.items()
        }
        try:
            return dict(builders.get_gguf_config(metadata, tensor_names))
        except KeyError as exc:
            raise UnsupportedArchitecture(f"metadata lacks {exc.args[0]}") from None
    return _legacy_config(fields, architecture, tensor_names)


def _legacy_config(
    fields: dict[str, Any], architecture: str, tensor_names: tuple[str, ...]
) -> dict[str, Any]:
    GGUF_CONFIG_MAPPING, GGUF_CONFIG_DEFAULTS_MAPPING = ggml_tables()
    model_name = fields.get("general.name")
    updated = architecture
    config: dict[str, Any] = {}
    if "llama" in architecture and isinstance(model_name, str) and "mistral" in model_name:
        updated = "mistral"
    elif "t5" in architecture:
        raise UnsupportedArchitecture("T5 GGUF files are not supported by ckpt-gui yet")
    for key, renamed in _ARCH_RENAMES.items():
        if key in architecture:
            updated = renamed
    if "stablelm" in architecture:
        config["use_qkv_bias"] = any(
            b in n for n in tensor_names for b in ("attn_q.bias", "attn_k.bias", "attn_v.bias")
        )
        config["use_parallel_residual"] = not any("ffn_norm" in n for n in tensor_names)
    if architecture not in GGUF_CONFIG_MAPPING and updated not in GGUF_CONFIG_MAPPING:
        raise UnsupportedArchitecture(
            f"transformers cannot load GGUF architecture {architecture!r}"
        )
    config["tie_word_embeddings"] = (
        all(name != "output.weight" for name in tensor_names) or architecture in _NOT_TIED
    )
    defaults = GGUF_CONFIG_DEFAULTS_MAPPING.get(
        updated, GGUF_CONFIG_DEFAULTS_MAPPING.get(architecture) or {}
    )
    for key, value in defaults.items():
        config.setdefault(key, value)
    renames = {"general": GGUF_CONFIG_MAPPING["general"], **GGUF_CONFIG_MAPPING}
    for gguf_key, raw in fields.items():
        gguf_key = gguf_key.replace(architecture, updated)
        prefix, _, config_key = gguf_key.partition(".")
        value = raw[0] if isinstance(raw, list) and len(raw) == 1 else raw
        if isinstance(value, str) and architecture in value:
            value = value.replace(architecture, updated)
        table = renames.get(prefix)
        if table is None or config_key not in table:
            continue
        target = table[config_key]
        if target is not None and target != -1:
            config[target] = value
    if config.get("model_type") == "gemma3":
        config["model_type"] = "gemma3_text"
    if config.get("model_type") == "gemma4":
        raise UnsupportedArchitecture("Gemma 4 GGUF files are not supported by ckpt-gui yet")
    if "vocab_size" not in config and isinstance(fields.get("tokenizer.ggml.tokens"), list):
        config["vocab_size"] = len(fields["tokenizer.ggml.tokens"])
    return config


def with_architecture(config: dict[str, Any]) -> dict[str, Any]:
    """``architectures`` as AutoModelForCausalLM would pick it, when the config has none."""
    if config.get("architectures"):
        return config
    model_type = config.get("model_type")
    cls = CAUSAL_LM_CLASSES.get(model_type) if isinstance(model_type, str) else None
    return {**config, "architectures": [cls]} if cls else config
