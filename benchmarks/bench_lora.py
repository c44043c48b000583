"""merge-lora against peft's own merge, whole process, same run.

Base: a Llama-shaped model of about 1.1B parameters (TinyLlama's shape: hidden
2048, 22 layers, vocab 32000), bfloat16, 1 GB shards, random values. Adapter:
rank 16, alpha 32, on every projection (q, k, v, o, gate, up, down), random A and B,
written in peft's layout. Baseline: ``from_pretrained`` + ``PeftModel.from_pretrained``
+ ``merge_and_unload`` + ``save_pretrained``. Both start with the files evicted from
the page cache; ours runs with --no-fsync (save_pretrained does not fsync either).
Scale with CKPT_GUI_BENCH_SCALE (fraction of the 22 layers, e.g. 0.1).
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path

from bench_export import config_dict, evict, folder_bytes
from common import Result, measure, python

SHARD = "1GB"
RANK = 16
TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")

ADAPTER_SCRIPT = """
import json, sys, torch
from pathlib import Path
from safetensors.torch import save_file
config = json.loads(Path(sys.argv[1], "config.json").read_text())
out, rank, targets = Path(sys.argv[2]), int(sys.argv[3]), sys.argv[4].split(",")
hidden, inter = config["hidden_size"], config["intermediate_size"]
kv = config["num_key_value_heads"] * hidden // config["num_attention_heads"]
shapes = {"q_proj": (hidden, hidden), "k_proj": (kv, hidden), "v_proj": (kv, hidden),
          "o_proj": (hidden, hidden), "gate_proj": (inter, hidden), "up_proj": (inter, hidden),
          "down_proj": (hidden, inter)}
parent = {"q_proj": "self_attn", "k_proj": "self_attn", "v_proj": "self_attn",
          "o_proj": "self_attn", "gate_proj": "mlp", "up_proj": "mlp", "down_proj": "mlp"}
g = torch.Generator().manual_seed(0)
tensors = {}
for i in range(config["num_hidden_layers"]):
    for t in targets:
        o, n = shapes[t]
        key = f"base_model.model.model.layers.{i}.{parent[t]}.{t}"
        tensors[key + ".lora_A.weight"] = torch.randn(rank, n, generator=g) * 0.01
        tensors[key + ".lora_B.weight"] = torch.randn(o, rank, generator=g) * 0.01
out.mkdir(parents=True, exist_ok=True)
save_file(tensors, str(out / "adapter_model.safetensors"), metadata={"format": "pt"})
(out / "adapter_config.json").write_text(json.dumps({
    "peft_type": "LORA", "task_type": "CAUSAL_LM", "r": rank, "lora_alpha": 2 * rank,
    "target_modules": targets, "lora_dropout": 0.0, "bias": "none", "fan_in_fan_out": False,
    "base_model_name_or_path": sys.argv[1], "inference_mode": True,
}))
"""

BASELINE_SCRIPT = """
import sys, warnings, torch
from transformers import AutoModelForCausalLM
from peft import PeftModel
warnings.simplefilter("ignore")
model = AutoModelForCausalLM.from_pretrained(sys.argv[1], dtype=torch.bfloat16, trust_remote_code=False)
merged = PeftModel.from_pretrained(model, sys.argv[2]).merge_and_unload()
merged.save_pretrained(sys.argv[3], max_shard_size=sys.argv[4])
"""


def run(workdir: Path) -> list[Result]:
    config = {**config_dict(), "dtype": "bfloat16"}
    config_dir = workdir / "config"
    config_dir.mkdir()
    (config_dir / "config.json").write_text(json.dumps(config))
    base = workdir / "base"
    adapter = workdir / "adapter"
    layers = config["num_hidden_layers"]
    print(f"   generating a {layers}-layer Llama (bfloat16) and a rank-{RANK} adapter", flush=True)
    cli = ("-m", "ckpt_gui", "export")
    measure(
        python(
            *cli, "random-init", str(config_dir), str(base), "--max-shard-size", SHARD, "--no-fsync"
        )
    )
    measure(python("-c", ADAPTER_SCRIPT, str(base), str(adapter), str(RANK), ",".join(TARGETS)))
    out = workdir / "out"

    def timed(argv: list[str]):  # type: ignore[no-untyped-def]
        evict(base)
        evict(adapter)
        shutil.rmtree(out, ignore_errors=True)
        measurement = measure(argv)
        written = folder_bytes(out)
        shutil.rmtree(out, ignore_errors=True)
        return measurement, written

    ours, written = timed(
        python(
            *cli,
            "merge-lora",
            str(base),
            str(adapter),
            str(out),
            "--max-shard-size",
            SHARD,
            "--no-fsync",
        )
    )
    baseline, _ = timed(python("-c", BASELINE_SCRIPT, str(base), str(adapter), str(out), SHARD))
    base_bytes = folder_bytes(base)
    mem_ratio = ours.peak_rss_mb / baseline.peak_rss_mb
    note = (
        f"base {base_bytes / 1e9:.2f} GB bf16 ({layers} layers), wrote {written / 1e9:.2f} GB; "
        f"peak memory {mem_ratio:.2f}x peft's (target <= 0.25x: "
        f"{'ok' if mem_ratio <= 0.25 else 'ABOVE'}); load {os.getloadavg()[0]:.1f}"
    )
    shutil.rmtree(base, ignore_errors=True)
    return [Result(f"merge-lora r{RANK} into {layers}-layer Llama bf16", ours, baseline, 2.0, note)]


if __name__ == "__main__":
    sys.path[:0] = [str(Path(__file__).resolve().parent)]
    import tempfile

    from common import print_results

    with tempfile.TemporaryDirectory(prefix="bench-lora-") as tmp:
        print_results(run(Path(tmp)))
