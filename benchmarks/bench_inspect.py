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
        Result(
            f"inspect --json, Llama-2-7B shapes ({layers} layers)",
            ours,
            baseline,
            target_speedup=20,
            note="baseline: from_pretrained(dtype=float16) + state_dict(); ours imports no torch (checked)",
        )
    ]
