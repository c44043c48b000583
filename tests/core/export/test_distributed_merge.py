"""The file-to-file path of distributed merges: chunks copied as runs of file bytes.

Row-block chunks (FSDP2) and ZeRO's fp32 partitions are named as runs of the rank
files and copied by the kernel; anything else (column shards of tensor
parallelism) is assembled. Both must give the tensors the libraries' own
converters give, and a plain merge must not import torch.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from ckpt_gui.core.export.convert import plan_convert, plan_safetensors, run_plan
from ckpt_gui.core.formats import open_checkpoint
from ckpt_gui.core.formats.distributed.values import CheckpointPieces
from ckpt_gui.core.jobs import run_to_completion
from tests.support.cli import run_python


def _runs_and_bytes(folder: Path) -> tuple[dict[str, Any], dict[str, np.ndarray[Any, Any]]]:
    checkpoint = open_checkpoint(folder)
    pieces = CheckpointPieces(checkpoint)
    try:
        runs = {t.name: pieces.tensor_runs(t.name) for t in checkpoint.tensors}
        assembled = {t.name: pieces.tensor_bytes(t.name) for t in checkpoint.tensors}
    finally:
        pieces.close()
    return runs, assembled


def _read_runs(folder: Path, runs: list[tuple[str, int, int]]) -> bytes:
    data = b""
    for file, offset, length in runs:
        with (folder / file).open("rb") as stream:
            stream.seek(offset)
            data += stream.read(length)
    return data


@pytest.mark.parametrize("fixture", ["dcp_dir", "dcp_safetensors_dir", "zero2_dir", "zero3_dir"])
def test_what_trainers_write_is_copied_as_runs(fixture: str, request: pytest.FixtureRequest) -> None:
    folder: Path = request.getfixturevalue(fixture)
    runs, assembled = _runs_and_bytes(folder)
    for name, tensor_runs in runs.items():
        assert tensor_runs is not None, f"{name} would be assembled"
        assert _read_runs(folder, tensor_runs) == assembled[name].tobytes(), name


def test_column_shards_are_assembled_and_merge_like_torch(
    dcp_columns_dir: Path, tmp_path: Path
) -> None:
    import torch
    from safetensors.torch import load_file
    from torch.distributed.checkpoint.format_utils import dcp_to_torch_save

    runs, _ = _runs_and_bytes(dcp_columns_dir)
    matrices = [n for n, t in runs.items() if t is None]
    assert matrices and all(n.endswith("weight") for n in matrices)
    assert any(t is not None for t in runs.values())  # the replicated norms are runs
    dcp_to_torch_save(dcp_columns_dir, tmp_path / "oracle.pt")
    oracle = torch.load(tmp_path / "oracle.pt", weights_only=True)["model"]
    run_to_completion(run_plan(plan_safetensors(dcp_columns_dir, tmp_path / "out")))
    ours = load_file(tmp_path / "out" / "model.safetensors")
    assert set(ours) == set(oracle)
    for name, value in oracle.items():
        assert torch.equal(ours[name], value), name


def test_a_plain_merge_imports_no_torch(dcp_dir: Path, tmp_path: Path) -> None:
    probe = (
        "import sys\n"
        "from ckpt_gui.core.export.convert import plan_safetensors, run_plan\n"
        "from ckpt_gui.core.jobs import run_to_completion\n"
        f"run_to_completion(run_plan(plan_safetensors({str(dcp_dir)!r}, {str(tmp_path / 'out')!r})))\n"
        "assert 'torch' not in sys.modules, 'torch was imported'\n"
    )
    done = run_python(probe, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert (tmp_path / "out" / "model.safetensors").stat().st_size > 0


def test_a_conversion_still_assembles(dcp_dir: Path, tmp_path: Path) -> None:
    """Another dtype cannot be a byte copy: the tensor is assembled and converted."""
    import torch
    from safetensors.torch import load_file

    run_to_completion(run_plan(plan_convert(dcp_dir, tmp_path / "bf16", "BF16")))
    run_to_completion(run_plan(plan_safetensors(dcp_dir, tmp_path / "f32")))
    bf16 = load_file(tmp_path / "bf16" / "model.safetensors")
    f32 = load_file(tmp_path / "f32" / "model.safetensors")
    for name, value in f32.items():
        assert bf16[name].dtype == torch.bfloat16
        assert torch.equal(bf16[name], value.to(torch.bfloat16)), name
