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
from ckpt_gui.core.model import Checkpoint, TensorInfo

DEFAULT_CHUNK_ELEMENTS = 1 << 22  # 4M values: 16 MB as float32

_NUMPY_DTYPES: dict[str, str] = {
    "BOOL": "bool",
    "U8": "uint8",
    "I8": "int8",
    "I16": "int16",
    "U16": "uint16",
    "F16": "float16",
    "I32": "int32",
    "U32": "uint32",
    "F32": "float32",
    "F64": "float64",
    "I64": "int64",
    "U64": "uint64",
    "C64": "complex64",
}
# Decoded through torch: numpy has no such types.
_TORCH_ONLY = {"F8_E5M2", "F8_E4M3", "F8_E8M0", "F8_E4M3FNUZ", "F8_E5M2FNUZ"}


def iter_chunks(
    checkpoint: Checkpoint, tensor: TensorInfo, chunk_elements: int = DEFAULT_CHUNK_ELEMENTS
) -> Iterator[np.ndarray[Any, Any]]:
    """Yield the tensor's values (flattened) in chunks of at most ``chunk_elements``."""
    from ckpt_gui.core.formats.distributed.checkpoint import is_distributed

    if is_distributed(checkpoint):
        yield from _distributed_chunks(checkpoint, tensor, chunk_elements)
        return
    path = checkpoint.path_of(tensor)
    if tensor.offset is not None:
        # Safetensors, and contiguous tensors of pickles: one run of bytes in the file.
        yield from _safetensors_chunks(path, tensor, chunk_elements)
    elif tensor.strided:
        yield from _strided_chunks(path, tensor, chunk_elements)
    else:
        raise CheckpointError(path, f"tensor '{tensor.name}': its bytes cannot be located")


def decode(raw: bytes, dtype: str) -> np.ndarray[Any, Any]:
    """Bytes of a safetensors dtype -> numpy values (BF16 and F8 widened to float32)."""
    if dtype in _NUMPY_DTYPES:
        return np.frombuffer(raw, dtype=np.dtype(_NUMPY_DTYPES[dtype]).newbyteorder("<"))
    if dtype == "BF16":
        # bfloat16 is the top half of a float32.
        return (np.frombuffer(raw, dtype="<u2").astype(np.uint32) << 16).view(np.float32)
    if dtype in _TORCH_ONLY:
        import torch

        from ckpt_gui.core.dtypes import SAFETENSORS_TO_TORCH

        torch_dtype = getattr(torch, SAFETENSORS_TO_TORCH[dtype])
        values = torch.frombuffer(bytearray(raw), dtype=torch_dtype).float().numpy()
        return values
    raise ValueError(f"values of dtype {dtype} cannot be decoded")


def decode_into(
    raw: np.ndarray[Any, np.dtype[np.uint8]], dtype: str, scratch: np.ndarray[Any, Any]
) -> np.ndarray[Any, Any]:
    """Raw bytes -> values to compute on, without allocating for the common dtypes.

    F32, F64 and integer dtypes are views of ``raw``; F16 and BF16 are widened into
    ``scratch`` (float32, at least as many elements); F8 goes through torch.
    The result is valid only as long as ``raw`` and ``scratch`` are not reused.
    """
    if dtype in ("F32", "F64") or (dtype in _NUMPY_DTYPES and dtype != "F16"):
        return raw.view(np.dtype(_NUMPY_DTYPES[dtype]).newbyteorder("<"))
    count = raw.size // 2
    if dtype == "F16":
        out = scratch[:count]
        np.copyto(out, raw.view("<f2"))
        return out
    if dtype == "BF16":
        # bfloat16 is the top half of a float32: widen in place, no temporaries.
        wide = scratch[:count].view(np.uint32)
        np.copyto(wide, raw.view("<u2"))
        np.left_shift(wide, 16, out=wide)
        return scratch[:count]
    return decode(raw.tobytes(), dtype)


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
