"""Safetensors dtype names, their sizes, and the mapping from torch dtypes.

Sizes are in bits because the sub-byte float formats (F4, F6_*) pack several
values per byte.
"""

from __future__ import annotations

BITS_PER_ELEMENT: dict[str, int] = {
    "BOOL": 8,
    "F4": 4,
    "F6_E2M3": 6,
    "F6_E3M2": 6,
    "U8": 8,
    "I8": 8,
    "F8_E5M2": 8,
    "F8_E4M3": 8,
    "F8_E8M0": 8,
    "F8_E4M3FNUZ": 8,
    "F8_E5M2FNUZ": 8,
    "I16": 16,
    "U16": 16,
    "F16": 16,
    "BF16": 16,
    "I32": 32,
    "U32": 32,
    "F32": 32,
    "C64": 64,
    "F64": 64,
    "I64": 64,
    "U64": 64,
}

FLOAT_DTYPES = frozenset({"F16", "BF16", "F32", "F64"})

# torch dtype attribute name -> safetensors dtype name.
TORCH_TO_SAFETENSORS: dict[str, str] = {
    "bool": "BOOL",
    "uint8": "U8",
    "int8": "I8",
    "float8_e5m2": "F8_E5M2",
    "float8_e4m3fn": "F8_E4M3",
    "float8_e8m0fnu": "F8_E8M0",
    "float8_e4m3fnuz": "F8_E4M3FNUZ",
    "float8_e5m2fnuz": "F8_E5M2FNUZ",
    "float4_e2m1fn_x2": "F4",
    "int16": "I16",
    "uint16": "U16",
    "float16": "F16",
    "bfloat16": "BF16",
    "int32": "I32",
    "uint32": "U32",
    "float32": "F32",
    "complex64": "C64",
    "float64": "F64",
    "int64": "I64",
    "uint64": "U64",
}

SAFETENSORS_TO_TORCH: dict[str, str] = {v: k for k, v in TORCH_TO_SAFETENSORS.items()}

# Friendly names users type on the command line.
USER_DTYPE_NAMES: dict[str, str] = {
    "fp32": "F32",
    "float32": "F32",
    "fp16": "F16",
    "float16": "F16",
    "half": "F16",
    "bf16": "BF16",
    "bfloat16": "BF16",
}


def nbytes_for(dtype: str, parameters: int) -> int:
    """Bytes that ``parameters`` values of ``dtype`` occupy (rounded up to whole bytes)."""
    return (BITS_PER_ELEMENT[dtype] * parameters + 7) // 8


def torch_dtype_name(torch_dtype: object) -> str:
    """Safetensors name of a ``torch.dtype`` given as object or string (e.g. ``torch.float32``)."""
    name = str(torch_dtype).removeprefix("torch.")
    return TORCH_TO_SAFETENSORS.get(name, name.upper())
