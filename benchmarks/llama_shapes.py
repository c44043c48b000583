"""Llama-shaped checkpoints for benchmarks: sparse files cost no disk or write time."""

from __future__ import annotations

import json
import struct
from pathlib import Path

LLAMA_2_7B = {
    "vocab_size": 32000,
    "hidden_size": 4096,
    "intermediate_size": 11008,
    "num_hidden_layers": 32,
    "num_attention_heads": 32,
    "num_key_value_heads": 32,
    "max_position_embeddings": 4096,
    "rms_norm_eps": 1e-5,
    "tie_word_embeddings": False,
}
BYTES = {"F32": 4, "F16": 2, "BF16": 2}


def llama_tensor_shapes(config: dict) -> dict[str, list[int]]:
    hidden, inter, vocab = config["hidden_size"], config["intermediate_size"], config["vocab_size"]
    head_dim = hidden // config["num_attention_heads"]
    kv = config["num_key_value_heads"] * head_dim
    shapes: dict[str, list[int]] = {"model.embed_tokens.weight": [vocab, hidden]}
    for i in range(config["num_hidden_layers"]):
        p = f"model.layers.{i}."
        shapes.update(
            {
                p + "input_layernorm.weight": [hidden],
                p + "post_attention_layernorm.weight": [hidden],
                p + "self_attn.q_proj.weight": [hidden, hidden],
                p + "self_attn.k_proj.weight": [kv, hidden],
                p + "self_attn.v_proj.weight": [kv, hidden],
                p + "self_attn.o_proj.weight": [hidden, hidden],
                p + "mlp.gate_proj.weight": [inter, hidden],
                p + "mlp.up_proj.weight": [inter, hidden],
                p + "mlp.down_proj.weight": [hidden, inter],
            }
        )
    shapes["model.norm.weight"] = [hidden]
    shapes["lm_head.weight"] = [vocab, hidden]
    return shapes


def write_sparse_llama(folder: Path, config: dict, dtype: str = "F16", shards: int = 2) -> Path:
    """A sharded safetensors model folder whose data sections are holes (all zeros)."""
    folder.mkdir(parents=True, exist_ok=True)
    shapes = llama_tensor_shapes(config)
    names = list(shapes)
    per_shard = -(-len(names) // shards)
    weight_map: dict[str, str] = {}
    total = 0
    for s in range(shards):
        part = names[s * per_shard : (s + 1) * per_shard]
        file_name = f"model-{s + 1:05d}-of-{shards:05d}.safetensors"
        header: dict[str, object] = {"__metadata__": {"format": "pt"}}
        offset = 0
        for name in part:
            count = 1
            for d in shapes[name]:
                count *= d
            size = count * BYTES[dtype]
            header[name] = {
                "dtype": dtype,
                "shape": shapes[name],
                "data_offsets": [offset, offset + size],
            }
            offset += size
            weight_map[name] = file_name
        raw = json.dumps(header).encode()
        raw += b" " * (-len(raw) % 8)
        path = folder / file_name
        with path.open("wb") as stream:
            stream.write(struct.pack("<Q", len(raw)) + raw)
            stream.truncate(8 + len(raw) + offset)
        total += offset
    (folder / "model.safetensors.index.json").write_text(
        json.dumps({"metadata": {"total_size": total}, "weight_map": weight_map}, indent=2)
    )
    torch_dtype = {"F16": "float16", "BF16": "bfloat16", "F32": "float32"}[dtype]
    (folder / "config.json").write_text(
        json.dumps(
            {
                "architectures": ["LlamaForCausalLM"],
                "model_type": "llama",
                "dtype": torch_dtype,
                **config,
            },
            indent=2,
        )
    )
    return folder
