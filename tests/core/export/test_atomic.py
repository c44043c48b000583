"""Exports are atomic: cancel, failure and kill leave no partial output; sources untouched."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from ckpt_gui.core.errors import CheckpointError
from ckpt_gui.core.export import ExportOptions, plan_convert, plan_reshard, run_plan
from ckpt_gui.core.export.atomic import PARTIAL_TAG
from ckpt_gui.core.jobs import run_to_completion

REPO = Path(__file__).resolve().parents[3]


def digest(folder: Path) -> dict[str, str]:
    return {
        p.name: hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.iterdir())
        if p.is_file()
    }


@pytest.fixture()
def big_source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Random float32 data (~24 MB in 12 tensors) so that a job has many progress points."""
    import torch
    from safetensors.torch import save_file

    folder = tmp_path_factory.mktemp("big")
    generator = torch.Generator().manual_seed(0)
    tensors = {f"layer.{i}.weight": torch.randn(512, 1024, generator=generator) for i in range(12)}
    save_file(tensors, folder / "model.safetensors", metadata={"format": "pt"})
    return folder


def leftovers(parent: Path) -> list[str]:
    return [p.name for p in parent.iterdir() if PARTIAL_TAG in p.name]


def test_cancel_midway_leaves_nothing(tmp_path: Path, big_source: Path) -> None:
    before = digest(big_source)
    out = tmp_path / "out"
    job = run_plan(plan_convert(big_source, out, "BF16", max_shard_size=4_000_000))
    progress = [next(job) for _ in range(3)]
    assert 0 < progress[-1].done < progress[-1].total
    assert leftovers(tmp_path)  # the staging folder exists while the job runs
    job.close()
    assert not out.exists()
    assert leftovers(tmp_path) == []
    assert digest(big_source) == before


def test_injected_failure_leaves_nothing(tmp_path: Path, big_source: Path) -> None:
    before = digest(big_source)
    out = tmp_path / "out"
    plan = plan_reshard(big_source, out, 4_000_000)
    with pytest.raises(CheckpointError, match="simulated failure"):
        run_to_completion(run_plan(plan, ExportOptions(fail_after_bytes=10_000_000)))
    assert not out.exists() and leftovers(tmp_path) == []
    assert digest(big_source) == before


def test_failure_keeps_existing_target(tmp_path: Path, big_source: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("old")
    plan = plan_reshard(big_source, out, 4_000_000, overwrite=True)
    with pytest.raises(CheckpointError):
        run_to_completion(run_plan(plan, ExportOptions(overwrite=True, fail_after_bytes=1)))
    assert (out / "keep.txt").read_text() == "old"
    assert leftovers(tmp_path) == []


def test_overwrite_replaces_whole_folder(tmp_path: Path, big_source: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "stale.safetensors").write_bytes(b"x")
    with pytest.raises(CheckpointError, match="already exists"):
        plan_reshard(big_source, out, 10**9)
    run_to_completion(
        run_plan(
            plan_reshard(big_source, out, 10**9, overwrite=True), ExportOptions(overwrite=True)
        )
    )
    assert sorted(p.name for p in out.iterdir()) == ["model.safetensors"]
    assert leftovers(tmp_path) == [] and [p.name for p in tmp_path.iterdir()] == ["out"]


def test_refuses_to_write_into_or_over_its_source(tmp_path: Path, big_source: Path) -> None:
    for target, message in (
        (big_source, "is the source"),
        (big_source / "inner", "inside the source"),
        (big_source.parent, "contains the source"),
        (big_source / "model.safetensors", "inside the source"),
    ):
        with pytest.raises(CheckpointError, match=message):
            plan_reshard(big_source, target, 10**9, overwrite=True)
    source_file = big_source / "model.safetensors"
    for target in (source_file, big_source):
        with pytest.raises(CheckpointError, match="is the source"):
            plan_reshard(source_file, target, 10**9, overwrite=True)


def test_not_enough_free_space(tmp_path: Path, big_source: Path, monkeypatch) -> None:
    import shutil
    from collections import namedtuple

    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(shutil, "disk_usage", lambda path: usage(10**9, 10**9, 1000))
    with pytest.raises(CheckpointError, match="not enough free space"):
        run_to_completion(run_plan(plan_reshard(big_source, tmp_path / "out", 10**9)))
    assert list(tmp_path.iterdir()) == []


def test_killed_export_leaves_target_absent_then_cleaned(tmp_path: Path, big_source: Path) -> None:
    out = tmp_path / "out"
    script = (
        "import sys, time\n"
        "from ckpt_gui.core.export import plan_convert, run_plan\n"
        "job = run_plan(plan_convert(sys.argv[1], sys.argv[2], 'F16', max_shard_size=4_000_000))\n"
        "for p in job:\n"
        "    if 0 < p.done < p.total:\n"
        "        print('midway', flush=True)\n"
        "        time.sleep(60)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    child = subprocess.Popen(
        [sys.executable, "-c", script, str(big_source), str(out)], stdout=subprocess.PIPE, env=env
    )
    assert child.stdout is not None
    assert child.stdout.readline().strip() == b"midway"
    child.send_signal(signal.SIGKILL)
    child.wait()
    assert not out.exists()
    stale = leftovers(tmp_path)
    assert len(stale) == 1 and any((tmp_path / stale[0]).glob("*.safetensors"))
    # The next export on the same target notices the dead job's folder and removes it.
    run_to_completion(run_plan(plan_convert(big_source, out, "F16")))
    assert leftovers(tmp_path) == [] and (out / "model.safetensors").is_file()


def test_sigterm_cancels_the_cli_driver_cleanly(tmp_path: Path, big_source: Path) -> None:
    """The CLI's driver turns SIGTERM into a cancel: the job's cleanup runs."""
    out = tmp_path / "out"
    script = (
        "import sys, time\n"
        "from ckpt_gui.commands.progress import drive\n"
        "from ckpt_gui.core.export import plan_convert, run_plan\n"
        "def paused(job):\n"
        "    for p in job:\n"
        "        yield p\n"
        "        if 0 < p.done < p.total:\n"
        "            print('midway', flush=True)\n"
        "            time.sleep(60)\n"
        "try:\n"
        "    drive(paused(run_plan(plan_convert(sys.argv[1], sys.argv[2], 'BF16', max_shard_size=4_000_000))))\n"
        "except KeyboardInterrupt:\n"
        "    sys.exit(3)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    child = subprocess.Popen(
        [sys.executable, "-c", script, str(big_source), str(out)], stdout=subprocess.PIPE, env=env
    )
    assert child.stdout is not None
    assert child.stdout.readline().strip() == b"midway"
    assert leftovers(tmp_path)
    child.send_signal(signal.SIGTERM)
    assert child.wait(timeout=60) == 3
    assert not out.exists() and leftovers(tmp_path) == []
