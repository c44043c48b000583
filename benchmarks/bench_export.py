"""Export jobs against transformers' own load + save_pretrained, whole process, same run.

A Llama-shaped checkpoint of about 1.1B parameters (TinyLlama's shape: hidden
2048, 22 layers, vocab 32000), float32, sharded at 2 GB, random values (not
zeros: zeros compress and write far faster than real weights). Scale it for
quick runs with CKPT_GUI_BENCH_SCALE (fraction of the 22 layers, e.g. 0.1).

Every run starts with the source evicted from the page cache (posix_fadvise
DONTNEED on our own files, no privileges needed), so ours and the baseline both
read cold. Our jobs run with --no-fsync to compare like with like (save_pretrained
does not fsync); one fsync'd conversion is measured too. Disk bandwidth is
measured in the same run: throughput is reported as a fraction of it.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path

from common import Measurement, Result, measure, python

SHARD = "500MB"
SHARD_BYTES = 500 * 10**6
SCALE = float(os.environ.get("CKPT_GUI_BENCH_SCALE", "1"))
LAYERS = max(1, round(22 * SCALE))


def config_dict() -> dict[str, object]:
    return {
        "architectures": ["LlamaForCausalLM"],
        "model_type": "llama",
        "hidden_size": 2048,
        "intermediate_size": 5632,
        "num_hidden_layers": LAYERS,
        "num_attention_heads": 32,
        "num_key_value_heads": 4,
        "vocab_size": 32000,
        "max_position_embeddings": 2048,
        "tie_word_embeddings": False,
        "dtype": "float32",
    }


def evict(folder: Path) -> None:
    """Drop our own files from the page cache so the next reader starts cold."""
    for path in folder.rglob("*"):
        if path.is_file():
            fd = os.open(path, os.O_RDONLY)
            try:
                os.fsync(fd)
                os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
            finally:
                os.close(fd)


def disk_bandwidth(workdir: Path, size: int = 1 << 30) -> tuple[float, float]:
    """(read, write) in bytes/s: random data, write with fsync, read cold."""
    import numpy as np

    block = np.random.default_rng(0).integers(0, 255, 64 << 20, dtype=np.uint8).tobytes()
    path = workdir / "bandwidth.bin"
    start = time.perf_counter()
    with path.open("wb") as stream:
        for _ in range(size // len(block)):
            stream.write(block)
        stream.flush()
        os.fsync(stream.fileno())
    write = size / (time.perf_counter() - start)
    evict(workdir)
    start = time.perf_counter()
    with path.open("rb", buffering=0) as stream:
        buffer = bytearray(len(block))
        while stream.readinto(buffer):
            pass
    read = size / (time.perf_counter() - start)
    path.unlink()
    return read, write


def folder_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.glob("*.safetensors"))


def run(workdir: Path) -> list[Result]:
    config_dir = workdir / "config"
    config_dir.mkdir()
    (config_dir / "config.json").write_text(json.dumps(config_dict()))
    source = workdir / "source"
    print(f"   generating a {LAYERS}-layer Llama (float32, random values)", flush=True)
    cli = ("-m", "ckpt_gui", "export")
    measure(
        python(
            *cli,
            "random-init",
            str(config_dir),
            str(source),
            "--max-shard-size",
            "2GB",
            "--no-fsync",
        )
    )
    source_bytes = folder_bytes(source)
    read_bw, write_bw = disk_bandwidth(workdir)
    print(
        f"   source {source_bytes / 1e9:.2f} GB; disk: read {read_bw / 1e9:.2f} GB/s cold, "
        f"write {write_bw / 1e9:.2f} GB/s with fsync",
        flush=True,
    )

    def timed(argv: list[str], out: Path) -> tuple[Measurement, int]:
        evict(source)
        shutil.rmtree(out, ignore_errors=True)
        measurement = measure(argv)
        written = folder_bytes(out)
        shutil.rmtree(out, ignore_errors=True)
        return measurement, written

    def note(kind: str, ours: Measurement, read: int, written: int) -> str:
        bound = (SHARD_BYTES + 300 * 10**6) / 2**20
        fits = "within" if ours.peak_rss_mb <= bound else "ABOVE"
        parts = [f"{kind}: read {read / 1e9:.2f} GB, wrote {written / 1e9:.2f} GB"]
        if read:
            rate = read / ours.seconds
            parts.append(f"read {rate / 1e9:.2f} GB/s = {rate / read_bw:.0%} of disk")
        rate = written / ours.seconds
        parts.append(f"write {rate / 1e9:.2f} GB/s = {rate / write_bw:.0%} of fsync'd disk")
        parts.append(f"peak RSS {fits} the {bound:.0f} MB bound (one {SHARD} shard + 300 MB)")
        return "; ".join(parts)

    results: list[Result] = []
    out = workdir / "out"

    # fp32 -> bf16
    ours, written = timed(
        python(
            *cli,
            "convert",
            str(source),
            str(out),
            "--dtype",
            "bf16",
            "--max-shard-size",
            SHARD,
            "--no-fsync",
        ),
        out,
    )
    baseline_script = (
        "import sys, torch\n"
        "from transformers import AutoModelForCausalLM\n"
        "m = AutoModelForCausalLM.from_pretrained(sys.argv[1], dtype=torch.bfloat16, trust_remote_code=False)\n"
        "m.save_pretrained(sys.argv[2], max_shard_size=sys.argv[3])\n"
    )
    base, _ = timed(python("-c", baseline_script, str(source), str(out), SHARD), out)
    results.append(
        Result(
            "convert fp32->bf16 (500MB shards)",
            ours,
            base,
            2.0,
            note("convert", ours, source_bytes, written),
        )
    )
    synced, _ = timed(
        python(
            *cli, "convert", str(source), str(out), "--dtype", "bf16", "--max-shard-size", SHARD
        ),
        out,
    )
    results.append(
        Result(
            "convert fp32->bf16, ours with fsync",
            synced,
            base,
            None,
            "durable on disk before the rename",
        )
    )

    # reshard to 500MB
    ours, written = timed(
        python(*cli, "reshard", str(source), str(out), "--max-shard-size", SHARD, "--no-fsync"), out
    )
    baseline_script = (
        "import sys\n"
        "from transformers import AutoModelForCausalLM\n"
        "m = AutoModelForCausalLM.from_pretrained(sys.argv[1], trust_remote_code=False)\n"
        "m.save_pretrained(sys.argv[2], max_shard_size=sys.argv[3])\n"
    )
    base, _ = timed(python("-c", baseline_script, str(source), str(out), SHARD), out)
    results.append(
        Result(
            "reshard fp32 to 500MB", ours, base, 2.0, note("reshard", ours, source_bytes, written)
        )
    )

    # random init
    ours, written = timed(
        python(
            *cli, "random-init", str(config_dir), str(out), "--max-shard-size", SHARD, "--no-fsync"
        ),
        out,
    )
    baseline_script = (
        "import sys\n"
        "from transformers import AutoConfig, AutoModelForCausalLM\n"
        "c = AutoConfig.from_pretrained(sys.argv[1], trust_remote_code=False)\n"
        "m = AutoModelForCausalLM.from_config(c)\n"
        "m.save_pretrained(sys.argv[2], max_shard_size=sys.argv[3])\n"
    )
    base, _ = timed(python("-c", baseline_script, str(config_dir), str(out), SHARD), out)
    results.append(
        Result(
            "random-init fp32 (500MB shards)",
            ours,
            base,
            2.0,
            note("random-init", ours, 0, written),
        )
    )
    shutil.rmtree(source, ignore_errors=True)
    return results
