"""The portable read/write helpers give the same bytes with and without Linux's calls."""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from ckpt_gui.core import positional_io

LINUX_CALLS = ("preadv", "pread", "pwrite", "posix_fadvise", "copy_file_range")


@pytest.fixture(params=["native", "fallback"])
def mode(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    if request.param == "fallback":
        for name in LINUX_CALLS:
            monkeypatch.delattr(os, name, raising=False)
    return str(request.param)


def test_reads_at_offsets_match_the_file(tmp_path: Path, mode: str) -> None:
    data = os.urandom(1 << 16)
    path = tmp_path / "blob"
    path.write_bytes(data)
    fd = os.open(path, os.O_RDONLY | positional_io.O_BINARY)
    try:
        positional_io.advise_sequential(fd)  # a no-op where unsupported, never an error
        positional_io.advise_will_need(fd, 0, 4096)
        view = memoryview(bytearray(1000))
        assert positional_io.read_into_at(fd, view, 12345) == 1000
        assert bytes(view) == data[12345:13345]
        # Past the end: a short read, then 0, as pread does.
        assert positional_io.read_into_at(fd, view, len(data) - 10) == 10
        assert bytes(view[:10]) == data[-10:]
        assert positional_io.read_into_at(fd, view, len(data)) == 0
    finally:
        os.close(fd)
    assert positional_io.can_advise() is (mode == "native")
    assert positional_io.has_kernel_copy() is (mode == "native")


def test_writes_from_many_threads_land_at_their_offsets(tmp_path: Path, mode: str) -> None:
    pieces = [os.urandom(4096) for _ in range(64)]
    path = tmp_path / "out"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | positional_io.O_BINARY, 0o644)

    def write(index: int) -> None:
        view = memoryview(pieces[index])
        offset = index * 4096
        while view:
            written = positional_io.write_at(fd, view, offset)
            view, offset = view[written:], offset + written

    try:
        # Reversed and concurrent: the shared file position must not leak between threads.
        with ThreadPoolExecutor(4) as pool:
            list(pool.map(write, reversed(range(len(pieces)))))
    finally:
        os.close(fd)
    assert path.read_bytes() == b"".join(pieces)
