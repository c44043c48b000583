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

from common import Measurement, Result, measure, python

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
    """Most layers whose from_pretrained surely fits in memory available now.

    transformers 5 keeps float16 weights of a float16 checkpoint as views of the mapped
    shards (peak RSS measured at full size: about 360 MB), but to be safe on a shared
    machine we budget for the weights being materialised once, plus 2 GB.
    """
    budget_env = os.environ.get("BENCH_CHECK_BASELINE_GB")
    budget = float(budget_env) * 1024**3 if budget_env else available_bytes() - 2 * 1024**3
    per_layer = nbytes((HIDDEN, HIDDEN)) * 4 + nbytes((INTERMEDIATE, HIDDEN)) * 3
    fixed = nbytes((VOCAB, HIDDEN)) * 2
    fit = int((budget / 1.1 - fixed) // per_layer)
    return max(1, min(layers, fit))


def measure_ours(
    folder: Path, workdir: Path, repeat: int
) -> tuple[Measurement, Measurement, Measurement]:
    """(cold, built, warm): cold = first check of this config (fresh cache, served by
    the shipped Llama template); built = the same with templates off (imports
    transformers, builds the meta model); warm = the config was seen before (cache)."""
    argv = python("-m", "ckpt_gui", "check", str(folder), "--json")

    def first_runs(tag: str, templates: str) -> Measurement:
        runs = [
            measure(
                argv,
                env={
                    "CKPT_GUI_CACHE_DIR": str(workdir / f"cache-{tag}-{folder.name}-{i}"),
                    "CKPT_GUI_NO_TEMPLATES": templates,
                },
            )
            for i in range(repeat)
        ]
        return sorted(runs, key=lambda m: m.seconds)[len(runs) // 2]

    cold = first_runs("cold", "")
    built = first_runs("built", "1")
    warm_env = {"CKPT_GUI_CACHE_DIR": str(workdir / f"cache-warm-{folder.name}")}
    measure(argv, env=warm_env)  # prime the cache
    return cold, built, measure(argv, env=warm_env, repeat=repeat)


def run(workdir: Path) -> list[Result]:
    layers = int(os.environ.get("BENCH_CHECK_LAYERS", "32"))
    repeat = int(os.environ.get("BENCH_CHECK_REPEAT", "3"))
    full = workdir / f"llama-{layers}l"
    size = write_sparse_checkpoint(full, layers)
    tensors = len(llama_tensors(layers))
    cold_full, built_full, warm_full = measure_ours(full, workdir, repeat)
    small_layers = baseline_layers(layers)
    folder, label, note = (
        full,
        f"{layers} layers, {tensors} tensors, {size / 1e9:.1f} GB",
        _note(size),
    )
    cold, built, warm = cold_full, built_full, warm_full
    if small_layers < layers:
        folder = workdir / f"llama-{small_layers}l"
        small_size = write_sparse_checkpoint(folder, small_layers)
        cold, built, warm = measure_ours(folder, workdir, repeat)
        label = f"{small_layers} layers, {small_size / 1e9:.1f} GB"
        note = (
            f"baseline may not fit at {size / 1e9:.1f} GB in the memory free now; both sides "
            f"ran on {small_layers} layers (same shapes). Ours at full size: cold "
            f"{cold_full.seconds:.2f} s, warm {warm_full.seconds:.2f} s, {cold_full.peak_rss_mb:.0f} MB"
        )
    baseline = measure(python("-c", BASELINE, str(folder)), repeat=repeat)
    return [
        Result(f"check, first run for the config: {label}", cold, baseline, 10.0, note),
        Result(f"check, config seen before: {label}", warm, baseline, 10.0, "cached description"),
        Result(
            f"check, no template (CKPT_GUI_NO_TEMPLATES=1): {label}",
            built,
            baseline,
            None,
            "imports transformers and builds the meta model: what a config no template covers costs",
        ),
    ]


def _note(size: int) -> str:
    return f"sparse shards, {size / 1e9:.1f} GB of float16; baseline = from_pretrained(output_loading_info=True)"
