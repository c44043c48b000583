"""Read a tensor's values in bounded chunks, as numpy arrays.

Safetensors are read straight from the file at the header's offsets (no torch
for the common dtypes); pickled checkpoints go through the safe loader with
``mmap=True`` so that only the pages touched are read.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

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
    path = checkpoint.path_of(tensor)
    if tensor.offset is not None:
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
    raise ValueError(f"values of dtype {dtype} cannot be decoded")


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


def _pickle_chunks(
    path: Path, tensor: TensorInfo, chunk_elements: int
) -> Iterator[np.ndarray[Any, Any]]:
    import zipfile

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
    value = state_dict.get(tensor.name)
    if value is None:
        raise CheckpointError(path, f"tensor '{tensor.name}' is not in the file")
    flat = value.reshape(-1)
    for start in range(0, flat.numel(), chunk_elements):
        piece = flat[start : start + chunk_elements]
        if piece.dtype in (torch.bfloat16, torch.float16) or (
            piece.dtype.is_floating_point and piece.element_size() == 1
        ):
            piece = piece.float()
        yield piece.numpy()
    del loaded, state_dict, value, flat
