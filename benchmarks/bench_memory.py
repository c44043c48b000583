"""``ckpt-gui memory`` on a GPTQ Llama-2-7B-shaped checkpoint vs accelerate's estimate.

The checkpoint is a SPARSE safetensors file in the GPTQ layout (4-bit, group 128:
``qweight``/``qzeros``/``scales``/``g_idx`` for every decoder Linear, float16 for the
rest), so it costs no disk. The baseline is what ``accelerate estimate-memory``
does for a local folder: ``create_empty_model`` (imports torch and transformers,
builds the model on the meta device) + ``calculate_maximum_sizes`` +
``estimate_training_usage``. It sees the dense model only; ours reads the header
and config.json, imports no torch, and also gives the quantized size, KV cache and
LoRA. Both run as whole processes.

Environment knobs for quick runs:
    CKPT_BENCH_LAYERS=4      decoder layers (default 32, the 7B shape)
    CKPT_BENCH_REPEAT=3      runs per side (median; default 5 ours, 3 baseline)
"""

from __future__ import annotations

import json
import os
import struct
from pathlib import Path

from common import Result, measure, python
from llama_shapes import LLAMA_2_7B, llama_tensor_shapes

BITS, GROUP = 4, 128
SIZES = {"F16": 2, "I32": 4}

BASELINE = """
import sys, logging
logging.getLogger("transformers").setLevel(logging.ERROR)
from accelerate.commands.estimate import create_empty_model, estimate_training_usage
from accelerate.utils import calculate_maximum_sizes
model = create_empty_model(sys.argv[1], library_name="transformers", trust_remote_code=False)
total, largest = calculate_maximum_sizes(model)
print(total, largest[0], {p: max(estimate_training_usage(total, p).values()) for p in ("float32", "bfloat16")})
"""

NO_TORCH_CHECK = """
import sys, io, contextlib
from ckpt_gui.cli import main
with contextlib.redirect_stdout(io.StringIO()):
    assert main(["memory", sys.argv[1], "--json"]) == 0
assert "torch" not in sys.modules, "memory imported torch"
"""


def gptq_tensors(config: dict) -> list[tuple[str, str, list[int]]]:
    tensors = []
    for name, shape in llama_tensor_shapes(config).items():
        module = name.removesuffix(".weight")
        if ".layers." in name and len(shape) == 2:
            out_features, in_features = shape
            groups = in_features // GROUP
            tensors += [
                (f"{module}.qweight", "I32", [in_features * BITS // 32, out_features]),
                (f"{module}.qzeros", "I32", [groups, out_features * BITS // 32]),
                (f"{module}.scales", "F16", [groups, out_features]),
                (f"{module}.g_idx", "I32", [in_features]),
            ]
        else:
            tensors.append((name, "F16", shape))
    return tensors


def write_sparse_gptq(folder: Path, config: dict) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    header: dict[str, object] = {"__metadata__": {"format": "pt"}}
    offset = 0
    for name, dtype, shape in gptq_tensors(config):
        size = SIZES[dtype]
        for d in shape:
            size *= d
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [offset, offset + size]}
        offset += size
    raw = json.dumps(header).encode()
    raw += b" " * (-len(raw) % 8)
    path = folder / "model.safetensors"
    with path.open("wb") as stream:
        stream.write(struct.pack("<Q", len(raw)) + raw)
        stream.truncate(8 + len(raw) + offset)
    quant = {"quant_method": "gptq", "bits": BITS, "group_size": GROUP, "desc_act": False}
    full = {
        **config,
        "model_type": "llama",
        "architectures": ["LlamaForCausalLM"],
        "dtype": "float16",
        "quantization_config": quant,
    }
    (folder / "config.json").write_text(json.dumps(full), encoding="utf-8")
    return folder


def run(workdir: Path) -> list[Result]:
    config = dict(LLAMA_2_7B)
    config["num_hidden_layers"] = int(
        os.environ.get("CKPT_BENCH_LAYERS", config["num_hidden_layers"])
    )
    repeat = int(os.environ.get("CKPT_BENCH_REPEAT", 0))
    folder = write_sparse_gptq(workdir / "llama-7b-gptq", config)
    ours = measure(python("-m", "ckpt_gui", "memory", str(folder), "--json"), repeat=repeat or 5)
    measure(python("-c", NO_TORCH_CHECK, str(folder)))
    baseline = measure(python("-c", BASELINE, str(folder)), repeat=repeat or 3)
    layers = config["num_hidden_layers"]
    return [
        Result(
            f"memory --json, GPTQ Llama-2-7B shapes ({layers} layers)",
            ours,
            baseline,
            note="baseline: accelerate create_empty_model + calculate_maximum_sizes + "
            "estimate_training_usage; ours imports no torch (checked)",
        )
    ]
