"""Positional reads and writes, and read-ahead hints, on every operating system.

The fast paths are Linux calls: ``os.preadv`` reads straight into a buffer the
caller owns, ``os.pwrite`` lets several threads write one file at their own
offsets, ``posix_fadvise`` asks the kernel to read ahead. macOS has no
``posix_fadvise`` (and ``preadv`` only since macOS 11), Windows has none of them.
Where a call is missing, these helpers fall back to ``lseek`` + ``read``/``write``
under one lock (the file position is shared by every thread using the fd), and
a hint is simply skipped. The names are looked up on each call, not at import,
so a test can take them away and exercise the fallbacks.
"""

from __future__ import annotations

import contextlib
import os
import threading

# Windows opens files in text mode (newline translation) unless told otherwise.
O_BINARY: int = getattr(os, "O_BINARY", 0)

# lseek + read/write is two calls on a shared file position: one thread at a time.
_SEEK_LOCK = threading.Lock()


def read_into_at(fd: int, view: memoryview, offset: int) -> int:
    """Read up to ``len(view)`` bytes at ``offset`` into ``view``; the count read (0 at EOF)."""
    preadv = getattr(os, "preadv", None)
    if preadv is not None:
        return int(preadv(fd, [view], offset))
    pread = getattr(os, "pread", None)
    if pread is not None:
        data = pread(fd, len(view), offset)
    else:
        with _SEEK_LOCK:
            os.lseek(fd, offset, os.SEEK_SET)
            data = os.read(fd, len(view))
    view[: len(data)] = data
    return len(data)


def write_at(fd: int, view: memoryview, offset: int) -> int:
    """Write ``view`` (or a first part of it) at ``offset``; the count written."""
    pwrite = getattr(os, "pwrite", None)
    if pwrite is not None:
        return int(pwrite(fd, view, offset))
    with _SEEK_LOCK:
        os.lseek(fd, offset, os.SEEK_SET)
        return os.write(fd, view)


def can_advise() -> bool:
    """Whether read-ahead hints reach the kernel here (False: callers may skip the work)."""
    return hasattr(os, "posix_fadvise")


def advise_sequential(fd: int) -> None:
    """Hint that ``fd`` will be read from start to end; nothing where unsupported."""
    advise = getattr(os, "posix_fadvise", None)
    if advise is not None:
        with contextlib.suppress(OSError):  # a hint only
            advise(fd, 0, 0, os.POSIX_FADV_SEQUENTIAL)


def advise_will_need(fd: int, offset: int, length: int) -> None:
    """Ask the kernel to start reading a range now; nothing where unsupported."""
    advise = getattr(os, "posix_fadvise", None)
    if advise is not None:
        advise(fd, offset, length, os.POSIX_FADV_WILLNEED)


def has_kernel_copy() -> bool:
    """Whether ``os.copy_file_range`` exists (Linux); else bytes are copied by reading."""
    return hasattr(os, "copy_file_range")
