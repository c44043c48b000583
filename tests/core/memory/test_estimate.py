"""Memory estimates against the libraries' own answers.

- Weights, largest layer, Adam training: accelerate's ``calculate_maximum_sizes`` and
  ``estimate_training_usage`` on the meta model of the same config, float32 as
  ``accelerate estimate-memory`` builds it. accelerate also counts non-persistent
  buffers (rotary ``inv_freq``), which no checkpoint stores: the test adds their
  bytes, computed from the same model, to ours.
- KV cache: the bytes of transformers' own ``DynamicCache`` after a forward pass.
- LoRA: peft's trainable parameter count for the same rank and targets.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest

from ckpt_gui.core.formats import open_checkpoint
from ckpt_gui.core.memory.config_source import checkpoint_from_config
from ckpt_gui.core.memory.estimate import estimate_memory
from ckpt_gui.core.memory.kv_cache import kv_cache_shape
from tests.support.quant_fixtures import QUANT_LLAMA, llama, write_layout


def accelerate_figures(model: Any) -> tuple[int, int, dict[str, int]]:
    """(total - non-persistent buffers, largest layer, Adam peaks) as accelerate says."""
    from accelerate.commands.estimate import estimate_training_usage
    from accelerate.utils import calculate_maximum_sizes

    total, (largest, _names) = calculate_maximum_sizes(model)
    state = model.state_dict()
    buffers = sum(b.numel() * b.element_size() for n, b in model.named_buffers() if n not in state)
    stored = total - buffers
    peaks = {p: max(estimate_training_usage(total, p).values()) for p in ("float32", "bfloat16")}
    own = {p: max(estimate_training_usage(stored, p).values()) for p in ("float32", "bfloat16")}
    assert all(own[p] <= peaks[p] for p in peaks)
    return stored, largest, own


def meta_llama(**overrides: Any) -> Any:
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    with torch.device("meta"):
        return LlamaForCausalLM(LlamaConfig(**{**QUANT_LLAMA, **overrides}))


@pytest.fixture(scope="module")
def folders(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("memory")
    plain = base / "plain"
    model = llama("bfloat16")
    model.save_pretrained(plain)
    return {
        "plain": plain,
        "gptq": write_layout("gptq", base / "gptq"),
        "bnb-nf4": write_layout("bnb-nf4", base / "bnb-nf4"),
    }


@pytest.mark.parametrize("layout", ["plain", "gptq", "bnb-nf4"])
def test_weights_and_training_agree_with_accelerate(folders: dict[str, Path], layout: str) -> None:
    stored, largest, peaks = accelerate_figures(meta_llama())
    estimate = estimate_memory(open_checkpoint(folders[layout]))
    assert estimate.weights_bytes_by_dtype["float32"] == stored
    assert estimate.largest_layer is not None
    assert estimate.largest_layer.bytes_by_dtype["float32"] == largest
    assert estimate.largest_layer.name == "model.layers.0"
    assert {k: v.peak for k, v in estimate.training.items()} == peaks
    # The stored figure is what the files hold: quantized weights at their real size.
    assert estimate.weights_bytes == open_checkpoint(folders[layout]).total_bytes
    if layout != "plain":
        assert estimate.weights_bytes < estimate.weights_bytes_by_dtype["bfloat16"]


def test_config_alone_agrees_with_accelerate(folders: dict[str, Path]) -> None:
    stored, largest, peaks = accelerate_figures(meta_llama())
    estimate = estimate_memory(checkpoint_from_config(folders["plain"] / "config.json"))
    assert estimate.weights_bytes_by_dtype["float32"] == stored
    assert estimate.largest_layer is not None
    assert estimate.largest_layer.bytes_by_dtype["float32"] == largest
    assert {k: v.peak for k, v in estimate.training.items()} == peaks
    assert estimate.weights_bytes == stored // 2  # the config's dtype: bfloat16


def test_tied_embeddings_count_once_as_accelerate_does(tmp_path: Path) -> None:
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    stored, largest, _ = accelerate_figures(meta_llama(tie_word_embeddings=True))
    LlamaForCausalLM(LlamaConfig(**{**QUANT_LLAMA, "tie_word_embeddings": True})).to(
        torch.float32
    ).save_pretrained(tmp_path)
    for checkpoint in (open_checkpoint(tmp_path), checkpoint_from_config(tmp_path / "config.json")):
        estimate = estimate_memory(checkpoint)
        assert estimate.weights_bytes_by_dtype["float32"] == stored
        assert estimate.largest_layer is not None
        assert estimate.largest_layer.bytes_by_dtype["float32"] == largest


def dynamic_cache_bytes(model: Any, tokens: int, batch: int) -> int:
    import torch

    ids = torch.randint(0, 100, (batch, tokens))
    with torch.no_grad():
        cache = model(ids, use_cache=True).past_key_values
    return sum(
        layer.keys.numel() * layer.keys.element_size()
        + layer.values.numel() * layer.values.element_size()
        for layer in cache.layers
    )


def _model(config_class: str, model_class: str, **values: Any) -> Any:
    import torch
    import transformers

    torch.manual_seed(0)
    config = getattr(transformers, config_class)(**values)
    return getattr(transformers, model_class)(config).to(torch.bfloat16).eval()


GEMMA2 = {
    "vocab_size": 128,
    "hidden_size": 32,
    "intermediate_size": 64,
    "num_hidden_layers": 4,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "head_dim": 16,  # stated, and not hidden_size / heads
    "sliding_window": 8,
}


@pytest.mark.parametrize("tokens", [5, 20])
def test_kv_cache_matches_dynamic_cache(tokens: int) -> None:
    model = _model("LlamaConfig", "LlamaForCausalLM", **QUANT_LLAMA)
    estimate = estimate_memory(
        checkpoint_with_config(model.config.to_dict()), context=tokens, batch=3
    )
    assert estimate.kv_cache_bytes == dynamic_cache_bytes(model, tokens, 3)
    assert estimate.kv_cache_bytes_per_token == dynamic_cache_bytes(model, 1, 1)


@pytest.mark.parametrize("tokens", [5, 20])
def test_sliding_layers_are_capped_at_their_window(tokens: int) -> None:
    """transformers keeps ``window - 1`` tokens between steps and ``window`` during one;
    the estimate gives the ``window`` a step needs: one token per sliding layer more."""
    model = _model("Gemma2Config", "Gemma2ForCausalLM", **GEMMA2)
    estimate = estimate_memory(
        checkpoint_with_config(model.config.to_dict()), context=tokens, batch=2
    )
    shape, _ = kv_cache_shape(model.config.to_dict())
    assert shape is not None and shape.head_dim == 16
    sliding = sum(1 for w in shape.windows if w)
    assert sliding == 2
    oracle = dynamic_cache_bytes(model, tokens, 2)
    one_token = 2 * shape.values_per_token * 2  # batch x values x bf16 bytes
    expected = oracle + (sliding * one_token if tokens >= GEMMA2["sliding_window"] else 0)
    assert estimate.kv_cache_bytes == expected


def test_mla_caches_the_compressed_latent() -> None:
    config = {
        "model_type": "deepseek_v3",
        "num_hidden_layers": 3,
        "num_attention_heads": 8,
        "num_key_value_heads": 8,
        "hidden_size": 64,
        "kv_lora_rank": 32,
        "qk_rope_head_dim": 8,
        "qk_nope_head_dim": 16,
        "v_head_dim": 16,
    }
    estimate = estimate_memory(checkpoint_with_config(config), context=100, batch=2)
    assert estimate.kv_cache_bytes_per_token == 3 * (32 + 8) * 2
    assert estimate.kv_cache_bytes == 100 * 2 * 3 * (32 + 8) * 2
    assert estimate.kv is not None
    assert estimate.kv.decompressed_values_per_token == 8 * (16 + 8 + 16)


def test_kv_dtype_changes_the_cache_only() -> None:
    config = {**QUANT_LLAMA, "model_type": "llama"}
    bf16 = estimate_memory(checkpoint_with_config(config), context=10)
    fp32 = estimate_memory(checkpoint_with_config(config), context=10, kv_dtype="float32")
    assert fp32.kv_cache_bytes == 2 * (bf16.kv_cache_bytes or 0)
    assert fp32.weights_bytes == bf16.weights_bytes


@pytest.mark.parametrize("layout", ["plain", "gptq"])
def test_lora_trainable_parameters_agree_with_peft(folders: dict[str, Path], layout: str) -> None:
    from peft import LoraConfig, get_peft_model

    model = get_peft_model(llama("float32"), LoraConfig(r=4, target_modules=["q_proj", "v_proj"]))
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    estimate = estimate_memory(open_checkpoint(folders[layout]), lora_rank=4)
    assert estimate.lora is not None
    assert estimate.lora.trainable_parameters == trainable
    assert estimate.lora.training_peak_bytes == estimate.weights_bytes + 16 * trainable


def test_a_subtree_gives_its_own_weights(folders: dict[str, Path]) -> None:
    checkpoint = open_checkpoint(folders["gptq"])
    whole = estimate_memory(checkpoint)
    layer = estimate_memory(checkpoint, scope="model.layers.1")
    assert layer.parameters == 36_992  # 36,864 in seven Linear + two norms of 64
    assert layer.weights_bytes == sum(
        t.nbytes for t in checkpoint.tensors if t.name.startswith("model.layers.1.")
    )
    assert layer.weights_bytes < whole.weights_bytes
    assert layer.kv is None


def checkpoint_with_config(config: dict[str, Any]) -> Any:
    from ckpt_gui.core.model import Checkpoint, TensorInfo

    empty = Checkpoint("config", "none", (TensorInfo("x", "F32", (1,), 4, "f"),), ())
    return dataclasses.replace(empty, config=config)
