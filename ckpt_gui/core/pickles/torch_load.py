"""A pickled checkpoint's state dict, through the weights-only loader, under a read lease.

torch maps a zip checkpoint's storages (``mmap=True``) so that only the pages
touched are read; a program that truncated the file meanwhile would kill the
process with SIGBUS when a page past the new end is touched. While the lease is
held, the kernel holds such a program instead (see ``source_lease``). Readers
call ``check`` before touching each tensor's bytes, get the one-line error once
a program waits, and ``close`` (after dropping every tensor they took) lets it go on.
"""

from __future__ import annotations

import os
import zipfile
from pathlib import Path
from typing import Any

from ckpt_gui.core.errors import CheckpointError
from ckpt_gui.core.positional_io import O_BINARY
from ckpt_gui.core.values.lease import ReadLease


def load_pickled_state_dict(path: Path) -> Any:
    """The state dict of a pickle checkpoint through the safe loader, memory-mapped if zip."""
    import torch

    from ckpt_gui.core.formats.pytorch import find_state_dict

    try:
        loaded = torch.load(
            path, map_location="cpu", weights_only=True, mmap=zipfile.is_zipfile(path)
        )
    except Exception as exc:
        raise CheckpointError(
            path, f"cannot read tensor data ({' '.join(str(exc).split())[:200]})"
        ) from None
    state_dict, _, _ = find_state_dict(loaded, path)
    return state_dict


class MappedPickle:
    """``state_dict`` of the pickle at ``path``, its file leased until ``close``."""

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            self._fd = os.open(path, os.O_RDONLY | O_BINARY)
        except OSError as exc:
            raise CheckpointError(path, exc.strerror or str(exc)) from None
        # Taken before loading: the loader reads the zip's directory through the map too.
        self._lease = ReadLease(self._fd)
        self.state_dict: Any = None
        try:
            self.state_dict = load_pickled_state_dict(path)
        except BaseException:
            self.close()
            raise

    def check(self) -> None:
        """Raise the one-line error if another program now waits to change the file."""
        self._lease.ensure_intact(self.path)

    def get(self, name: str) -> Any:
        """Tensor ``name`` (None when absent), after ``check``."""
        self.check()
        return self.state_dict.get(name) if self.state_dict is not None else None

    def close(self) -> None:
        """Drop the state dict, then release the file; callers keep none of its tensors."""
        self.state_dict = None
        self._lease.release()
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
