"""Read leases: what makes mapping a file safe while another program may change it.

Converting straight from mapped pages is much faster than reading (see
``Converter._map``), and torch maps zip pickles (``mapped_pickle``), but a
mapped page past the end of a file that another program truncated kills the
whole process with SIGBUS, which Python cannot catch. A read lease
(``fcntl(F_SETLEASE, F_RDLCK)``, Linux) closes that hole: a program that opens
the file for writing or truncates it is held by the kernel (up to
``/proc/sys/fs/lease-break-time``, 45 s by default) until the lease is
released, and the lease reports the pending break. Readers check their lease
before each chunk or tensor (milliseconds apart), stop with a clear error when
another program waits, and release the lease only once nothing reads the
mapped pages any more.

The kernel announces a break with SIGIO, whose default action ends the
process: leases are taken only once SIGIO is ignored (``ignore_lease_breaks``
at startup). Where no lease can be had (another program has the file open for
writing, the file belongs to someone else, the file system has no leases),
the converter reads instead of mapping. Where there is no ``fcntl`` at all
(Windows) or no ``F_SETLEASE`` (macOS, the BSDs), no lease is ever held: the
same read-instead-of-map path is taken, so nothing here needs the module at import.
"""

from __future__ import annotations

import contextlib
import signal
import sys
import threading
from pathlib import Path
from types import ModuleType

from ckpt_gui.core.errors import CheckpointError

# Linux values; Python's fcntl module has them on Linux only.
F_SETLEASE = 1024
F_GETLEASE = 1025


def _lease_module() -> ModuleType | None:
    """``fcntl`` where the kernel has leases (Linux), else None.

    Imported on first use: the module does not exist on Windows, and the value
    numbers above mean something else (or nothing) on macOS.
    """
    if not sys.platform.startswith("linux"):
        return None
    try:
        import fcntl
    except ImportError:
        return None
    return fcntl


def ignore_lease_breaks() -> bool:
    """Ignore SIGIO (lease-break notices) if possible; True when it is ignored.

    Called at startup by ``cli.main``, the entry of both the CLI and the GUI, on
    the main thread: only that thread may change signal handling, and the GUI's
    export jobs run on other threads.
    """
    sigio = getattr(signal, "SIGIO", None)
    if sigio is None:
        return False
    current = signal.getsignal(sigio)
    if current == signal.SIG_IGN:
        return True
    if current != signal.SIG_DFL or threading.current_thread() is not threading.main_thread():
        return False  # someone else handles SIGIO, or we may not change it from here
    signal.signal(sigio, signal.SIG_IGN)
    return True


def _lease_breaks_ignored() -> bool:
    sigio = getattr(signal, "SIGIO", None)
    return sigio is not None and signal.getsignal(sigio) == signal.SIG_IGN


class ReadLease:
    """A read lease on an fd opened read-only; ``held`` is False when none could be taken."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.held = False
        self._fcntl = _lease_module()
        if self._fcntl is None or not _lease_breaks_ignored():
            return
        try:
            self._fcntl.fcntl(fd, F_SETLEASE, self._fcntl.F_RDLCK)
        except OSError:
            return  # open for writing elsewhere, not our file, or no lease support
        self.held = True

    def intact(self) -> bool:
        """Held, and no other program is waiting to write to or truncate the file."""
        if not self.held or self._fcntl is None:
            return False
        try:
            return bool(self._fcntl.fcntl(self.fd, F_GETLEASE) == self._fcntl.F_RDLCK)
        except OSError:
            return False

    def ensure_intact(self, path: Path) -> None:
        """Raise the one-line error when a held lease reports a waiting program."""
        if self.held and not self.intact():
            raise CheckpointError(path, "another program is changing this file; stopped reading it")

    def release(self) -> None:
        """Let a waiting writer go on; call only once nothing reads the mapped pages."""
        if self.held and self._fcntl is not None:
            self.held = False
            # OSError: the kernel already broke it (after lease-break-time).
            with contextlib.suppress(OSError):
                self._fcntl.fcntl(self.fd, F_SETLEASE, self._fcntl.F_UNLCK)
