"""Scan: NaN, Inf, all-zero and extreme tensors found exactly where they were put."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest

from ckpt_gui.core.formats import open_checkpoint
from ckpt_gui.core.jobs import run_to_completion
from ckpt_gui.core.values.chunks import decode_into, iter_chunks
from ckpt_gui.core.values.scan import scan
from ckpt_gui.core.values.stream import TensorStream
from tests.support.diffscan_data import BIG_KEY, INF_KEY, NAN_KEY, ZERO_KEY, damaged

ROOT = Path(__file__).resolve().parents[3]


def test_real_model_is_clean(llama_dir: Path, llama_bin_dir: Path) -> None:
    for target in (llama_dir, llama_bin_dir):
        report = run_to_completion(scan(open_checkpoint(target)))
        assert report.clean, report.flagged
        assert len(report.tensors) == len(open_checkpoint(target).tensors)


@pytest.mark.parametrize("kind", ["safetensors", "pt", "bf16"])
def test_injected_problems_are_found(
    damaged_files: dict[str, Path], llama_state_dict, kind: str
) -> None:
    report = run_to_completion(scan(open_checkpoint(damaged_files[kind]), chunk_elements=512))
    flagged = {t.name: t for t in report.flagged}
    assert set(flagged) == {NAN_KEY, INF_KEY, ZERO_KEY, BIG_KEY}
    assert flagged[NAN_KEY].problems == ["nan"] and flagged[NAN_KEY].nan == 3
    assert flagged[INF_KEY].problems == ["inf"] and flagged[INF_KEY].inf == 1
    assert flagged[ZERO_KEY].problems == ["all_zero"] and flagged[ZERO_KEY].zeros_fraction == 1.0
    assert flagged[BIG_KEY].problems == ["extreme"] and flagged[BIG_KEY].beyond_target == 2
    big = flagged[BIG_KEY]
    assert big.max == pytest.approx(1e6, rel=1e-2) and big.min == pytest.approx(-7e4, rel=1e-2)
    # min/max of the NaN tensor are over its finite values, as torch computes them.
    values = damaged(llama_state_dict)[NAN_KEY]
    if kind == "bf16":
        import torch

        values = values.to(torch.bfloat16).float()
    finite = values[~values.isnan()]
    assert flagged[NAN_KEY].min == float(finite.min()) and flagged[NAN_KEY].max == float(
        finite.max()
    )
    assert report.counts() == {"nan": 1, "inf": 1, "all_zero": 1, "extreme": 1}
    # The Inf sits in one of several chunks: the flagged tensor's full statistics come
    # from a second, careful pass and match torch's over the finite values.
    inf_values = damaged(llama_state_dict)[INF_KEY]
    if kind == "bf16":
        import torch

        inf_values = inf_values.to(torch.bfloat16).float()
    finite = inf_values[inf_values.isfinite()]
    assert (flagged[INF_KEY].min, flagged[INF_KEY].max) == (
        float(finite.min()),
        float(finite.max()),
    )
    assert flagged[INF_KEY].zeros_fraction == float((inf_values == 0).sum()) / inf_values.numel()
    clean = next(t for t in report.tensors if not t.flagged)
    assert clean.min is None and clean.zeros is None  # not computed for unflagged tensors


def test_without_target_dtype_large_values_pass(damaged_files: dict[str, Path]) -> None:
    report = run_to_completion(
        scan(open_checkpoint(damaged_files["safetensors"]), target_dtype=None)
    )
    assert BIG_KEY not in {t.name for t in report.flagged}


def test_fp16_tensor_with_inf(tmp_path: Path) -> None:
    import torch
    from safetensors.torch import save_file

    values = torch.tensor([1.0, 70000.0, -2.0, 0.0])  # 70000 overflows float16 to inf
    save_file(
        {
            # Squares underflow to 0 in float32, yet the values are not zero.
            "tiny": torch.full((100,), 1e-30),
            # Exactly the float16 maximum is not beyond it (sum of squares == limit**2).
            "edge": torch.tensor([65504.0, -65504.0]),
            "h": values.to(torch.float16),
            "i": torch.arange(5),
            "b": torch.zeros(3, dtype=torch.bool),
        },
        tmp_path / "h.safetensors",
    )
    report = run_to_completion(scan(open_checkpoint(tmp_path / "h.safetensors")))
    flagged = {t.name: t for t in report.flagged}
    assert flagged["h"].inf == 1 and flagged["h"].zeros_fraction == 0.25
    assert (flagged["h"].min, flagged["h"].max) == (-2.0, 1.0)
    assert flagged["b"].problems == ["all_zero"]
    assert "i" not in flagged and "tiny" not in flagged and "edge" not in flagged


def test_stream_matches_iter_chunks(
    damaged_files: dict[str, Path], llama_sharded_dir: Path
) -> None:
    for target in (
        damaged_files["safetensors"],
        damaged_files["pt"],
        damaged_files["bf16"],
        llama_sharded_dir,
    ):
        checkpoint = open_checkpoint(target)
        for prefetch in (True, False):
            got: dict[str, list[np.ndarray]] = {}
            scratch = np.empty(96, dtype=np.float32)
            with TensorStream(
                checkpoint, checkpoint.tensors, chunk_elements=96, prefetch=prefetch
            ) as stream:
                for chunk in stream:
                    values = decode_into(chunk.raw, chunk.tensor.dtype, scratch)
                    got.setdefault(chunk.tensor.name, []).append(values.copy())
            for tensor in checkpoint.tensors:
                expected = np.concatenate(list(iter_chunks(checkpoint, tensor)))
                np.testing.assert_array_equal(np.concatenate(got[tensor.name]), expected)


def test_cancel_scan(damaged_files: dict[str, Path]) -> None:
    seen = []
    job = scan(
        open_checkpoint(damaged_files["safetensors"]), chunk_elements=1024, on_tensor=seen.append
    )
    for _ in range(10):
        next(job)
    job.close()
    assert not any(t.name == "tensor-stream" for t in threading.enumerate())
    assert 0 < len(seen) < len(open_checkpoint(damaged_files["safetensors"]).tensors)


def test_truncated_file_is_a_one_line_error(tmp_path: Path, llama_dir: Path) -> None:
    from ckpt_gui.core.errors import CheckpointError

    source = llama_dir / "model.safetensors"
    checkpoint = open_checkpoint(source)
    copy = tmp_path / "model.safetensors"
    copy.write_bytes(source.read_bytes())
    opened = open_checkpoint(copy)
    with copy.open("r+b") as handle:  # truncated after it was opened
        handle.truncate(copy.stat().st_size - 100)
    with pytest.raises(CheckpointError, match="file ends inside tensor"):
        run_to_completion(scan(opened))
    assert checkpoint.tensors


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, "-m", "ckpt_gui", *args], capture_output=True, text=True, env=env
    )


def test_cli_scan(damaged_files: dict[str, Path], llama_dir: Path) -> None:
    bad = cli("scan", str(damaged_files["safetensors"]), "--json")
    assert bad.returncode == 1, bad.stderr
    data = json.loads(bad.stdout)
    assert data["clean"] is False
    assert {t["name"] for t in data["tensors"]} == {NAN_KEY, INF_KEY, ZERO_KEY, BIG_KEY}
    for entry in data["tensors"]:
        assert set(entry) >= {"name", "nan", "inf", "zeros_fraction", "min", "max"}
    good = cli("scan", str(llama_dir), "--json")
    assert good.returncode == 0 and json.loads(good.stdout)["clean"] is True and good.stderr == ""
    text = cli("scan", str(damaged_files["pt"]), "--target-dtype", "none")
    assert text.returncode == 1 and NAN_KEY in text.stdout and BIG_KEY not in text.stdout
