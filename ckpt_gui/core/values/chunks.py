"""Read a tensor's values in bounded chunks, as numpy arrays.

Safetensors are read straight from the file at the header's offsets (no torch
for the common dtypes); pickled checkpoints go through the safe loader with
``mmap=True`` so that only the pages touched are read.

``iter_chunks`` gives independent arrays for one tensor (simple, for the
statistics panel); ``tensor_stream.TensorStream`` is the fast path for reading
many tensors (reused buffers, read-ahead thread), with ``decode_into`` here.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from ckpt_gui.core.errors import CheckpointError
from ckpt_gui.core.gguf.values import dequantize_into, is_quantized
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
    path = checkpoint.path_of(tensor)
    if checkpoint.format == "gguf":
        yield from _gguf_chunks(checkpoint, tensor, chunk_elements)
    elif tensor.offset is not None:
        yield from _safetensors_chunks(path, tensor, chunk_elements)
    else:
        yield from _pickle_chunks(path, tensor, chunk_elements)


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
    if is_quantized(dtype):
        return dequantize_into(np.frombuffer(raw, dtype=np.uint8), dtype)
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
    if is_quantized(dtype):
        return dequantize_into(raw, dtype)
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


def _gguf_chunks(
    checkpoint: Checkpoint, tensor: TensorInfo, chunk_elements: int
) -> Iterator[np.ndarray[Any, Any]]:
    """Dequantized whole blocks, rows in transformers' order (see core/gguf/values.py)."""
    from ckpt_gui.core.values.stream import TensorStream

    step = max(256, chunk_elements - chunk_elements % 256)  # whole blocks of every ggml type
    with TensorStream(checkpoint, [tensor], step, prefetch=False) as stream:
        for chunk in stream:
            # The chunk's buffer is reused: decode into independent arrays.
            yield decode(chunk.raw.tobytes(), tensor.dtype).copy()


def _pickle_chunks(
    path: Path, tensor: TensorInfo, chunk_elements: int
) -> Iterator[np.ndarray[Any, Any]]:
    import torch

    from ckpt_gui.core.pickles.torch_load import MappedPickle

    pickle = MappedPickle(path)
    try:
        value = pickle.get(tensor.name)
        if value is None:
            raise CheckpointError(path, f"tensor '{tensor.name}' is not in the file")
        flat = value.reshape(-1)
        for start in range(0, flat.numel(), chunk_elements):
            pickle.check()  # before touching mapped pages
            piece = flat[start : start + chunk_elements]
            if piece.dtype in (torch.bfloat16, torch.float16) or (
                piece.dtype.is_floating_point and piece.element_size() == 1
            ):
                piece = piece.float()
            else:
                # A copy: the consumer may still hold it after the file is released.
                piece = piece.clone()
            yield piece.numpy()
        del value, flat
    finally:
        pickle.close()
