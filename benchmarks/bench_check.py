"""``ckpt-gui check`` on a Llama-2-7B-shaped checkpoint vs from_pretrained(output_loading_info=True).

The checkpoint is written as SPARSE safetensors shards (header, then ``truncate`` to
the full size), so it costs no disk: 291 tensors, 32 layers, hidden 4096,
intermediate 11008, vocab 32000, float16, two shards + index + config.json.

Both sides answer the same question ("which keys are missing / unexpected /
mismatched?") as whole processes. The baseline is what a user would run:
``LlamaForCausalLM.from_pretrained(DIR, output_loading_info=True)``; with the
config's float16 that materialises the weights (13.5 GB at full size) and maps the
shards. When that does not fit in the memory available (with headroom for the other
processes on this machine), the baseline runs on the same shapes with fewer layers,
ours runs on both, and the output says so.

Environment knobs for quick runs:
    BENCH_CHECK_LAYERS=4        layers of the checkpoint (default 32, the 7B shape)
    BENCH_CHECK_BASELINE_GB=8   largest checkpoint the baseline may load (default: what fits)
    BENCH_CHECK_REPEAT=3        runs per side (median)
"""

from __future__ import annotations

import json
import os
import struct
from pathlib import Path

from common import Result, measure, python

HIDDEN, INTERMEDIATE, VOCAB, HEADS = 4096, 11008, 32000, 32
BYTES_PER_VALUE = 2  # float16
SHARD_BYTES = 10 * 1024**3

BASELINE = """
import sys, logging, transformers
logging.getLogger("transformers").setLevel(logging.ERROR)
model, info = transformers.LlamaForCausalLM.from_pretrained(
    sys.argv[1], output_loading_info=True, trust_remote_code=False
)
print(sorted(info["missing_keys"]), sorted(info["unexpected_keys"]), sorted(info["mismatched_keys"]))
"""


def llama_tensors(layers: int) -> list[tuple[str, tuple[int, ...]]]:
    tensors = [("model.embed_tokens.weight", (VOCAB, HIDDEN))]
    for i in range(layers):
        p = f"model.layers.{i}."
        tensors += [
            (p + "input_layernorm.weight", (HIDDEN,)),
            (p + "self_attn.q_proj.weight", (HIDDEN, HIDDEN)),
            (p + "self_attn.k_proj.weight", (HIDDEN, HIDDEN)),
            (p + "self_attn.v_proj.weight", (HIDDEN, HIDDEN)),
            (p + "self_attn.o_proj.weight", (HIDDEN, HIDDEN)),
            (p + "post_attention_layernorm.weight", (HIDDEN,)),
            (p + "mlp.gate_proj.weight", (INTERMEDIATE, HIDDEN)),
            (p + "mlp.up_proj.weight", (INTERMEDIATE, HIDDEN)),
            (p + "mlp.down_proj.weight", (HIDDEN, INTERMEDIATE)),
        ]
    tensors += [("model.norm.weight", (HIDDEN,)), ("lm_head.weight", (VOCAB, HIDDEN))]
    return tensors


def nbytes(shape: tuple[int, ...]) -> int:
    size = BYTES_PER_VALUE
    for dim in shape:
        size *= dim
    return size


def write_sparse_checkpoint(folder: Path, layers: int) -> int:
    """Shards of holes: a real header, then truncate() to the size the header promises."""
    folder.mkdir(parents=True, exist_ok=True)
    shards: list[list[tuple[str, tuple[int, ...]]]] = [[]]
    filled = 0
    for name, shape in llama_tensors(layers):
        if filled + nbytes(shape) > SHARD_BYTES and shards[-1]:
            shards.append([])
            filled = 0
        shards[-1].append((name, shape))
        filled += nbytes(shape)
    weight_map: dict[str, str] = {}
    total = 0
    for index, shard in enumerate(shards, start=1):
        file_name = f"model-{index:05d}-of-{len(shards):05d}.safetensors"
        header: dict[str, object] = {"__metadata__": {"format": "pt"}}
        offset = 0
        for name, shape in shard:
            header[name] = {
                "dtype": "F16",
                "shape": list(shape),
                "data_offsets": [offset, offset + nbytes(shape)],
            }
            offset += nbytes(shape)
            weight_map[name] = file_name
        raw = json.dumps(header, separators=(",", ":")).encode()
        raw += b" " * (-len(raw) % 8)
        path = folder / file_name
        with path.open("wb") as stream:
            stream.write(struct.pack("<Q", len(raw)) + raw)
            stream.truncate(8 + len(raw) + offset)
        total += offset
    (folder / "model.safetensors.index.json").write_text(
        json.dumps({"metadata": {"total_size": total}, "weight_map": weight_map})
    )
    (folder / "config.json").write_text(json.dumps(llama_config(layers)))
    return total


def llama_config(layers: int) -> dict[str, object]:
    return {
        "architectures": ["LlamaForCausalLM"],
        "model_type": "llama",
        "hidden_size": HIDDEN,
        "intermediate_size": INTERMEDIATE,
        "num_hidden_layers": layers,
        "num_attention_heads": HEADS,
        "num_key_value_heads": HEADS,
        "vocab_size": VOCAB,
        "max_position_embeddings": 4096,
        "rms_norm_eps": 1e-5,
        "tie_word_embeddings": False,
        "dtype": "float16",
    }


def available_bytes() -> int:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemAvailable:"):
            return int(line.split()[1]) * 1024
    return 0


def baseline_layers(layers: int) -> int:
    """Most layers whose from_pretrained fits: weights materialised + shard pages mapped
    (both count in RSS) + 2 GB for the interpreter and libraries, in half of what is
    free now (the machine is shared)."""
    budget_env = os.environ.get("BENCH_CHECK_BASELINE_GB")
    budget = (
        float(budget_env) * 1024**3 if budget_env else (available_bytes() / 2 - 2 * 1024**3) / 2
    )
    per_layer = nbytes((HIDDEN, HIDDEN)) * 4 + nbytes((INTERMEDIATE, HIDDEN)) * 3
    fixed = nbytes((VOCAB, HIDDEN)) * 2
    fit = int((budget - fixed) // per_layer)
    return max(1, min(layers, fit))


def run(workdir: Path) -> list[Result]:
    layers = int(os.environ.get("BENCH_CHECK_LAYERS", "32"))
    repeat = int(os.environ.get("BENCH_CHECK_REPEAT", "3"))
    full = workdir / f"llama-{layers}l"
    size = write_sparse_checkpoint(full, layers)
    tensors = len(llama_tensors(layers))
    ours_cmd = python("-m", "ckpt_gui", "check", str(full), "--json")
    ours_full = measure(ours_cmd, repeat=repeat)
    label = f"check: Llama {layers} layers, {tensors} tensors, {size / 1e9:.1f} GB"
    small_layers = baseline_layers(layers)
    if small_layers == layers:
        baseline = measure(python("-c", BASELINE, str(full)), repeat=repeat)
        return [Result(label, ours_full, baseline, target_speedup=10.0, note=_note(size))]
    small = workdir / f"llama-{small_layers}l"
    small_size = write_sparse_checkpoint(small, small_layers)
    ours_small = measure(python("-m", "ckpt_gui", "check", str(small), "--json"), repeat=repeat)
    baseline = measure(python("-c", BASELINE, str(small)), repeat=repeat)
    note = (
        f"baseline cannot fit at {size / 1e9:.1f} GB (needs ~{2 * size / 1e9:.0f} GB RSS); "
        f"it ran on {small_layers} layers ({small_size / 1e9:.1f} GB), same shapes. "
        f"ours at full size: {ours_full.seconds:.2f} s, {ours_full.peak_rss_mb:.0f} MB; "
        f"full-size ours vs reduced baseline: {baseline.seconds / ours_full.seconds:.1f}x"
    )
    return [
        Result(
            f"check: Llama {small_layers} layers ({small_size / 1e9:.1f} GB), both sides",
            ours_small,
            baseline,
            target_speedup=10.0,
            note=note,
        )
    ]


def _note(size: int) -> str:
    return f"sparse shards, {size / 1e9:.1f} GB of float16 holes; baseline loads them all"
