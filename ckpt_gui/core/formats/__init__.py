"""Format registry: pick a reader by content (magic bytes), not by file name alone.

Every reader module has the same small contract: ``NAME``, ``sniff(head) -> bool``
and ``read(path, root=None) -> Checkpoint``.
"""

from __future__ import annotations

import dataclasses
import stat
from pathlib import Path

from ckpt_gui.core.errors import CheckpointError
from ckpt_gui.core.formats import folder, gguf, index, pytorch, safetensors
from ckpt_gui.core.model import Checkpoint

READERS = (safetensors, gguf, pytorch, index)
HEAD_BYTES = 64


def open_checkpoint(target: str | Path) -> Checkpoint:
    """Describe the checkpoint at a local path (file or folder) without reading weights."""
    path = Path(target).expanduser()
    try:
        info = path.stat()
    except FileNotFoundError:
        raise CheckpointError(target, "no such file or folder") from None
    except OSError as exc:
        raise CheckpointError(target, exc.strerror or str(exc)) from None
    if stat.S_ISDIR(info.st_mode):
        checkpoint = folder.read(path, open_file)
    else:
        checkpoint = open_file(path, None)
        config = folder.read_config(path.parent)
        if config is not None:
            checkpoint = dataclasses.replace(checkpoint, config=config)
    return dataclasses.replace(checkpoint, source=str(target))


def open_file(path: Path, root: Path | None) -> Checkpoint:
    """Read one file, choosing the reader from its first bytes."""
    try:
        info = path.stat()
    except OSError as exc:
        raise CheckpointError(path, exc.strerror or str(exc)) from None
    # Checked before open(): opening a FIFO would block forever.
    if not stat.S_ISREG(info.st_mode):
        raise CheckpointError(path, f"not a regular file ({_kind(info.st_mode)})")
    if info.st_size == 0:
        raise CheckpointError(path, "file is empty")
    try:
        with path.open("rb") as stream:
            head = stream.read(HEAD_BYTES)
    except OSError as exc:
        raise CheckpointError(path, exc.strerror or str(exc)) from None
    for reader in READERS:
        if reader.sniff(head):
            checkpoint: Checkpoint = reader.read(path, root)
            return checkpoint
    # Nothing matched: let the reader the name suggests explain what is wrong.
    if path.suffix == ".safetensors":
        return safetensors.read(path, root)
    if path.name.endswith(".index.json"):
        return index.read(path, root)
    if path.suffix == ".gguf":
        return gguf.read(path, root)
    raise CheckpointError(
        path, f"not a checkpoint: unrecognised content (starts with {_preview(head)})"
    )


def _kind(mode: int) -> str:
    if stat.S_ISFIFO(mode):
        return "a pipe"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a file"


def _preview(head: bytes) -> str:
    printable = head[:8]
    if all(32 <= b < 127 for b in printable):
        return repr(printable.decode("ascii"))
    return " ".join(f"{b:02x}" for b in printable)
