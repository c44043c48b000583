"""Format registry: pick a reader by content (magic bytes), not by file name alone.

Every reader module has the same small contract: ``NAME``, ``sniff(head) -> bool``
and ``read(path, root=None) -> Checkpoint``.
"""

from __future__ import annotations

import dataclasses
import functools
import stat
from pathlib import Path

from ckpt_gui.core.errors import CheckpointError
from ckpt_gui.core.formats import adapter, distributed, folder, gguf, index, pytorch, safetensors
from ckpt_gui.core.formats.distributed import checkpoint as distributed_checkpoint
from ckpt_gui.core.model import Checkpoint
from ckpt_gui.core.pickles.polyglot import refuse_if_torch_would_unpickle

READERS = (safetensors, gguf, pytorch, index)
HEAD_BYTES = 64


def open_checkpoint(
    target: str | Path, weights_key: str | None = None, tag: str | None = None
) -> Checkpoint:
    """Describe the checkpoint at a local path (file or folder) without reading weights.

    ``weights_key`` picks the weight set of a PyTorch pickle that holds several
    (``model``, ``ema``...; see ``core/pickles/weights.py``); None takes the default.
    ``tag`` picks the ``global_step<N>`` folder of a DeepSpeed checkpoint (None: the
    one ``latest`` names).
    """
    path = Path(target).expanduser()
    try:
        info = path.stat()
    except FileNotFoundError:
        raise CheckpointError(target, "no such file or folder") from None
    except OSError as exc:
        raise CheckpointError(target, exc.strerror or str(exc)) from None
    if stat.S_ISDIR(info.st_mode):
        kind = distributed.detect(path)
        snapshot, _ = folder.resolve_cache_repo(path)
        if kind is not None:
            checkpoint = distributed_checkpoint.read(path, kind, weights_key, tag)
            config = folder.read_config(path)
            if config is not None:
                checkpoint = dataclasses.replace(checkpoint, config=config)
        elif adapter.is_adapter_folder(snapshot):
            checkpoint = adapter.read(snapshot, open_file)
        else:
            checkpoint = folder.read(path, functools.partial(open_file, weights_key=weights_key))
    elif path.name == adapter.ADAPTER_CONFIG_NAME or (
        path.name in adapter.WEIGHT_NAMES and adapter.is_adapter_folder(path.parent)
    ):
        # An adapter's config or weight file stands for the adapter folder.
        checkpoint = adapter.read(path.parent, open_file)
    else:
        checkpoint = open_file(path, None, weights_key)
        config = folder.read_config(path.parent)
        if config is not None:
            # A config.json beside the file wins over one embedded in a pickle.
            metadata = {k: v for k, v in checkpoint.metadata.items() if k != "embedded_config"}
            checkpoint = dataclasses.replace(checkpoint, config=config, metadata=metadata)
    if tag is not None and not checkpoint.format.startswith("deepspeed"):
        raise CheckpointError(target, "--tag chooses the tag of a DeepSpeed checkpoint folder only")
    if weights_key is not None and not checkpoint.format.startswith(("pytorch", "dcp", "deepspeed")):
        raise CheckpointError(
            target, "--key chooses a weight set in PyTorch pickles and DCP/DeepSpeed folders only"
        )
    return dataclasses.replace(checkpoint, source=str(target))


def open_file(path: Path, root: Path | None, weights_key: str | None = None) -> Checkpoint:
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
    if safetensors.sniff(head):
        refuse_if_torch_would_unpickle(path, head, info.st_size)
    for reader in READERS:
        if reader is pytorch and reader.sniff(head):
            return pytorch.read(path, root, weights_key)
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
