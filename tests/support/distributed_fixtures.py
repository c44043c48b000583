"""Session fixtures: distributed checkpoints written by torch.distributed and DeepSpeed.

Each is made once per test session by ``make_distributed.py`` in child processes
(FSDP2 over gloo; DeepSpeed on its CPU accelerator). DeepSpeed lives in a folder of
its own (``DEEPSPEED_SITE``, installed by the Makefile) that only these child
processes put on their path: transformers and accelerate import DeepSpeed whenever
it is importable, and ckpt-gui must be tested as users run it, without it. The
DeepSpeed fixtures skip, with the reason, where it is not installed or cannot build
its CPU ops.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.cli import REPO_ROOT

DEEPSPEED_SITE = Path(sys.prefix) / "deepspeed-site"


def _run(args: list[str], timeout: float = 600) -> subprocess.CompletedProcess[str]:
    path = os.pathsep.join([str(REPO_ROOT), str(DEEPSPEED_SITE)])
    env = {**os.environ, "PYTHONPATH": path, "DS_ACCELERATOR": "cpu"}
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


@pytest.fixture(scope="session")
def dcp_columns_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Matrices sharded by columns (tensor parallel): chunks that are not runs of the output."""
    out = tmp_path_factory.mktemp("dcp-columns") / "checkpoint"
    done = _run([sys.executable, "-m", "tests.support.make_distributed", "tp", str(out)])
    assert done.returncode == 0, done.stderr[-3000:]
    return out


def _zero(factory: pytest.TempPathFactory, stage: int, saves: int = 1) -> Path:
    if not (DEEPSPEED_SITE / "deepspeed").is_dir():
        pytest.skip(f"DeepSpeed is not installed in {DEEPSPEED_SITE} (make does it): skipped")
    from tests.support.make_distributed import free_port

    out = factory.mktemp(f"zero{stage}-{saves}") / "checkpoint"
    done = _run(
        [
            sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2",
            "--master_port", str(free_port()),
            "-m", "tests.support.make_distributed", "deepspeed", str(out), str(stage), str(saves),
        ],
        timeout=900,
    )
    if done.returncode != 0 and "build" in done.stderr.lower() and "error" in done.stderr.lower():
        pytest.skip(f"DeepSpeed could not build its CPU ops here: {done.stderr[-300:]}")
    assert done.returncode == 0, done.stderr[-3000:]
    return out


@pytest.fixture(scope="session")
def zero1_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _zero(tmp_path_factory, 1)


@pytest.fixture(scope="session")
def zero2_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _zero(tmp_path_factory, 2)


@pytest.fixture(scope="session")
def zero3_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _zero(tmp_path_factory, 3)


@pytest.fixture(scope="session")
def zero2_two_tags_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """ZeRO-2 saved twice, one step apart: ``global_step1`` and ``global_step2`` (``latest``)."""
    return _zero(tmp_path_factory, 2, saves=2)


def zero_oracle(folder: Path, out: Path, tag: str | None = None) -> Path:
    """DeepSpeed's own ``get_fp32_state_dict_from_zero_checkpoint(folder, tag)``, saved to ``out``."""
    script = (
        "import sys, torch\n"
        "from deepspeed.utils.zero_to_fp32 import get_fp32_state_dict_from_zero_checkpoint\n"
        "tag = sys.argv[3] or None\n"
        "state = get_fp32_state_dict_from_zero_checkpoint(sys.argv[1], tag=tag)\n"
        "torch.save({k: v.detach().contiguous() for k, v in state.items()}, sys.argv[2])\n"
    )
    done = _run([sys.executable, "-c", script, str(folder), str(out), tag or ""])
    assert done.returncode == 0, done.stderr[-3000:]
    return out
