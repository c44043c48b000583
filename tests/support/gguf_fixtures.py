"""GGUF files written at test time with ``gguf.GGUFWriter``, as llama.cpp writes them.

A tiny transformers Llama is converted the way llama.cpp's ``convert_hf_to_gguf.py``
does: names from gguf's own ``TensorNameMap``, q/k rows permuted for its rotary
layout, 1-D tensors (norms) kept F32, the rest stored as the requested type.
Q4_K cannot be quantized by gguf-py, so its blocks are random bytes with sane
scales: still a valid file that both gguf and transformers dequantize.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

TINY_GGUF_LLAMA = {
    "vocab_size": 128,
    "hidden_size": 64,
    "intermediate_size": 128,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "max_position_embeddings": 64,
    "rms_norm_eps": 1e-5,
    "rope_theta": 10000.0,
    "tie_word_embeddings": False,
}
# Q4_K blocks hold 256 values: every row must be a multiple of that.
TINY_GGUF_LLAMA_K = {
    **TINY_GGUF_LLAMA,
    "vocab_size": 64,
    "hidden_size": 256,
    "intermediate_size": 256,
    "num_hidden_layers": 1,
}


def tiny_llama(**overrides: Any) -> Any:
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    config = LlamaConfig(**{**TINY_GGUF_LLAMA, **overrides})
    return LlamaForCausalLM(config)


def llama_cpp_permute(weights: np.ndarray, n_head: int, n_head_kv: int | None) -> np.ndarray:
    """convert_hf_to_gguf.py's LlamaModel.permute."""
    if n_head_kv is not None and n_head != n_head_kv:
        n_head = n_head_kv
    return (
        weights.reshape(n_head, 2, weights.shape[0] // n_head // 2, *weights.shape[1:])
        .swapaxes(1, 2)
        .reshape(weights.shape)
    )


def write_llama_gguf(
    model: Any,
    path: Path,
    qtype: str = "F32",
    *,
    name: str = "tiny llama",
    with_tokenizer: bool = True,
    padding_strings: int = 0,
    split_max_tensors: int = 0,
) -> Path:
    """Write ``model`` (a LlamaForCausalLM) as a GGUF file of tensor type ``qtype``.

    ``split_max_tensors``: split as ``convert_hf_to_gguf.py --split-max-tensors`` does
    (gguf's own writer: ``NAME-00001-of-0000N.gguf`` ...; the first part is returned).
    """
    import gguf
    from gguf import GGMLQuantizationType as T

    config = model.config
    writer = gguf.GGUFWriter(str(path), "llama", split_max_tensors=split_max_tensors)
    writer.add_name(name)
    writer.add_context_length(config.max_position_embeddings)
    writer.add_embedding_length(config.hidden_size)
    writer.add_block_count(config.num_hidden_layers)
    writer.add_feed_forward_length(config.intermediate_size)
    writer.add_rope_dimension_count(config.hidden_size // config.num_attention_heads)
    writer.add_head_count(config.num_attention_heads)
    writer.add_head_count_kv(config.num_key_value_heads)
    writer.add_layer_norm_rms_eps(config.rms_norm_eps)
    writer.add_rope_freq_base(config.rope_parameters["rope_theta"])
    writer.add_vocab_size(config.vocab_size)
    writer.add_file_type(
        int(getattr(gguf.LlamaFileType, f"MOSTLY_{qtype}", 0)) if qtype != "F32" else 0
    )
    if with_tokenizer:
        writer.add_tokenizer_model("llama")
        writer.add_token_list([f"<t{i}>" for i in range(config.vocab_size)])
        writer.add_token_scores([0.0] * config.vocab_size)
        writer.add_token_types([1] * config.vocab_size)
        writer.add_bos_token_id(1)
        writer.add_eos_token_id(2)
    if padding_strings:
        # A header larger than one read-ahead, as a big vocabulary makes it.
        writer.add_array("test.padding", [f"{i:08d}" * 8 for i in range(padding_strings)])
    name_map = gguf.get_tensor_name_map(gguf.MODEL_ARCH.LLAMA, config.num_hidden_layers)
    rng = np.random.default_rng(0)
    for hf_name, value in model.state_dict().items():
        if hf_name == "lm_head.weight" and config.tie_word_embeddings:
            continue
        array = value.detach().float().numpy().copy()
        if hf_name.endswith("q_proj.weight"):
            array = llama_cpp_permute(array, config.num_attention_heads, config.num_attention_heads)
        elif hf_name.endswith("k_proj.weight"):
            array = llama_cpp_permute(array, config.num_attention_heads, config.num_key_value_heads)
        gguf_name = name_map.get_name(hf_name.rsplit(".", 1)[0]) + ".weight"
        if array.ndim == 1 or qtype == "F32":
            writer.add_tensor(gguf_name, array.astype(np.float32))
        elif qtype == "F16":
            writer.add_tensor(gguf_name, array.astype(np.float16))
        elif qtype == "Q4_K":
            writer.add_tensor(
                gguf_name, random_q4_k(array.shape, rng), raw_shape=None, raw_dtype=T.Q4_K
            )
        else:
            kind = getattr(T, qtype)
            quantized = gguf.quants.quantize(array, kind)
            writer.add_tensor(gguf_name, quantized, raw_shape=quantized.shape, raw_dtype=kind)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    names = writer.format_shard_names(path)
    return names[0]


def random_q4_k(shape: tuple[int, ...], rng: np.random.Generator) -> np.ndarray:
    """Q4_K blocks (144 bytes per 256 values) of random codes with small f16 scales."""
    rows, cols = shape
    blocks = rng.integers(0, 256, size=(rows, cols // 256, 144), dtype=np.uint8)
    scales = np.array([0.01, 0.002], dtype=np.float16).view(np.uint8)
    blocks[:, :, :4] = scales
    return blocks.reshape(rows, cols // 256 * 144)


# -- pytest fixtures (registered in tests/conftest.py) -----------------------------------

GGUF_TYPES = ("F32", "F16", "Q8_0", "Q4_K")


@pytest.fixture(scope="session")
def gguf_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One folder with a tiny Llama as F32, F16, Q8_0 and Q4_K GGUF files, and a tied one."""
    folder = tmp_path_factory.mktemp("gguf")
    model = tiny_llama()
    for qtype in ("F32", "F16", "Q8_0"):
        write_llama_gguf(model, folder / f"tiny-{qtype}.gguf", qtype)
    write_llama_gguf(tiny_llama(**TINY_GGUF_LLAMA_K), folder / "tiny-Q4_K.gguf", "Q4_K")
    write_llama_gguf(tiny_llama(tie_word_embeddings=True), folder / "tied-Q8_0.gguf", "Q8_0")
    write_llama_gguf(model, folder / "big-header-Q8_0.gguf", "Q8_0", padding_strings=5000)
    return folder


@pytest.fixture(scope="session")
def gguf_hf_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The same tiny Llama as save_pretrained writes it (the F32 GGUF holds these values)."""
    folder = tmp_path_factory.mktemp("gguf_hf")
    tiny_llama().save_pretrained(folder)
    return folder


def oracle_state_dict(folder: Path, name: str, **kwargs: Any) -> dict[str, Any]:
    """transformers' own load of a GGUF file: the reference for names and values."""
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name, **kwargs)
    return dict(model.state_dict())
