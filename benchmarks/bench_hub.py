"""Inspecting a sharded repo on a (local, fake) Hub: headers only vs downloading first.

A Llama-shaped sharded safetensors checkpoint is served by the test suite's fake
Hub on 127.0.0.1 (no internet). Compared, each as a whole process:

- ours: ``ckpt-gui inspect org/model --json`` (range requests for the headers)
- baseline 1: ``snapshot_download`` of the weights, then the same local inspection
  (what a user does without header reads)
- baseline 2: ``HfApi.get_safetensors_metadata`` (the Hub client's own header reader)

Size: ``CKPT_BENCH_HUB_LAYERS`` (default 16) layers of hidden size
``CKPT_BENCH_HUB_HIDDEN`` (default 1024), about 0.9 GB in ~500 MB shards at the defaults.
Local loopback is far faster than a real network, so the byte counts matter more than
the times: on a real link, time scales with bytes for the download baseline.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from common import ROOT, Result, measure, python

sys.path.insert(0, str(ROOT / "tests" / "hub"))


def build_checkpoint(folder: Path, layers: int, hidden: int) -> None:
    import numpy as np
    from safetensors.numpy import save_file

    folder.mkdir(parents=True, exist_ok=True)
    intermediate = hidden * 4
    vocab = 32000
    tensors: dict[str, tuple[int, ...]] = {"model.embed_tokens.weight": (vocab, hidden)}
    for i in range(layers):
        p = f"model.layers.{i}."
        tensors |= {
            p + "self_attn.q_proj.weight": (hidden, hidden),
            p + "self_attn.k_proj.weight": (hidden, hidden),
            p + "self_attn.v_proj.weight": (hidden, hidden),
            p + "self_attn.o_proj.weight": (hidden, hidden),
            p + "mlp.gate_proj.weight": (intermediate, hidden),
            p + "mlp.up_proj.weight": (intermediate, hidden),
            p + "mlp.down_proj.weight": (hidden, intermediate),
            p + "input_layernorm.weight": (hidden,),
            p + "post_attention_layernorm.weight": (hidden,),
        }
    tensors |= {"model.norm.weight": (hidden,), "lm_head.weight": (vocab, hidden)}
    shard_limit = 500_000_000
    shards: list[dict[str, np.ndarray]] = [{}]
    sizes = [0]
    for name, shape in tensors.items():
        array = np.zeros(shape, dtype=np.float16)
        if sizes[-1] and sizes[-1] + array.nbytes > shard_limit:
            shards.append({})
            sizes.append(0)
        shards[-1][name] = array
        sizes[-1] += array.nbytes
    weight_map = {}
    for i, shard in enumerate(shards, start=1):
        name = f"model-{i:05d}-of-{len(shards):05d}.safetensors"
        save_file(shard, str(folder / name), metadata={"format": "pt"})
        weight_map |= dict.fromkeys(shard, name)
    index = {"metadata": {"total_size": sum(sizes)}, "weight_map": weight_map}
    (folder / "model.safetensors.index.json").write_text(json.dumps(index))
    config = {"architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": hidden}
    (folder / "config.json").write_text(json.dumps(config))


def run(workdir: Path) -> list[Result]:
    from fake_hub import FakeHub, folder_files

    layers = int(os.environ.get("CKPT_BENCH_HUB_LAYERS", "16"))
    hidden = int(os.environ.get("CKPT_BENCH_HUB_HIDDEN", "1024"))
    folder = workdir / "model"
    build_checkpoint(folder, layers, hidden)
    weights = sum(p.stat().st_size for p in folder.glob("*.safetensors"))
    shards = len(list(folder.glob("*.safetensors")))
    hub = FakeHub()
    hub.add_repo("org/model", folder_files(folder))
    hub.start()
    env = {
        "HF_ENDPOINT": hub.endpoint,
        "HF_HUB_DISABLE_TELEMETRY": "1",
        "HF_HUB_DISABLE_PROGRESS_BARS": "1",
        "HF_HOME": str(workdir / "hf-home"),
    }
    try:
        hub.reset_log()
        ours = measure(
            python("-m", "ckpt_gui", "inspect", "org/model", "--json"),
            env={**env, "HF_HUB_CACHE": str(workdir / "cache-ours")},
        )
        ours_bytes, ours_requests = _traffic(hub)
        download = (
            "import sys; from huggingface_hub import snapshot_download;"
            "from ckpt_gui.core.formats import open_checkpoint;"
            f"p = snapshot_download('org/model', endpoint='{hub.endpoint}');"
            "open_checkpoint(p)"
        )
        hub.reset_log()
        baseline_download = measure(
            python("-c", download), env={**env, "HF_HUB_CACHE": str(workdir / "cache-download")}
        )
        download_bytes, download_requests = _traffic(hub)
        metadata = (
            "from huggingface_hub import HfApi;"
            f"HfApi(endpoint='{hub.endpoint}').get_safetensors_metadata('org/model')"
        )
        hub.reset_log()
        baseline_metadata = measure(
            python("-c", metadata), env={**env, "HF_HUB_CACHE": str(workdir / "cache-meta")}
        )
        meta_bytes, meta_requests = _traffic(hub)
    finally:
        hub.stop()
    size = f"{weights / 1e9:.2f} GB in {shards} shards"
    return [
        Result(
            f"hub inspect vs download ({size})",
            ours,
            baseline_download,
            note=f"bytes: ours {ours_bytes:,} in {ours_requests} requests; "
            f"download {download_bytes:,} in {download_requests} requests",
        ),
        Result(
            "hub inspect vs get_safetensors_metadata",
            ours,
            baseline_metadata,
            note=f"bytes: ours {ours_bytes:,}; hub client {meta_bytes:,} in {meta_requests} requests",
        ),
    ]


def _traffic(hub: object) -> tuple[int, int]:
    log = hub.log  # type: ignore[attr-defined]
    return sum(max(r.sent, 0) for r in log), len(log)
