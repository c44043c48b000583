"""Read a tensor's values in bounded chunks, as numpy arrays.

Safetensors and pickled checkpoints alike are read straight from the file (no
torch for the common dtypes): a pickled tensor's bytes sit in its zip record or
legacy stream at ``TensorInfo.offset``; strided views are gathered by
``strided.py``.

``iter_chunks`` gives independent arrays for one tensor (simple, for the
statistics panel); ``tensor_stream.TensorStream`` is the fast path for reading
many tensors (reused buffers, read-ahead thread), with ``decode_into`` here.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from ckpt_gui.core.dtypes import BITS_PER_ELEMENT
from ckpt_gui.core.errors import CheckpointError
from ckpt_gui.core.gguf.values import dequantize_into, is_quantized
from ckpt_gui.core.model import Checkpoint, TensorInfo
from ckpt_gui.core.values import decode as plain

DEFAULT_CHUNK_ELEMENTS = 1 << 22  # 4M values: 16 MB as float32


def iter_chunks(
    checkpoint: Checkpoint, tensor: TensorInfo, chunk_elements: int = DEFAULT_CHUNK_ELEMENTS
) -> Iterator[np.ndarray[Any, Any]]:
    """Yield the tensor's values (flattened) in chunks of at most ``chunk_elements``."""
    from ckpt_gui.core.formats.distributed.checkpoint import is_distributed

    if is_distributed(checkpoint):
        yield from _distributed_chunks(checkpoint, tensor, chunk_elements)
        return
    path = checkpoint.path_of(tensor)
    if checkpoint.format == "gguf":
        yield from _gguf_chunks(checkpoint, tensor, chunk_elements)
    elif tensor.offset is not None:
        # Safetensors, and contiguous tensors of pickles: one run of bytes in the file.
        yield from _safetensors_chunks(path, tensor, chunk_elements)
    elif tensor.strided:
        yield from _strided_chunks(path, tensor, chunk_elements)
    else:
        raise CheckpointError(path, f"tensor '{tensor.name}': its bytes cannot be located")


def decode(raw: bytes, dtype: str) -> np.ndarray[Any, Any]:
    """Bytes of a safetensors dtype or a quantized GGUF type -> numpy values."""
    if is_quantized(dtype):
        return dequantize_into(np.frombuffer(raw, dtype=np.uint8), dtype)
    return plain.decode(raw, dtype)


def decode_into(
    raw: np.ndarray[Any, np.dtype[np.uint8]], dtype: str, scratch: np.ndarray[Any, Any]
) -> np.ndarray[Any, Any]:
    """As ``values.decode.decode_into``, quantized GGUF types included."""
    if is_quantized(dtype):
        return dequantize_into(raw, dtype)
    values: np.ndarray[Any, Any] = plain.decode_into(raw, dtype, scratch)
    return values


def _safetensors_chunks(
    path: Path, tensor: TensorInfo, chunk_elements: int
) -> Iterator[np.ndarray[Any, Any]]:
    if tensor.dtype in ("F4", "F6_E2M3", "F6_E3M2"):
        raise CheckpointError(
            path, f"tensor '{tensor.name}': reading {tensor.dtype} values is not supported"
        )
    item_size = tensor.nbytes // tensor.parameters if tensor.parameters else 1
    assert tensor.offset is not None
    remaining = tensor.nbytes
    try:
        with path.open("rb") as stream:
            stream.seek(tensor.offset)
            while remaining > 0:
                raw = stream.read(min(remaining, chunk_elements * item_size))
                if not raw:
                    raise CheckpointError(path, f"file ends inside tensor '{tensor.name}'")
                remaining -= len(raw)
                yield decode(raw, tensor.dtype)
    except OSError as exc:
        raise CheckpointError(path, exc.strerror or str(exc)) from None


def _gguf_chunks(
    checkpoint: Checkpoint, tensor: TensorInfo, chunk_elements: int
) -> Iterator[np.ndarray[Any, Any]]:
    """Dequantized whole blocks, rows in transformers' order (see core/gguf/values.py)."""
    from ckpt_gui.core.values.stream import TensorStream

    step = max(256, chunk_elements - chunk_elements % 256)  # whole blocks of every ggml type
    with TensorStream(checkpoint, [tensor], step, prefetch=False) as stream:
        for chunk in stream:
            # The chunk's buffer is reused: decode into independent arrays.
            yield decode(chunk.raw.tobytes(), chunk.dtype).copy()


def _strided_chunks(
    path: Path, tensor: TensorInfo, chunk_elements: int
) -> Iterator[np.ndarray[Any, np.dtype[Any]]]:
    from ckpt_gui.core.values.strided import strided_bytes

    raw = strided_bytes(path, tensor)
    item_size = tensor.nbytes // tensor.parameters if tensor.parameters else 1
    step = chunk_elements * item_size
    for start in range(0, raw.size, step):
        yield decode(raw[start : start + step].tobytes(), tensor.dtype)


def _distributed_chunks(
    checkpoint: Checkpoint, tensor: TensorInfo, chunk_elements: int
) -> Iterator[np.ndarray[Any, Any]]:
    """A DCP/DeepSpeed tensor: assembled from its chunks once, then decoded in chunks."""
    from ckpt_gui.core.formats.distributed.values import CheckpointPieces

    pieces = CheckpointPieces(checkpoint)
    try:
        raw = pieces.tensor_bytes(tensor.name)
    finally:
        pieces.close()
    step = chunk_elements * max(1, BITS_PER_ELEMENT[tensor.dtype] // 8)
    for start in range(0, raw.size, step):
        yield decode(raw[start : start + step].tobytes(), tensor.dtype)
