"""Merging a 2-rank DCP checkpoint into safetensors, against torch's own converter.

The checkpoint: a TinyLlama-shaped model (about 1.1B parameters, float32, 4.4 GB)
saved by ``dcp.save`` from two gloo processes, every tensor row-sharded over both
(as FSDP2 shards). Baseline, whole process: ``dcp_to_torch_save`` (torch's
documented way out of DCP) followed by loading that file (``mmap=True``) and
``save_torch_state_dict`` into 5 GB safetensors shards. Ours: ``ckpt-gui export
safetensors DIR OUT``. Both without fsync, the source evicted from the page cache
before each run. Scale with CKPT_GUI_BENCH_SCALE (fraction of the 22 layers).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from bench_export import LAYERS, config_dict, evict
from common import ROOT, Measurement, Result, measure, python

WRITER = r"""
import os, sys, torch, torch.distributed as dist
import torch.multiprocessing as mp

def rank_main(rank, out, shapes, port):
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=2)
    from torch.distributed.device_mesh import init_device_mesh
    from torch.distributed.tensor import DTensor, Shard
    import torch.distributed.checkpoint as dcp
    mesh = init_device_mesh("cpu", (2,))
    generator = torch.Generator().manual_seed(rank)
    state = {}
    for name, shape in shapes.items():
        rows = shape[0] // 2 + (shape[0] % 2 if rank == 0 else 0)
        local = torch.randn((rows, *shape[1:]), generator=generator) * 0.02
        stride = torch.empty(shape, device="meta").stride()
        state[name] = DTensor.from_local(local, mesh, [Shard(0)], run_check=False,
                                         shape=torch.Size(shape), stride=stride)
    dcp.save({"model": state}, checkpoint_id=out)
    dist.destroy_process_group()

if __name__ == "__main__":
    import json
    out, shapes_file, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
    shapes = json.load(open(shapes_file))
    mp.spawn(rank_main, args=(out, shapes, port), nprocs=2)
"""

BASELINE = r"""
import sys, torch
from torch.distributed.checkpoint.format_utils import dcp_to_torch_save
from huggingface_hub import save_torch_state_dict
source, scratch, out = sys.argv[1:4]
dcp_to_torch_save(source, scratch)
state = torch.load(scratch, mmap=True, weights_only=True)["model"]
save_torch_state_dict(state, out, max_shard_size="5GB")
"""


def _shapes() -> dict[str, list[int]]:
    sys.path.insert(0, str(Path(__file__).parent))
    from llama_shapes import llama_tensor_shapes

    return llama_tensor_shapes(config_dict())


def run(workdir: Path) -> list[Result]:
    import json

    from tests.support.make_distributed import free_port

    source = workdir / "dcp"
    shapes_file = workdir / "shapes.json"
    shapes_file.write_text(json.dumps(_shapes()))
    writer = workdir / "write_dcp.py"
    writer.write_text(WRITER)
    print(f"   writing a {LAYERS}-layer DCP checkpoint from 2 gloo processes...", flush=True)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    subprocess.run(
        python(str(writer), str(source), str(shapes_file), str(free_port())), check=True, env=env
    )
    size = sum(p.stat().st_size for p in source.iterdir())
    baseline_script = workdir / "baseline.py"
    baseline_script.write_text(BASELINE)

    def ours() -> Measurement:
        shutil.rmtree(workdir / "ours", ignore_errors=True)
        evict(source)
        return measure(
            python("-m", "ckpt_gui", "export", "safetensors", str(source), str(workdir / "ours"),
                   "--no-fsync")
        )

    def baseline() -> Measurement:
        shutil.rmtree(workdir / "base", ignore_errors=True)
        (workdir / "scratch.pt").unlink(missing_ok=True)
        evict(source)
        return measure(
            python(str(baseline_script), str(source), str(workdir / "scratch.pt"),
                   str(workdir / "base"))
        )

    mine, theirs = ours(), baseline()
    mine, theirs = min([mine, ours()], key=lambda m: m.seconds), min(
        [theirs, baseline()], key=lambda m: m.seconds
    )
    return [
        Result(
            f"merge DCP {size / 1e9:.1f} GB (2 ranks) to safetensors",
            mine,
            theirs,
            target_speedup=2,
            note=f"memory target: ours <= 0.25x the baseline ({mine.peak_rss_mb:.0f} vs "
            f"{theirs.peak_rss_mb:.0f} MB)",
        )
    ]
