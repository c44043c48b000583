"""Session fixtures: distributed checkpoints written by torch.distributed and DeepSpeed.

Each is made once per test session by ``make_distributed.py`` in child processes
(FSDP2 over gloo; DeepSpeed on its CPU accelerator). DeepSpeed fixtures skip,
with the reason, where DeepSpeed is not installed or cannot build its CPU ops.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.cli import REPO_ROOT


def _run(args: list[str], timeout: float = 600) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "DS_ACCELERATOR": "cpu"}
    return subprocess.run(
        args, capture_output=True, text=True, timeout=timeout, env=env, cwd=REPO_ROOT,
        stdin=subprocess.DEVNULL,
    )


def _fsdp(factory: pytest.TempPathFactory, fmt: str) -> Path:
    out = factory.mktemp(f"fsdp-{fmt.lower()}") / "checkpoint"
    done = _run([sys.executable, "-m", "tests.support.make_distributed", "fsdp", str(out), fmt])
    assert done.returncode == 0, done.stderr[-3000:]
    return out


@pytest.fixture(scope="session")
def dcp_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """FSDP2 + DCP's default encoding (one small torch archive per chunk)."""
    return _fsdp(tmp_path_factory, "TORCH_SAVE")


@pytest.fixture(scope="session")
def dcp_safetensors_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """FSDP2 + ``SerializationFormat.SAFETENSORS`` (raw chunk bytes in a safetensors file)."""
    return _fsdp(tmp_path_factory, "SAFETENSORS")


def _zero(factory: pytest.TempPathFactory, stage: int) -> Path:
    if importlib.util.find_spec("deepspeed") is None:
        pytest.skip("DeepSpeed is not installed (pip install deepspeed): ZeRO fixtures skipped")
    from tests.support.make_distributed import free_port

    out = factory.mktemp(f"zero{stage}") / "checkpoint"
    done = _run(
        [
            sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2",
            "--master_port", str(free_port()),
            "-m", "tests.support.make_distributed", "deepspeed", str(out), str(stage),
        ],
        timeout=900,
    )
    if done.returncode != 0 and "build" in done.stderr.lower() and "error" in done.stderr.lower():
        pytest.skip(f"DeepSpeed could not build its CPU ops here: {done.stderr[-300:]}")
    assert done.returncode == 0, done.stderr[-3000:]
    return out


@pytest.fixture(scope="session")
def zero2_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _zero(tmp_path_factory, 2)


@pytest.fixture(scope="session")
def zero3_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _zero(tmp_path_factory, 3)
