"""The bytes of a pickled tensor that is a strided view into its storage, without torch.

A contiguous pickled tensor has ``TensorInfo.offset`` and is read like a
safetensors tensor. A view that is not contiguous (a transpose, a strided
slice of a shared storage) is read here: the part of the storage the view
reaches is read once, then numpy gathers the elements in row-major order, so
the result is exactly what ``tensor.contiguous()`` would hold.

Memory: the storage span the view reaches plus the tensor's own bytes; both
are bounded by the file's size (the reader checked the view against its
storage when the file was opened).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ckpt_gui.core.dtypes import BITS_PER_ELEMENT
from ckpt_gui.core.errors import CheckpointError
from ckpt_gui.core.model import TensorInfo


def strided_bytes(path: Path, tensor: TensorInfo) -> np.ndarray[Any, np.dtype[np.uint8]]:
    """``tensor``'s bytes in row-major order (as safetensors would store them)."""
    if tensor.storage_start is None or tensor.stride is None:
        raise CheckpointError(path, f"tensor '{tensor.name}' has no storage layout")
    bits = BITS_PER_ELEMENT.get(tensor.dtype, 8)
    if bits % 8:
        raise CheckpointError(
            path, f"tensor '{tensor.name}': strided views of {tensor.dtype} are not supported"
        )
    item = bits // 8
    if tensor.parameters == 0:
        return np.empty(0, dtype=np.uint8)
    reach = 1 + sum((s - 1) * st for s, st in zip(tensor.shape, tensor.stride, strict=True))
    start = tensor.storage_start + tensor.storage_offset * item
    span = np.empty(reach * item, dtype=np.uint8)
    read_exact(path, start, span, tensor.name)
    elements = span.view(np.dtype((np.void, item)))
    view = np.lib.stride_tricks.as_strided(
        elements,
        shape=tensor.shape,
        strides=tuple(st * item for st in tensor.stride),
        writeable=False,
    )
    gathered: np.ndarray[Any, np.dtype[np.uint8]] = (
        np.ascontiguousarray(view).view(np.uint8).reshape(-1)
    )
    return gathered


def read_exact(path: Path, position: int, out: np.ndarray[Any, Any], name: str) -> None:
    """Fill ``out`` with the file's bytes at ``position`` (a clean error if the file is short)."""
    target = memoryview(out).cast("B")  # type: ignore[arg-type]
    try:
        with path.open("rb", buffering=0) as stream:
            stream.seek(position)
            done = 0
            while done < len(target):
                count = stream.readinto(target[done:])
                if not count:
                    raise CheckpointError(path, f"file ends inside tensor '{name}'")
                done += count
    except OSError as exc:
        raise CheckpointError(path, exc.strerror or str(exc)) from None


def tensor_bytes_from_file(path: Path, tensor: TensorInfo) -> np.ndarray[Any, np.dtype[np.uint8]]:
    """Any local pickled tensor's row-major bytes: contiguous ones in one read, views gathered."""
    if tensor.offset is not None:
        out = np.empty(tensor.nbytes, dtype=np.uint8)
        read_exact(path, tensor.offset, out, tensor.name)
        return out
    return strided_bytes(path, tensor)
