"""Listing a Llama-2-7B-shaped sharded safetensors checkpoint: ours vs transformers.

Baseline: what a user does today to see names and shapes, ``from_pretrained`` and
walk the state dict. Set CKPT_BENCH_LAYERS to fewer layers for a quick run.
"""

from __future__ import annotations

import os
from pathlib import Path

from common import Result, measure, python
from llama_shapes import LLAMA_2_7B, write_sparse_llama

BASELINE = """
import sys, torch
from transformers import AutoModelForCausalLM
model = AutoModelForCausalLM.from_pretrained(sys.argv[1], dtype=torch.float16)
for name, tensor in model.state_dict().items():
    print(name, tuple(tensor.shape), tensor.dtype)
"""

NO_TORCH_CHECK = """
import sys
from ckpt_gui.core.targets import open_target
open_target(sys.argv[1])
assert "torch" not in sys.modules, "torch was imported"
"""


def run(workdir: Path) -> list[Result]:
    config = dict(LLAMA_2_7B)
    config["num_hidden_layers"] = int(
        os.environ.get("CKPT_BENCH_LAYERS", config["num_hidden_layers"])
    )
    folder = write_sparse_llama(workdir / "llama-7b", config)
    ours = measure(python("-m", "ckpt_gui", "inspect", str(folder), "--json"), repeat=5)
    measure(python("-c", NO_TORCH_CHECK, str(folder)))
    baseline = measure(python("-c", BASELINE, str(folder)), repeat=1)
    layers = config["num_hidden_layers"]
    return [
        *run_flat(workdir),
        Result(
            f"inspect --json, Llama-2-7B shapes ({layers} layers)",
            ours,
            baseline,
            target_speedup=20,
            note="baseline: from_pretrained(dtype=float16) + state_dict(); ours imports no torch (checked)",
        ),
    ]


# -- a big flat listing: inspect --json vs plain Python over the same header -----------------
FLAT_TENSORS = int(os.environ.get("CKPT_BENCH_FLAT_TENSORS", "200000"))

PLAIN_JSON_DUMP = """
import json, math, struct, sys
path = sys.argv[1]
with open(path, "rb") as f:
    (n,) = struct.unpack("<Q", f.read(8))
    header = json.loads(f.read(n))
rows = [
    {"name": k, "dtype": v["dtype"], "shape": v["shape"], "parameters": math.prod(v["shape"]),
     "nbytes": v["data_offsets"][1] - v["data_offsets"][0], "file": path.rsplit("/", 1)[-1],
     "offset": 8 + n + v["data_offsets"][0]}
    for k, v in header.items() if k != "__metadata__"
]
sys.stdout.write(json.dumps({"tensors": rows}) + "\\n")
"""


def write_flat_safetensors(path: Path, count: int) -> None:
    """``count`` tiny F16 tensors directly under the root (no module nesting at all)."""
    import json
    import struct

    header = {
        f"w{i:07d}": {"dtype": "F16", "shape": [2], "data_offsets": [4 * i, 4 * i + 4]}
        for i in range(count)
    }
    raw = json.dumps(header).encode()
    with path.open("wb") as stream:
        stream.write(struct.pack("<Q", len(raw)))
        stream.write(raw)
        stream.write(os.urandom(4 * count))


def run_flat(workdir: Path) -> list[Result]:
    target = workdir / "flat.safetensors"
    write_flat_safetensors(target, FLAT_TENSORS)
    ours = measure(python("-m", "ckpt_gui", "inspect", str(target), "--json"), repeat=3)
    baseline = measure(python("-c", PLAIN_JSON_DUMP, str(target)), repeat=3)
    return [
        Result(
            f"inspect --json, {FLAT_TENSORS:,} flat tensors",
            ours,
            baseline,
            target_speedup=0.5,  # at most 2x the time of the plain script
            note="baseline: struct + json.loads of the header, the same rows, one json.dumps",
        )
    ]
