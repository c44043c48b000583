"""Atomic output folders: staged next to the target, moved into place when verified.

A job writes into ``.<name>.ckpt-gui-partial-<random>`` beside the target. The
folder holds a lock file kept under ``flock`` while the job lives: the kernel
drops the lock when the process dies, however it dies, so a later export can
tell a crashed job's leftovers (lock free) from a running one's (lock held) and
remove them. The finished folder replaces the target with one rename, or with
an atomic exchange (``renameat2(RENAME_EXCHANGE)``) when overwriting.

The lock is ``flock`` where ``fcntl`` exists and ``msvcrt.locking`` on
Windows; both are imported when used, so this module imports everywhere.
Where neither exists a leftover is never taken for a crashed job's (kept, not
removed), and renames replace instead of exchanging.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import secrets
import shutil
from pathlib import Path

from ckpt_gui.core.errors import CheckpointError

PARTIAL_TAG = ".ckpt-gui-partial-"
OLD_TAG = ".ckpt-gui-old-"
LOCK_NAME = ".ckpt-gui-lock"
FREE_SPACE_MARGIN = 64 * 1024 * 1024
_RENAME_EXCHANGE = 2
_AT_FDCWD = -100


def check_target(target: Path, sources: list[Path], overwrite: bool) -> None:
    """Refuse to write into (or over) a source, or over an existing target without leave."""
    resolved = target.resolve()
    for source in sources:
        src = source.resolve()
        src_folder = src if src.is_dir() else src.parent
        if resolved in (src, src_folder):
            raise CheckpointError(target, "is the source of this export; choose another folder")
        if src.is_relative_to(resolved):
            raise CheckpointError(target, f"contains the source {source}; choose another folder")
        if src.is_dir() and resolved.is_relative_to(src):
            raise CheckpointError(target, f"is inside the source folder {source}")
    if (target.exists() or target.is_symlink()) and not overwrite:
        raise CheckpointError(target, "already exists (pass --overwrite to replace it)")


def check_free_space(folder: Path, needed: int) -> None:
    free = shutil.disk_usage(folder).free
    if free < needed + FREE_SPACE_MARGIN:
        from ckpt_gui.core.formatting import human_bytes

        raise CheckpointError(
            folder,
            f"not enough free space: the export needs {human_bytes(needed)}, "
            f"{human_bytes(free)} free",
        )


def remove_stale(parent: Path, name: str) -> list[Path]:
    """Delete leftovers of earlier jobs on ``name`` whose process is gone."""
    removed: list[Path] = []
    if not parent.is_dir():
        return removed
    for entry in parent.iterdir():
        if (
            not entry.name.startswith((f".{name}{PARTIAL_TAG}", f".{name}{OLD_TAG}"))
            or not entry.is_dir()
        ):
            continue
        if _lock_is_free(entry / LOCK_NAME):
            shutil.rmtree(entry, ignore_errors=True)
            removed.append(entry)
    return removed


def _lock_is_free(lock: Path) -> bool:
    try:
        fd = os.open(lock, os.O_RDWR)
    except FileNotFoundError:
        return True  # died before taking the lock
    except OSError:
        return False
    try:
        return _lock(fd, wait=False)
    finally:
        os.close(fd)


def _lock(fd: int, wait: bool) -> bool:
    """Lock ``fd`` for this process (dropped by the kernel when it dies); False if held.

    Without a lock call (neither ``fcntl`` nor ``msvcrt``) nothing can tell a
    live job from a dead one: report it held, so leftovers are kept.
    """
    try:
        import fcntl
    except ImportError:
        pass
    else:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX if wait else fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            return False
        return True
    try:
        import msvcrt
    except ImportError:
        return False
    try:
        # One byte suffices: the lock file exists only to carry the lock.
        mode = msvcrt.LK_LOCK if wait else msvcrt.LK_NBLCK  # type: ignore[attr-defined,unused-ignore]
        msvcrt.locking(fd, mode, 1)  # type: ignore[attr-defined,unused-ignore]
    except OSError:
        return False
    return True


class Staging:
    """The temporary folder of one export; ``commit()`` or ``abort()`` ends it."""

    def __init__(self, target: Path) -> None:
        self.target = target
        self.parent = target.parent
        self._created_parents: list[Path] = []
        missing = []
        folder = self.parent
        while not folder.exists():
            missing.append(folder)
            folder = folder.parent
        for folder in reversed(missing):
            folder.mkdir()
            self._created_parents.append(folder)
        suffix = secrets.token_hex(4)
        self.path = self.parent / f".{target.name}{PARTIAL_TAG}{suffix}"
        self.path.mkdir()
        self._lock_fd: int | None = os.open(self.path / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o600)
        _lock(self._lock_fd, wait=True)
        self.committed = False

    def commit(self, fsync: bool = True) -> None:
        """Move the finished folder into place (replacing the target if it exists)."""
        (self.path / LOCK_NAME).unlink()
        if fsync:
            _fsync_dir(self.path)
        if self.target.exists() or self.target.is_symlink():
            if (
                self.target.is_dir()
                and not self.target.is_symlink()
                and _exchange(self.path, self.target)
            ):
                # The old target now sits at self.path: keep it locked until it is gone.
                shutil.rmtree(self.path, ignore_errors=True)
            else:
                old = self.parent / f".{self.target.name}{OLD_TAG}{secrets.token_hex(4)}"
                os.rename(self.target, old)
                os.rename(self.path, self.target)
                if old.is_dir() and not old.is_symlink():
                    shutil.rmtree(old, ignore_errors=True)
                else:
                    old.unlink()
        else:
            os.rename(self.path, self.target)
        if fsync:
            _fsync_dir(self.parent)
        self.committed = True
        self._release()

    def abort(self) -> None:
        """Remove everything this job created; the target is untouched."""
        if self.committed:
            return
        shutil.rmtree(self.path, ignore_errors=True)
        self._release()
        for folder in reversed(self._created_parents):
            with contextlib.suppress(OSError):
                folder.rmdir()

    def _release(self) -> None:
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None


def _exchange(a: Path, b: Path) -> bool:
    """Swap two paths atomically (Linux renameat2); False where unsupported."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        renameat2 = libc.renameat2
    except (OSError, AttributeError, TypeError):  # TypeError: Windows has no CDLL(None)
        return False
    result = renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE)
    return bool(result == 0)


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
