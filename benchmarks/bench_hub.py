"""Inspecting a sharded repo on a (local, fake) Hub: headers only vs downloading first.

A Llama-shaped sharded safetensors checkpoint is served by the test suite's fake
Hub on 127.0.0.1 (no internet). Compared, each as a whole process:

- ours: ``ckpt-gui inspect org/model --json`` (range requests for the headers)
- baseline 1: ``snapshot_download`` of the weights, then the same local inspection
  (what a user does without header reads)
- baseline 2: ``HfApi.get_safetensors_metadata`` (the Hub client's own header reader)

Size: ``CKPT_BENCH_HUB_LAYERS`` (default 16) layers of hidden size
``CKPT_BENCH_HUB_HIDDEN`` (default 1024), in ``CKPT_BENCH_HUB_SHARD_MB`` (default 100)
MB shards: about 0.7 GB in 7 shards at the defaults.
Local loopback is far faster than a real network, so the byte counts matter more than
the times: on a real link, time scales with bytes for the download baseline.
"""

from __future__ import annotations

import json
import os
import subprocess
import urllib.request
from pathlib import Path

from common import ROOT, Result, measure, python


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
    shard_limit = int(os.environ.get("CKPT_BENCH_HUB_SHARD_MB", "100")) * 1_000_000
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
    layers = int(os.environ.get("CKPT_BENCH_HUB_LAYERS", "16"))
    hidden = int(os.environ.get("CKPT_BENCH_HUB_HIDDEN", "1024"))
    folder = workdir / "model"
    build_checkpoint(folder, layers, hidden)
    weights = sum(p.stat().st_size for p in folder.glob("*.safetensors"))
    shards = len(list(folder.glob("*.safetensors")))
    # Its own process: a server holding the shards in memory must not inflate the
    # measured processes' peak RSS (forked children start with the parent's pages).
    server = subprocess.Popen(
        python(str(ROOT / "tests" / "support" / "fake_hub.py"), "org/model", str(folder)),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert server.stdout is not None
        endpoint = server.stdout.readline().strip()
        env = {
            "HF_ENDPOINT": endpoint,
            "HF_HUB_DISABLE_TELEMETRY": "1",
            "HF_HUB_DISABLE_PROGRESS_BARS": "1",
            "HF_HOME": str(workdir / "hf-home"),
        }
        ours = measure(
            python("-m", "ckpt_gui", "inspect", "org/model", "--json"),
            env={**env, "HF_HUB_CACHE": str(workdir / "cache-ours")},
        )
        ours_traffic = _traffic(endpoint)
        download = (
            "from huggingface_hub import snapshot_download;"
            "from ckpt_gui.core.formats import open_checkpoint;"
            f"open_checkpoint(snapshot_download('org/model', endpoint='{endpoint}'))"
        )
        baseline_download = measure(
            python("-c", download), env={**env, "HF_HUB_CACHE": str(workdir / "cache-download")}
        )
        download_traffic = _traffic(endpoint)
        metadata = (
            "from huggingface_hub import HfApi;"
            f"HfApi(endpoint='{endpoint}').get_safetensors_metadata('org/model')"
        )
        baseline_metadata = measure(
            python("-c", metadata), env={**env, "HF_HUB_CACHE": str(workdir / "cache-meta")}
        )
        meta_traffic = _traffic(endpoint)
    finally:
        if server.stdin is not None:
            server.stdin.close()
        server.wait(timeout=30)
    size = f"{weights / 1e9:.2f} GB in {shards} shards"
    return [
        Result(
            f"hub inspect vs download ({size})",
            ours,
            baseline_download,
            note=f"transferred: ours {ours_traffic}; download {download_traffic}",
        ),
        Result(
            "hub inspect vs get_safetensors_metadata",
            ours,
            baseline_metadata,
            note=f"transferred: ours {ours_traffic}; hub client {meta_traffic}",
        ),
    ]


def _traffic(endpoint: str) -> str:
    """Bytes and requests the server saw since the last call."""
    with urllib.request.urlopen(f"{endpoint}/__stats", timeout=10) as response:
        stats = json.loads(response.read())
    return f"{stats['bytes']:,} bytes in {stats['requests']} requests"
