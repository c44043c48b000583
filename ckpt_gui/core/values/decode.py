"""Raw tensor bytes -> numpy values, for every safetensors dtype numpy or torch can decode.

A module of its own so that readers below ``values/`` (GGUF's plain tensors) can
decode without importing the chunk readers; ``chunks.decode``/``decode_into`` add the
quantized GGUF types on top.
"""

from __future__ import annotations

from typing import Any

import numpy as np

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
