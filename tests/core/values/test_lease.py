"""Read leases keep mapped reads (conversions, pickles) safe from programs that change the file."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import torch

from ckpt_gui.core.export import convert_kernels, plan_convert, run_plan
from ckpt_gui.core.jobs import run_to_completion
from ckpt_gui.core.values.lease import ReadLease, ignore_lease_breaks

REPO = Path(__file__).resolve().parents[3]
pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux leases")


def lease_granted_on(path: Path) -> bool:
    """Whether the file system of ``path`` grants read leases.

    Some do not (network and FUSE file systems, some container overlays); there
    the converter reads instead of mapping, which the other tests here cover.
    """
    assert ignore_lease_breaks()
    fd = os.open(path, os.O_RDONLY)
    try:
        lease = ReadLease(fd)
        granted = lease.held
        lease.release()
    finally:
        os.close(fd)
    return granted


@pytest.fixture
def leases(tmp_path: Path) -> None:
    """Skip where the file system under the test folder grants no read leases."""
    if not Path("/proc/locks").exists():
        pytest.skip("no /proc/locks to watch a lease break in")
    probe = tmp_path / "lease-probe"
    probe.write_bytes(b"x")
    granted = lease_granted_on(probe)
    probe.unlink()
    if not granted:
        pytest.skip(f"no read leases on the file system of {tmp_path}")


def run_child(script: str, *args: str) -> dict[str, Any]:
    """Run ``script`` in a child Python and return the JSON of its last line.

    A child, because if a lease failed, a mapped read past the new end of a truncated
    file would kill the process with SIGBUS, and it must not take the test run with it.
    """
    done = subprocess.run(
        [sys.executable, "-c", script, *args],
        env={**os.environ, "PYTHONPATH": str(REPO)},
        capture_output=True,
        text=True,
        timeout=300,
        cwd=REPO,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    outcome: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return outcome


def start_truncating(path: Path, size: int) -> subprocess.Popen[bytes]:
    """Another program that truncates ``path``; the kernel holds it while we keep a lease."""
    return subprocess.Popen(
        [sys.executable, "-c", f"import os; os.truncate({str(path)!r}, {size})"]
    )


def wait_for_lease_break(path: Path, timeout: float = 40.0) -> None:
    """Until /proc/locks shows the lease on ``path`` waiting for release.

    Within 40 s: the kernel revokes a lease nobody released after 45 s (lease-break-time).
    """
    inode = f":{path.stat().st_ino} "
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        locks = Path("/proc/locks").read_text()
        if any("BREAKING" in line and inode in line for line in locks.splitlines()):
            return
        time.sleep(0.02)
    raise AssertionError(f"no lease break on {path} within {timeout} s:\n{locks}")


def test_a_lease_holds_a_truncating_program_until_it_is_released(
    tmp_path: Path, leases: None
) -> None:
    path = tmp_path / "weights.bin"
    path.write_bytes(b"\x01" * 100_000)
    fd = os.open(path, os.O_RDONLY)
    try:
        lease = ReadLease(fd)
        assert lease.held and lease.intact()
        truncating = start_truncating(path, 10)
        wait_for_lease_break(path)
        assert not lease.intact()
        # Still held: the file keeps its bytes until we let go.
        assert truncating.poll() is None and path.stat().st_size == 100_000
        lease.release()
        assert truncating.wait(timeout=30) == 0
        assert path.stat().st_size == 10
    finally:
        os.close(fd)


def test_no_lease_on_a_file_open_for_writing(tmp_path: Path) -> None:
    path = tmp_path / "weights.bin"
    path.write_bytes(b"\x01" * 1000)
    writer = os.open(path, os.O_WRONLY)
    reader = os.open(path, os.O_RDONLY)
    try:
        assert not ReadLease(reader).held
    finally:
        os.close(reader)
        os.close(writer)


def test_convert_reads_instead_of_mapping_a_file_another_program_writes(
    tmp_path: Path, llama_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    if not lease_granted_on(llama_dir / "model.safetensors"):
        pytest.skip(f"no read leases on the file system of {llama_dir}")
    mapped: list[int] = []
    real_mmap = convert_kernels.mmap.mmap

    def counting_mmap(*args: object, **kwargs: object) -> object:
        mapped.append(1)
        return real_mmap(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(convert_kernels.mmap, "mmap", counting_mmap)
    run_to_completion(run_plan(plan_convert(llama_dir, tmp_path / "leased", "BF16")))
    assert mapped, "with a lease the converter maps its source"
    mapped.clear()
    writer = os.open(llama_dir / "model.safetensors", os.O_WRONLY)  # writes nothing
    try:
        run_to_completion(run_plan(plan_convert(llama_dir, tmp_path / "read", "BF16")))
    finally:
        os.close(writer)
    assert not mapped
    from safetensors.torch import load_file

    a = load_file(tmp_path / "leased" / "model.safetensors")
    b = load_file(tmp_path / "read" / "model.safetensors")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


# Run in a child process (see run_child).
TRUNCATED_WHILE_CONVERTING = r"""
import json, sys
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import save_file

from ckpt_gui.core.errors import CheckpointError
from ckpt_gui.core.export import convert_kernels, engine, plan_convert, run_plan
from ckpt_gui.core.values.lease import ignore_lease_breaks
from tests.core.values.test_lease import start_truncating, wait_for_lease_break

ignore_lease_breaks()
convert_kernels.CHUNK_BYTES = 64 * 1024  # many chunks, so the job is caught halfway
engine.PROGRESS_EVERY = 64 * 1024
root = Path(sys.argv[1])
source = root / "src"
source.mkdir()
path = source / "model.safetensors"
save_file({"a": torch.randn(256, 1024), "b": torch.randn(256, 1024)}, str(path))
size = path.stat().st_size
job = run_plan(plan_convert(source, root / "out", "BF16"))
while "model.safetensors:" not in next(job).message:
    pass
truncating = start_truncating(path, 4096)
wait_for_lease_break(path)
try:
    for _ in job:
        pass
    error = None
except CheckpointError as exc:
    error = str(exc)
job.close()
print(json.dumps({
    "error": error,
    "size_before_release": size,
    "truncated_ok": truncating.wait(timeout=60) == 0,
    "size_after": path.stat().st_size,
    "left": sorted(p.name for p in root.iterdir()),
}))
"""


def test_convert_stops_cleanly_when_another_program_truncates_its_source(
    tmp_path: Path, leases: None
) -> None:
    outcome = run_child(TRUNCATED_WHILE_CONVERTING, str(tmp_path))
    assert outcome["error"] is not None and "another program is changing" in outcome["error"]
    assert "model.safetensors" in outcome["error"]
    # The truncation went ahead once the job let go, and no output or staging is left.
    assert outcome["truncated_ok"] and outcome["size_after"] == 4096
    assert outcome["left"] == ["src"]


# Pickled zip checkpoints are mapped by torch; every reader of them holds a lease.
TRUNCATED_WHILE_READING_A_PICKLE = r"""
import json, sys
from pathlib import Path
from typing import Any

import torch

from ckpt_gui.core.errors import CheckpointError
from ckpt_gui.core.export import convert_kernels, engine, plan_safetensors, run_plan
from ckpt_gui.core.formats import open_checkpoint
from ckpt_gui.core.values.lease import ignore_lease_breaks
from ckpt_gui.core.values.chunks import iter_chunks
from ckpt_gui.core.values.stream import TensorStream
from tests.core.values.test_lease import start_truncating, wait_for_lease_break

ignore_lease_breaks()
mode, root = sys.argv[1], Path(sys.argv[2])
source = root / "src"
source.mkdir()
path = source / "pytorch_model.bin"
torch.save({name: torch.randn(256, 1024) for name in "abcd"}, str(path))
checkpoint = open_checkpoint(source)
if mode == "export":
    convert_kernels.CHUNK_BYTES = 64 * 1024  # many pieces per tensor, so it is caught halfway
    engine.PROGRESS_EVERY = 64 * 1024
    reader = run_plan(plan_safetensors(source, root / "out"))
    first = lambda: next(p for p in reader if p.message.endswith(": a"))
elif mode == "stream":
    reader = iter(TensorStream(checkpoint, checkpoint.tensors, chunk_elements=1024))
    first = lambda: next(reader)
else:
    reader = iter_chunks(checkpoint, checkpoint.tensors[0], chunk_elements=1024)
    first = lambda: next(reader)
first()
truncating = start_truncating(path, 4096)
# Pickled tensors are read like safetensors (no memory map): nothing to hold the
# truncating program for, so it finishes first and the reader meets a short file.
truncated_ok = truncating.wait(timeout=60) == 0
try:
    for _ in reader:
        pass
    error = None
except CheckpointError as exc:
    error = str(exc)
reader.close() if hasattr(reader, "close") else None
print(json.dumps({
    "error": error,
    "truncated_ok": truncated_ok,
    "size_after": path.stat().st_size,
    "left": sorted(p.name for p in root.iterdir()),
}))
"""


@pytest.mark.parametrize("mode", ["export", "stream", "stats"])
def test_reading_a_pickle_stops_cleanly_when_another_program_truncates_it(
    tmp_path: Path, mode: str
) -> None:
    outcome = run_child(TRUNCATED_WHILE_READING_A_PICKLE, mode, str(tmp_path))
    assert outcome["error"] is not None, outcome
    assert "pytorch_model.bin" in outcome["error"]
    assert "\n" not in outcome["error"]
    assert outcome["truncated_ok"] and outcome["size_after"] == 4096
    assert outcome["left"] == ["src"]  # an export leaves no output or staging behind
