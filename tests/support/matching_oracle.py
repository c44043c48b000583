"""The oracle for matching tests: what transformers itself reports for a checkpoint/config pair.

Tiny models of several families are built from real transformers configs; broken
variants of their state dicts are written as model folders, loaded with
``from_pretrained(output_loading_info=True, ignore_mismatched_sizes=True)`` and the
result compared with ``ckpt_gui.core.check.matching.compare`` on the same folder.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ckpt_gui.core.quiet import quiet_on_this_thread

# architecture -> (config class name, tiny config values)
FAMILIES: dict[str, tuple[str, dict[str, Any]]] = {
    "LlamaForCausalLM": (
        "LlamaConfig",
        {
            "vocab_size": 64,
            "hidden_size": 32,
            "intermediate_size": 48,
            "num_hidden_layers": 1,
            "num_attention_heads": 4,
            "num_key_value_heads": 2,
            "max_position_embeddings": 32,
            "tie_word_embeddings": False,
        },
    ),
    "BertForMaskedLM": (
        "BertConfig",
        {
            "vocab_size": 64,
            "hidden_size": 32,
            "num_hidden_layers": 1,
            "num_attention_heads": 2,
            "intermediate_size": 37,
            "max_position_embeddings": 32,
        },
    ),
    "GPT2LMHeadModel": (
        "GPT2Config",
        {"vocab_size": 64, "n_embd": 32, "n_layer": 1, "n_head": 2, "n_positions": 32},
    ),
    "T5ForConditionalGeneration": (
        "T5Config",
        {
            "vocab_size": 64,
            "d_model": 32,
            "d_kv": 8,
            "d_ff": 37,
            "num_layers": 1,
            "num_decoder_layers": 1,
            "num_heads": 2,
        },
    ),
    "RobertaForMaskedLM": (
        "RobertaConfig",
        {
            "vocab_size": 64,
            "hidden_size": 32,
            "num_hidden_layers": 1,
            "num_attention_heads": 2,
            "intermediate_size": 37,
            "max_position_embeddings": 40,
        },
    ),
    "BartForConditionalGeneration": (
        "BartConfig",
        {
            "vocab_size": 64,
            "d_model": 32,
            "encoder_layers": 1,
            "decoder_layers": 1,
            "encoder_attention_heads": 2,
            "decoder_attention_heads": 2,
            "encoder_ffn_dim": 37,
            "decoder_ffn_dim": 37,
            "max_position_embeddings": 32,
        },
    ),
    "ViTForImageClassification": (
        "ViTConfig",
        {
            "image_size": 16,
            "patch_size": 8,
            "hidden_size": 32,
            "num_hidden_layers": 1,
            "num_attention_heads": 2,
            "intermediate_size": 37,
            "num_labels": 3,
        },
    ),
}


def build_model(architecture: str, **overrides: Any) -> Any:
    """A tiny randomly initialised model of a family (or its base/head sibling)."""
    import torch
    import transformers

    family = next(
        name
        for name, (config_name, _) in FAMILIES.items()
        if getattr(transformers, architecture).config_class.__name__ == config_name
    )
    config_name, values = FAMILIES[family]
    config = getattr(transformers, config_name)(**{**values, **overrides})
    torch.manual_seed(0)
    return getattr(transformers, architecture)(config)


def state_dict_of(model: Any) -> dict[str, Any]:
    """What save_pretrained would store: tied targets left out, each tensor its own copy."""
    tied = set(getattr(model, "all_tied_weights_keys", {}) or {})
    return {
        k: v.detach().clone().contiguous() for k, v in model.state_dict().items() if k not in tied
    }


def write_folder(folder: Path, model: Any, state_dict: dict[str, Any]) -> Path:
    """config.json of ``model`` + model.safetensors holding ``state_dict``."""
    from safetensors.torch import save_file

    folder.mkdir(parents=True, exist_ok=True)
    model.config.architectures = [type(model).__name__]  # as save_pretrained records it
    model.config.to_json_file(folder / "config.json")
    save_file(state_dict, str(folder / "model.safetensors"), metadata={"format": "pt"})
    return folder


def oracle(folder: Path, architecture: str) -> dict[str, Any]:
    """transformers' own loading report for ``folder`` loaded as ``architecture``."""
    import transformers

    model_class = getattr(transformers, architecture)
    # Its load report is what we want, not its log (on this thread only, restored after).
    with quiet_on_this_thread():
        _, info = model_class.from_pretrained(
            folder,
            output_loading_info=True,
            ignore_mismatched_sizes=True,
            trust_remote_code=False,
        )
    return {
        "missing": sorted(info["missing_keys"]),
        "unexpected": sorted(info["unexpected_keys"]),
        "mismatched": sorted((k, tuple(a), tuple(b)) for k, a, b in info["mismatched_keys"]),
    }


def ours(folder: Path, architecture: str | None) -> tuple[dict[str, Any], Any]:
    """Our report for the same pair, in the oracle's shape (and the full report)."""
    from ckpt_gui.core.check.config_source import resolve_config
    from ckpt_gui.core.check.matching import compare
    from ckpt_gui.core.targets import open_target

    checkpoint = open_target(folder)
    report = compare(checkpoint, resolve_config(architecture, checkpoint))
    summary = {
        "missing": sorted(report.missing),
        "unexpected": sorted(report.unexpected),
        "mismatched": sorted((m.key, m.checkpoint_shape, m.model_shape) for m in report.mismatched),
    }
    return summary, report


# Broken variants: name -> state dict transform (None when it does not apply to a family).
Variant = Callable[[dict[str, Any]], dict[str, Any] | None]


def _drop(sd: dict[str, Any]) -> dict[str, Any]:
    key = sorted(k for k in sd if k.endswith(".weight"))[len(sd) // 3]
    return {k: v for k, v in sd.items() if k != key}


def _extra(sd: dict[str, Any]) -> dict[str, Any]:
    import torch

    return {**sd, "extra_head.dense.weight": torch.zeros(4, 4)}


def _wrong_shape(sd: dict[str, Any]) -> dict[str, Any]:
    import torch

    key = sorted(k for k, v in sd.items() if k.endswith(".weight") and v.dim() == 2)[0]
    rows, cols = sd[key].shape
    return {**sd, key: torch.zeros(rows + 3, cols)}


def _prefixed(prefix: str) -> Variant:
    return lambda sd: {prefix + k: v for k, v in sd.items()}


def _legacy_gamma_beta(sd: dict[str, Any]) -> dict[str, Any] | None:
    if not any("LayerNorm." in k for k in sd):
        return None
    renamed = {}
    for key, value in sd.items():
        if "LayerNorm.weight" in key:
            key = key.replace("LayerNorm.weight", "LayerNorm.gamma")
        elif "LayerNorm.bias" in key:
            key = key.replace("LayerNorm.bias", "LayerNorm.beta")
        renamed[key] = value
    return renamed


def _drop_and_extra(sd: dict[str, Any]) -> dict[str, Any]:
    return _extra(_drop(sd))


VARIANTS: dict[str, Variant] = {
    "clean": lambda sd: sd,
    "dropped_key": _drop,
    "extra_key": _extra,
    "wrong_shape": _wrong_shape,
    "ddp_prefix": _prefixed("module."),
    "compile_prefix": _prefixed("_orig_mod."),
    "ddp_and_compile": _prefixed("module._orig_mod."),
    "gamma_beta": _legacy_gamma_beta,
    "dropped_and_extra": _drop_and_extra,
}


def describe(case: dict[str, Any]) -> str:
    return json.dumps(case, default=str)[:2000]
