"""Streaming safetensors writer: header first, then tensor bytes one piece at a time.

Nothing holds a whole shard in memory. Same-dtype tensors from a safetensors
source are copied file to file by the kernel (``copy_file_range``: no bytes pass
through Python, and filesystems with reflinks may not copy at all); everything
else passes through buffers allocated once per job and reused, because fresh
pages, not arithmetic, dominate the cost of a conversion.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

from ckpt_gui.core.errors import CheckpointError
from ckpt_gui.core.export.plan import ShardPlan

CHUNK_BYTES = 64 * 1024 * 1024
MAX_QUEUED_WRITES = 2


class ShardFile:
    """One output shard being written; the header comes from the plan."""

    def __init__(
        self,
        path: Path,
        shard: ShardPlan,
        fsync: bool,
        executor: ThreadPoolExecutor | None = None,
    ) -> None:
        self.path = path
        self.fsync = fsync
        # One worker: writes stay in order while the caller prepares the next chunk.
        self.executor = executor
        self.pending: list[Future[None]] = []
        header = shard.header_bytes()
        self.expected_size = len(header) + shard.data_size
        self.position = 0
        self._copy_file_range_ok = hasattr(os, "copy_file_range")
        self._bounce: bytearray | None = None
        self.fd: int | None = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        self.write(memoryview(header))

    def write(self, data: memoryview) -> None:
        self.drain()
        view = data.cast("B") if data.format != "B" or data.ndim != 1 else data
        self._write_all(view)
        self.position += len(view)

    def write_async(self, data: memoryview) -> Future[None] | None:
        """Queue a write; ``data`` must stay unchanged until the returned future is done."""
        if self.executor is None:
            self.write(data)
            return None
        view = data.cast("B") if data.format != "B" or data.ndim != 1 else data
        # Bounded queue: the data behind queued writes is memory the job still holds.
        while len(self.pending) >= MAX_QUEUED_WRITES:
            self.pending.pop(0).result()
        future = self.executor.submit(self._write_all, view)
        self.pending.append(future)
        self.position += len(view)
        return future

    def drain(self) -> None:
        """Wait for queued writes; the first failure is raised."""
        pending, self.pending = self.pending, []
        for future in pending:
            future.result()

    def _write_all(self, view: memoryview) -> None:
        assert self.fd is not None
        while view:
            try:
                written = os.write(self.fd, view)
            except OSError as exc:
                raise _write_error(self.path, exc) from None
            view = view[written:]

    def copy_from(self, src_fd: int, src_path: Path, offset: int, nbytes: int) -> Iterator[int]:
        """Copy ``nbytes`` at ``offset`` of another file; yields the bytes done so far."""
        assert self.fd is not None
        self.drain()
        done = 0
        while done < nbytes:
            piece = min(CHUNK_BYTES, nbytes - done)
            copied = self._copy_piece(src_fd, src_path, offset + done, piece)
            done += copied
            self.position += copied
            yield done

    def _copy_piece(self, src_fd: int, src_path: Path, offset: int, piece: int) -> int:
        assert self.fd is not None
        if self._copy_file_range_ok:
            try:
                copied = os.copy_file_range(src_fd, self.fd, piece, offset)
                if copied > 0:
                    return copied
                raise CheckpointError(src_path, f"file ends at byte {offset:,}, inside a tensor")
            except OSError as exc:
                if exc.errno not in (errno.EXDEV, errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP):
                    raise _write_error(self.path, exc) from None
                self._copy_file_range_ok = False
        if self._bounce is None:
            self._bounce = bytearray(CHUNK_BYTES)
        view = memoryview(self._bounce)[:piece]
        got = os.preadv(src_fd, [view], offset)
        if got <= 0:
            raise CheckpointError(src_path, f"file ends at byte {offset:,}, inside a tensor")
        self._write_all(view[:got])
        return got

    def finish(self) -> None:
        assert self.fd is not None
        self.drain()
        if self.position != self.expected_size:
            raise CheckpointError(
                self.path,
                f"wrote {self.position:,} bytes but the plan says {self.expected_size:,}",
            )
        try:
            if self.fsync:
                os.fdatasync(self.fd)
        except OSError as exc:
            raise _write_error(self.path, exc) from None
        finally:
            self.close()

    def close(self) -> None:
        for future in self.pending:
            future.cancel()
        for future in self.pending:
            if not future.cancelled():
                future.exception()  # wait: the worker must not write to a closed fd
        self.pending = []
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None


def _write_error(path: Path, exc: OSError) -> CheckpointError:
    if exc.errno == errno.ENOSPC:
        return CheckpointError(path, "disk full while writing")
    return CheckpointError(path, f"cannot write: {exc.strerror or exc}")


class SourceFiles:
    """Keeps one source file open at a time: sources are read in order."""

    def __init__(self) -> None:
        self.path: Path | None = None
        self.fd: int | None = None

    def open(self, path: Path) -> int:
        if self.path != path:
            self.close()
            try:
                self.fd = os.open(path, os.O_RDONLY)
            except OSError as exc:
                raise CheckpointError(path, f"cannot read: {exc.strerror or exc}") from None
            self.path = path
        assert self.fd is not None
        return self.fd

    def close(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
        self.fd = None
        self.path = None


class ReadAhead:
    """Asks the kernel to read source tensors ahead of use (``POSIX_FADV_WILLNEED``).

    The disk then works while we convert or while torch is still importing; the
    pages land in the page cache, which does not count against the job's memory.
    """

    def __init__(
        self, ranges: list[tuple[Path, int, int]], window: int = 256 * 1024 * 1024
    ) -> None:
        self.ranges = ranges
        self.window = window
        self.next = 0
        self.fds: dict[Path, int] = {}

    def advance(self, position: int) -> None:
        """Make sure everything up to ``window`` bytes past range ``position`` was requested."""
        if not hasattr(os, "posix_fadvise"):
            return
        ahead = 0
        index = position
        while index < len(self.ranges) and ahead < self.window:
            path, offset, nbytes = self.ranges[index]
            if index >= self.next:
                fd = self.fds.get(path)
                if fd is None:
                    try:
                        fd = self.fds[path] = os.open(path, os.O_RDONLY)
                    except OSError:
                        return
                try:
                    os.posix_fadvise(fd, offset, nbytes, os.POSIX_FADV_WILLNEED)
                except OSError:
                    return
                self.next = index + 1
            ahead += nbytes
            index += 1

    def close(self) -> None:
        for fd in self.fds.values():
            os.close(fd)
        self.fds.clear()
