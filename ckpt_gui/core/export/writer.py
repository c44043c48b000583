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
import threading
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

from ckpt_gui.core.errors import CheckpointError
from ckpt_gui.core.export.plan import ShardPlan
from ckpt_gui.core.positional_io import (
    O_BINARY,
    advise_will_need,
    can_advise,
    has_kernel_copy,
    read_into_at,
    write_at,
)
from ckpt_gui.core.values.lease import ReadLease

CHUNK_BYTES = 64 * 1024 * 1024
# Writes queued per shard; two run at once (see ShardFile).
MAX_QUEUED_WRITES = 3


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
        # Every write names its offset (pwrite), so the executor's workers may
        # run them in any order: on this VM, filling fresh page-cache pages costs
        # about 1.4 s of CPU per GB, and two workers share it between the cores.
        self.executor = executor
        self.pending: list[Future[None]] = []
        header = shard.header_bytes()
        self.expected_size = len(header) + shard.data_size
        self.position = 0
        self._copy_file_range_ok = has_kernel_copy()
        # Set once copy_file_range has copied a piece: later pieces go to the executor.
        self._kernel_copy_works = False
        self._bounce: bytearray | None = None
        self.fd: int | None = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | O_BINARY, 0o644)
        self.write(memoryview(header))

    def write(self, data: memoryview) -> None:
        self.drain()
        view = data.cast("B") if data.format != "B" or data.ndim != 1 else data
        self._write_all(view, self.position)
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
        future = self.executor.submit(self._write_all, view, self.position)
        self.pending.append(future)
        self.position += len(view)
        return future

    def drain(self) -> None:
        """Wait for queued writes; the first failure is raised."""
        pending, self.pending = self.pending, []
        for future in pending:
            future.result()

    def _write_all(self, view: memoryview, offset: int) -> None:
        assert self.fd is not None
        while view:
            try:
                written = write_at(self.fd, view, offset)
            except OSError as exc:
                raise _write_error(self.path, exc) from None
            view = view[written:]
            offset += written

    def copy_from(self, src_fd: int, src_path: Path, offset: int, nbytes: int) -> Iterator[int]:
        """Copy ``nbytes`` at ``offset`` of another file; yields the bytes done so far.

        Once the kernel has copied a first piece, later pieces are queued on the
        executor: each names both offsets, and filling the fresh page-cache pages
        of the output (the main cost of a re-shard) then runs on both cores.
        Queued pieces are done by ``drain``/``finish``; ``src_fd`` must stay open
        until then.
        """
        assert self.fd is not None
        done = 0
        while done < nbytes:
            piece = min(CHUNK_BYTES, nbytes - done)
            if self.executor is not None and self._kernel_copy_works:
                while len(self.pending) >= MAX_QUEUED_WRITES:
                    self.pending.pop(0).result()
                self.pending.append(
                    self.executor.submit(
                        self._kernel_copy, src_fd, src_path, offset + done, piece, self.position
                    )
                )
                copied = piece
            else:
                self.drain()
                copied = self._copy_piece(src_fd, src_path, offset + done, piece)
            done += copied
            self.position += copied
            yield done

    def _kernel_copy(
        self, src_fd: int, src_path: Path, src_offset: int, count: int, dst_offset: int
    ) -> None:
        """copy_file_range until ``count`` bytes are copied (it may copy fewer at once)."""
        assert self.fd is not None
        while count > 0:
            try:
                copied = os.copy_file_range(src_fd, self.fd, count, src_offset, dst_offset)
            except OSError as exc:
                raise _write_error(self.path, exc) from None
            if copied <= 0:
                raise CheckpointError(
                    src_path, f"file ends at byte {src_offset:,}, inside a tensor"
                )
            count -= copied
            src_offset += copied
            dst_offset += copied

    def _copy_piece(self, src_fd: int, src_path: Path, offset: int, piece: int) -> int:
        assert self.fd is not None
        if self._copy_file_range_ok:
            try:
                copied = os.copy_file_range(src_fd, self.fd, piece, offset, self.position)
                if copied > 0:
                    self._kernel_copy_works = True
                    return copied
                raise CheckpointError(src_path, f"file ends at byte {offset:,}, inside a tensor")
            except OSError as exc:
                if exc.errno not in (errno.EXDEV, errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP):
                    raise _write_error(self.path, exc) from None
                self._copy_file_range_ok = False
        if self._bounce is None:
            self._bounce = bytearray(CHUNK_BYTES)
        view = memoryview(self._bounce)[:piece]
        got = read_into_at(src_fd, view, offset)
        if got <= 0:
            raise CheckpointError(src_path, f"file ends at byte {offset:,}, inside a tensor")
        self._write_all(view[:got], self.position)
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
    """The source files one output shard reads, open until ``close``: copies queued
    on the writers still use them after the next file is opened. The engine closes
    them after each output shard, so only that shard's sources are open."""

    def __init__(self) -> None:
        self.fds: dict[Path, int] = {}
        self.leases: dict[Path, ReadLease] = {}

    def open(self, path: Path) -> int:
        fd = self.fds.get(path)
        if fd is None:
            try:
                fd = os.open(path, os.O_RDONLY | O_BINARY)
            except OSError as exc:
                raise CheckpointError(path, f"cannot read: {exc.strerror or exc}") from None
            self.fds[path] = fd
        return fd

    def lease(self, path: Path) -> ReadLease:
        """A read lease on the open ``path`` (``held`` False when none could be taken)."""
        lease = self.leases.get(path)
        if lease is None:
            lease = self.leases[path] = ReadLease(self.open(path))
        return lease

    def close(self) -> None:
        """Release leases and close; callers first make sure no mapping of a source is left."""
        leases, self.leases = self.leases, {}
        for lease in leases.values():
            lease.release()
        fds, self.fds = self.fds, {}
        for fd in fds.values():
            os.close(fd)


class ReadAhead:
    """Keeps the kernel reading source tensors ahead of use (``POSIX_FADV_WILLNEED``).

    A background thread asks for the next piece whenever less than ``window``
    bytes past the consumer are requested, from the start of the job: the disk
    then streams while torch imports and while we convert. The pages land in
    the page cache, which does not count against the job's memory. WILLNEED
    only queues reads, but it blocks when the device queue is full, which is
    why it does not run on the job's thread.
    """

    # Linux caps one WILLNEED at the device's readahead size (8 MiB here, 128 KiB by
    # default) and silently drops the rest: a 64 MiB request read 8 MiB. Asking in
    # the kernel's own 2 MiB steps reads everything (measured 2.7 GB/s cold).
    PIECE = 2 * 1024 * 1024

    def __init__(self, ranges: list[tuple[Path, int, int]], window: int | None = None) -> None:
        self.ranges = ranges
        self.window = window if window is not None else _read_ahead_window()
        # Bytes before range i: the consumer's position in bytes.
        self.starts = [0]
        for _, _, nbytes in ranges:
            self.starts.append(self.starts[-1] + nbytes)
        self.consumed = 0
        self.stopping = False
        self.condition = threading.Condition()
        self.thread: threading.Thread | None = None

    def advance(self, position: int) -> None:
        """The consumer reached range ``position``; the first call starts the thread."""
        if not can_advise() or not self.ranges:
            return
        with self.condition:
            self.consumed = max(self.consumed, self.starts[min(position, len(self.ranges))])
            self.condition.notify()
        if self.thread is None:
            self.thread = threading.Thread(target=self._run, name="export-readahead", daemon=True)
            self.thread.start()

    def _run(self) -> None:
        fds: dict[Path, int] = {}
        try:
            requested = 0
            for path, offset, nbytes in self.ranges:
                for piece in range(0, nbytes, self.PIECE):
                    length = min(self.PIECE, nbytes - piece)
                    with self.condition:
                        while not self.stopping and requested - self.consumed >= self.window:
                            self.condition.wait()
                        if self.stopping:
                            return
                    fd = fds.get(path)
                    if fd is None:
                        fd = fds[path] = os.open(path, os.O_RDONLY | O_BINARY)
                    advise_will_need(fd, offset + piece, length)
                    requested += length
        except OSError:
            return  # only a hint: the reads themselves report problems
        finally:
            for fd in fds.values():
                os.close(fd)

    def close(self) -> None:
        with self.condition:
            self.stopping = True
            self.condition.notify()
        if self.thread is not None:
            self.thread.join()
            self.thread = None


def _read_ahead_window() -> int:
    """An eighth of the available memory, between 256 MiB and 2 GiB."""
    low, high = 256 << 20, 2 << 30
    try:
        with open("/proc/meminfo", encoding="ascii") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    available = int(line.split()[1]) * 1024
                    return max(low, min(high, available // 8))
    except (OSError, ValueError, IndexError):
        pass
    return low
