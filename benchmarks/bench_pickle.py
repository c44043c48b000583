"""Pickled checkpoints read by our own reader: listing and statistics, whole-process.

1. Listing a TinyLlama-1.1B-shaped ``pytorch_model.bin`` (zip format, F32 as
   transformers 4 saved it): ``ckpt-gui inspect --json`` against
   ``torch.load(mmap=True, weights_only=True)`` of the same file plus a walk of
   its names, shapes and dtypes. Target: at least 4x faster; ours imports no
   torch (checked in a separate run).
2. Statistics of one 100M-element F32 tensor in a pickle against the same
   tensor in a safetensors file (both through ``compute_stats``). Target: the
   pickle takes at most 1.5x the safetensors time (reported as a "speedup" of
   at least 0.67x).

Scale knobs for quick runs: CKPT_GUI_BENCH_PICKLE_LAYERS (default 22, the real
1.1B), CKPT_GUI_BENCH_STATS_ELEMENTS (default 100,000,000),
CKPT_GUI_BENCH_REPEAT (default 3).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from common import ROOT, Result, measure, python

TINYLLAMA = {
    "vocab_size": 32000,
    "hidden_size": 2048,
    "intermediate_size": 5632,
    "num_attention_heads": 32,
    "num_key_value_heads": 4,
}

WRITE_BIN = """
import sys, torch
layers, hidden, inter, vocab, heads, kv_heads = map(int, sys.argv[2:8])
kv = kv_heads * hidden // heads
shapes = {"model.embed_tokens.weight": (vocab, hidden)}
for i in range(layers):
    p = f"model.layers.{i}."
    shapes.update({
        p + "self_attn.q_proj.weight": (hidden, hidden),
        p + "self_attn.k_proj.weight": (kv, hidden),
        p + "self_attn.v_proj.weight": (kv, hidden),
        p + "self_attn.o_proj.weight": (hidden, hidden),
        p + "mlp.gate_proj.weight": (inter, hidden),
        p + "mlp.up_proj.weight": (inter, hidden),
        p + "mlp.down_proj.weight": (hidden, inter),
        p + "input_layernorm.weight": (hidden,),
        p + "post_attention_layernorm.weight": (hidden,),
    })
shapes["model.norm.weight"] = (hidden,)
shapes["lm_head.weight"] = (vocab, hidden)
# torch.empty: the bytes do not matter for listing, and writing them is what costs.
state = {name: torch.empty(shape) for name, shape in shapes.items()}
torch.save(state, sys.argv[1])
print(sum(t.numel() for t in state.values()))
"""

WRITE_STATS = """
import sys, torch
from safetensors.torch import save_file
n = int(sys.argv[3])
tensor = torch.randn(n, generator=torch.Generator().manual_seed(0))
torch.save({"big.weight": tensor}, sys.argv[1])
save_file({"big.weight": tensor}, sys.argv[2])
"""

BASELINE_LIST = """
import sys, torch
state = torch.load(sys.argv[1], mmap=True, weights_only=True, map_location="cpu")
for name, tensor in state.items():
    print(name, tuple(tensor.shape), tensor.dtype)
"""

NO_TORCH_CHECK = """
import sys
from ckpt_gui.core.targets import open_target
checkpoint = open_target(sys.argv[1])
assert checkpoint.tensors and "torch" not in sys.modules, "torch was imported"
"""

STATS = """
import sys
from ckpt_gui.core.targets import open_target
from ckpt_gui.core.values.stats import compute_stats
checkpoint = open_target(sys.argv[1])
stats = compute_stats(checkpoint, checkpoint.tensor("big.weight"))
print(stats)
if sys.argv[1].endswith(".bin"):
    assert "torch" not in sys.modules, "torch was imported"
"""


def evict(path: Path) -> None:
    """Drop the file from the page cache where the OS allows it (cold-ish reads)."""
    if not hasattr(os, "posix_fadvise"):
        return
    fd = os.open(path, os.O_RDONLY)
    try:
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)


def run(workdir: Path) -> list[Result]:
    layers = int(os.environ.get("CKPT_GUI_BENCH_PICKLE_LAYERS", "22"))
    elements = int(os.environ.get("CKPT_GUI_BENCH_STATS_ELEMENTS", str(100_000_000)))
    repeat = int(os.environ.get("CKPT_GUI_BENCH_REPEAT", "3"))
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    results: list[Result] = []

    binary = workdir / "pytorch_model.bin"
    shape = [str(TINYLLAMA[k]) for k in ("hidden_size", "intermediate_size", "vocab_size")]
    heads = [str(TINYLLAMA["num_attention_heads"]), str(TINYLLAMA["num_key_value_heads"])]
    written = subprocess.run(
        [sys.executable, "-c", WRITE_BIN, str(binary), str(layers), *shape, *heads],
        check=True,
        capture_output=True,
        text=True,
        env=env,
    )
    parameters = int(written.stdout.strip())
    measure(python("-c", NO_TORCH_CHECK, str(binary)))
    ours = measure(python("-m", "ckpt_gui", "inspect", str(binary), "--json"), repeat=repeat)
    baseline = measure(python("-c", BASELINE_LIST, str(binary)), repeat=repeat)
    results.append(
        Result(
            f"list pytorch_model.bin ({parameters / 1e9:.2f}B params, {layers} layers)",
            ours,
            baseline,
            target_speedup=4,
            note="baseline: torch.load(mmap=True, weights_only=True) + walk; ours imports no torch (checked)",
        )
    )
    binary.unlink()

    pickle_file, safetensors_file = workdir / "big.bin", workdir / "big.safetensors"
    subprocess.run(
        [sys.executable, "-c", WRITE_STATS, str(pickle_file), str(safetensors_file), str(elements)],
        check=True,
        env=env,
    )
    runs_pickle, runs_safe = [], []
    for _ in range(repeat):  # interleaved, so both see the same load on a shared machine
        evict(pickle_file)
        runs_pickle.append(measure(python("-c", STATS, str(pickle_file))))
        evict(safetensors_file)
        runs_safe.append(measure(python("-c", STATS, str(safetensors_file))))
    runs_pickle.sort(key=lambda m: m.seconds)
    runs_safe.sort(key=lambda m: m.seconds)
    results.append(
        Result(
            f"stats of one {elements / 1e6:.0f}M-element tensor: pickle vs safetensors",
            runs_pickle[len(runs_pickle) // 2],
            runs_safe[len(runs_safe) // 2],
            target_speedup=1 / 1.5,
            note="baseline: the same tensor in safetensors; target: pickle <= 1.5x its time "
            "(speedup >= 0.67x); page cache dropped before each run",
        )
    )
    return results
