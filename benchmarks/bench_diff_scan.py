"""Diff and scan throughput as a fraction of the disk's read bandwidth, measured in the same run.

Two Llama-shaped fp32 checkpoints with random data are written (A, and B = A
with small noise on every tensor but the embeddings, as a fine-tune looks),
sharded at 2 GB like ``save_pretrained``. Before every timed run the files are
dropped from the page cache (``posix_fadvise(POSIX_FADV_DONTNEED)`` after an
fsync), so each run reads from disk:

* disk: ``cat`` of the same files, the bandwidth the others are compared to;
* ``ckpt-gui diff A B --json`` (reads A and B) and ``ckpt-gui scan A --json``,
  whole process; throughput = bytes read / wall time, target >= 0.5 of disk;
* baseline for diff: ``safetensors.torch.load_file`` of both + a torch
  comparison per tensor (the straightforward script).

Scale: ``CKPT_GUI_BENCH_PARAMS`` (default 1.1e9 parameters; e.g. 1e8 for a
quick run). Needs about 9 bytes of free disk per parameter.
"""

from __future__ import annotations

import json
import os
import struct
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE)]

from common import ROOT, Measurement, Result, measure, python  # noqa: E402

FULL_PARAMS = 1.1e9
SHARD_BYTES = 2 * 10**9
_PIECE = 1 << 24  # values generated per step: bounded memory while writing


def llama_shapes(params: float) -> list[tuple[str, tuple[int, ...]]]:
    """TinyLlama-1.1B tensor shapes (hidden 2048, 22 layers), layers and vocab scaled to ``params``."""
    scale = params / FULL_PARAMS
    hidden, inter, kv = 2048, 5632, 256
    layers = max(1, round(22 * scale))
    vocab = max(1000, round(32000 * scale))
    shapes: list[tuple[str, tuple[int, ...]]] = [("model.embed_tokens.weight", (vocab, hidden))]
    for i in range(layers):
        p = f"model.layers.{i}."
        shapes += [
            (p + "input_layernorm.weight", (hidden,)),
            (p + "self_attn.q_proj.weight", (hidden, hidden)),
            (p + "self_attn.k_proj.weight", (kv, hidden)),
            (p + "self_attn.v_proj.weight", (kv, hidden)),
            (p + "self_attn.o_proj.weight", (hidden, hidden)),
            (p + "post_attention_layernorm.weight", (hidden,)),
            (p + "mlp.gate_proj.weight", (inter, hidden)),
            (p + "mlp.up_proj.weight", (inter, hidden)),
            (p + "mlp.down_proj.weight", (hidden, inter)),
        ]
    shapes += [("model.norm.weight", (hidden,)), ("lm_head.weight", (vocab, hidden))]
    return shapes


def write_checkpoint(folder: Path, shapes: list[tuple[str, tuple[int, ...]]], noise: bool) -> None:
    """Sharded fp32 safetensors + index; values depend only on the tensor index (A), plus noise (B)."""
    folder.mkdir(parents=True, exist_ok=True)
    shards: list[list[tuple[int, str, tuple[int, ...]]]] = [[]]
    size = 0
    for i, (name, shape) in enumerate(shapes):
        nbytes = 4 * int(np.prod(shape))
        if shards[-1] and size + nbytes > SHARD_BYTES:
            shards.append([])
            size = 0
        shards[-1].append((i, name, shape))
        size += nbytes
    weight_map = {}
    for s, members in enumerate(shards, start=1):
        shard_name = f"model-{s:05d}-of-{len(shards):05d}.safetensors"
        header: dict[str, object] = {"__metadata__": {"format": "pt"}}
        offset = 0
        for _, name, shape in members:
            nbytes = 4 * int(np.prod(shape))
            header[name] = {
                "dtype": "F32",
                "shape": list(shape),
                "data_offsets": [offset, offset + nbytes],
            }
            offset += nbytes
            weight_map[name] = shard_name
        raw = json.dumps(header).encode()
        raw += b" " * (-len(raw) % 8)
        with (folder / shard_name).open("wb") as out:
            out.write(struct.pack("<Q", len(raw)) + raw)
            for i, name, shape in members:
                _write_values(out, i, int(np.prod(shape)), noise and "embed_tokens" not in name)
            out.flush()
            os.fsync(out.fileno())
    (folder / "model.safetensors.index.json").write_text(
        json.dumps({"metadata": {}, "weight_map": weight_map})
    )


def _write_values(out: object, index: int, count: int, noise: bool) -> None:
    base = np.random.default_rng(index)
    extra = np.random.default_rng(10**6 + index)
    for start in range(0, count, _PIECE):
        n = min(_PIECE, count - start)
        values = base.random(n, dtype=np.float32)
        values -= 0.5
        values *= 0.04
        if noise:
            values += extra.random(n, dtype=np.float32) * 2e-4
        out.write(values.data)  # type: ignore[attr-defined]


def drop_from_cache(files: list[Path]) -> None:
    for path in files:
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        finally:
            os.close(fd)


def cold(argv: list[str], files: list[Path], repeat: int) -> Measurement:
    """Median of ``repeat`` runs, each starting with ``files`` out of the page cache."""
    runs = []
    for _ in range(repeat):
        drop_from_cache(files)
        runs.append(measure(argv))
    runs.sort(key=lambda m: m.seconds)
    return runs[len(runs) // 2]


BASELINE = """
import json, sys
from pathlib import Path
import torch
from safetensors.torch import load_file

def load(folder):
    weights = {}
    for shard in sorted(Path(folder).glob("*.safetensors")):
        weights.update(load_file(shard))
    return weights

a, b = load(sys.argv[1]), load(sys.argv[2])
changed, identical = [], 0
for key, x in a.items():
    y = b.get(key)
    if y is None or y.shape != x.shape:
        continue
    if torch.equal(x, y):
        identical += 1
        continue
    x, y = x.float(), y.float()
    d = x - y
    changed.append({"key": key, "max_abs_diff": d.abs().max().item(),
                    "rel_l2": (d.norm() / x.norm()).item(),
                    "cosine": torch.nn.functional.cosine_similarity(x.flatten(), y.flatten(), dim=0).item()})
print(json.dumps({"changed": changed, "identical": identical,
                  "only_in_a": sorted(set(a) - set(b)), "only_in_b": sorted(set(b) - set(a))}))
"""


def run(workdir: Path) -> list[Result]:
    params = float(os.environ.get("CKPT_GUI_BENCH_PARAMS", FULL_PARAMS))
    repeat = int(os.environ.get("CKPT_GUI_BENCH_REPEAT", "3"))
    shapes = llama_shapes(params)
    total = sum(int(np.prod(s)) for _, s in shapes)
    label = f"{total / 1e9:.2f}B fp32"
    start = time.perf_counter()
    write_checkpoint(workdir / "a", shapes, noise=False)
    write_checkpoint(workdir / "b", shapes, noise=True)
    print(f"  wrote 2 x {label} in {time.perf_counter() - start:.0f} s", flush=True)
    files_a = sorted((workdir / "a").glob("*.safetensors"))
    files_b = sorted((workdir / "b").glob("*.safetensors"))
    bytes_a = sum(p.stat().st_size for p in files_a)
    bytes_b = sum(p.stat().st_size for p in files_b)
    both = files_a + files_b

    cat_both = cold(["cat", *map(str, both)], both, repeat)
    cat_a = cold(["cat", *map(str, files_a)], files_a, repeat)
    disk = (bytes_a + bytes_b) / cat_both.seconds
    disk_a = bytes_a / cat_a.seconds
    cli = python("-m", "ckpt_gui")
    diff = cold([*cli, "diff", str(workdir / "a"), str(workdir / "b"), "--json"], both, repeat)
    scan = cold([*cli, "scan", str(workdir / "a"), "--json"], files_a, repeat)
    (workdir / "baseline.py").write_text(BASELINE)
    baseline = cold(
        python(str(workdir / "baseline.py"), str(workdir / "a"), str(workdir / "b")), both, 1
    )
    _check_outputs(workdir, shapes)

    diff_rate = (bytes_a + bytes_b) / diff.seconds
    scan_rate = bytes_a / scan.seconds
    gb = 1e9
    return [
        Result(
            f"diff {label} (vs load_file+torch)",
            diff,
            baseline,
            note=f"disk (cat, cold) {disk / gb:.2f} GB/s; diff reads A+B at {diff_rate / gb:.2f} GB/s "
            f"= {diff_rate / disk:.2f} of disk (target >= 0.5){'' if diff_rate / disk >= 0.5 else '  BELOW TARGET'}",
        ),
        Result(
            f"scan {label} (vs cat of the same files)",
            scan,
            cat_a,
            note=f"disk (cat, cold) {disk_a / gb:.2f} GB/s; scan reads at {scan_rate / gb:.2f} GB/s "
            f"= {scan_rate / disk_a:.2f} of disk (target >= 0.5){'' if scan_rate / disk_a >= 0.5 else '  BELOW TARGET'}",
        ),
    ]


def _check_outputs(workdir: Path, shapes: list[tuple[str, tuple[int, ...]]]) -> None:
    """The timed runs must also be right: every tensor but the embeddings changed, scan clean."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out = subprocess.run(
        [*python("-m", "ckpt_gui"), "diff", str(workdir / "a"), str(workdir / "b"), "--json"],
        capture_output=True,
        text=True,
        env=env,
    )
    data = json.loads(out.stdout)
    assert data["identical"] == 1 and len(data["changed"]) == len(shapes) - 1, data["identical"]
    scan = subprocess.run(
        [*python("-m", "ckpt_gui"), "scan", str(workdir / "a"), "--json"],
        capture_output=True,
        text=True,
        env=env,
    )
    assert json.loads(scan.stdout)["clean"], scan.stdout[:500]
