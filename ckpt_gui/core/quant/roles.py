"""What each stored tensor of a quantized checkpoint is: a packed weight, or bookkeeping.

The counting follows the Hub's rules (huggingface.js ``parse-safetensors-metadata``):
a packed integer holds ``container bits / weight bits`` parameters, and scales,
zero points, group indices, absmax values, quant maps, quant states and ``F8_E8M0``
block exponents are not parameters at all. Where the Hub decides from the config
alone, a sibling tensor is required here too (a ``scales`` only counts as GPTQ
bookkeeping beside a ``qweight``), so a learnable parameter that happens to be
called ``scales`` in an unquantized module stays a parameter.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from ckpt_gui.core.quant.scheme import QuantScheme, group_for, module_is_quantized

CONTAINER_BITS = {"U8": 8, "I8": 8, "U16": 16, "I16": 16, "U32": 32, "I32": 32}
SCALE_ONLY_DTYPES = frozenset({"F8_E8M0"})

# Suffixes (after the last dot) that are bookkeeping beside any quantized weight.
AUXILIARY_SUFFIXES = frozenset(
    {
        "weight_scale",
        "weight_scale_inv",
        "weight_scale_2",
        "weight_global_scale",
        "weight_zero_point",
        "input_scale",
        "input_global_scale",
        "input_zero_point",
        "zero_point",
        "weight_shape",
        "weight_g_idx",
        "activation_scale",  # transformers' FP8Linear with a static activation scheme
    }
)
GPTQ_AUXILIARY = frozenset({"qzeros", "scales", "g_idx"})
BNB_AUXILIARY = frozenset({"absmax", "quant_map", "nested_absmax", "nested_quant_map"})
BNB_INT8_AUXILIARY = frozenset({"SCB", "weight_format"})


@dataclass(frozen=True)
class Role:
    """``kind`` is "weight" (a quantized weight), "bookkeeping" or "plain";
    ``module`` the dotted module the tensor belongs to; ``factor`` the parameters one
    stored element stands for (0 for bookkeeping)."""

    kind: str
    module: str
    factor: float = 1.0


PLAIN = "plain"
WEIGHT = "weight"
BOOKKEEPING = "bookkeeping"


def role_of(
    name: str, dtype: str, names: Mapping[str, str], scheme: QuantScheme, bits: int | None
) -> Role:
    """The role of tensor ``name``; ``names`` maps every tensor name to its dtype and
    ``bits`` is the weight width this tensor's module uses (when it is known)."""
    module, _, suffix = name.rpartition(".")
    if dtype in SCALE_ONLY_DTYPES:
        return Role(BOOKKEEPING, _owner(name, module, suffix))
    method = scheme.method
    if method in ("gptq", "awq"):
        if suffix == "qweight":
            return Role(WEIGHT, module, _packing(dtype, bits or 4))
        if suffix in GPTQ_AUXILIARY and f"{module}.qweight" in names:
            return Role(BOOKKEEPING, module)
    if method == "bitsandbytes":
        bnb = _bitsandbytes_role(name, module, suffix, dtype, names, scheme)
        if bnb is not None:
            return bnb
    if method == "mxfp4" and dtype == "U8":
        if suffix.endswith("_blocks"):
            return Role(WEIGHT, module, 2.0)
        if suffix.endswith("_scales") and f"{module}.{suffix[: -len('_scales')]}_blocks" in names:
            return Role(BOOKKEEPING, module)
    if method == "compressed-tensors" and suffix == "weight_packed":
        return Role(WEIGHT, module, _packing(dtype, bits or 4))
    if suffix in AUXILIARY_SUFFIXES:
        return Role(BOOKKEEPING, module)
    if suffix == "weight" and _is_quantized_float(dtype, module, names, scheme):
        return Role(WEIGHT, module, 1.0)
    return Role(PLAIN, module)


def bits_for_module(module: str, scheme: QuantScheme) -> int | None:
    """The weight width the scheme gives ``module`` (compressed-tensors: its group's)."""
    if scheme.method == "compressed-tensors":
        group = group_for(module, scheme)
        if group is not None and group.bits:
            return group.bits
        return _bits_from_format(group.format if group else scheme.format)
    return scheme.bits


def _bitsandbytes_role(
    name: str,
    module: str,
    suffix: str,
    dtype: str,
    names: Mapping[str, str],
    scheme: QuantScheme,
) -> Role | None:
    if ".quant_state." in name or suffix in BNB_AUXILIARY:
        owner = name.split(".weight.", 1)[0] if ".weight." in name else module
        return Role(BOOKKEEPING, owner)
    if suffix in BNB_INT8_AUXILIARY and f"{module}.weight" in names:
        return Role(BOOKKEEPING, module)
    if suffix == "weight" and dtype == "U8" and f"{name}.absmax" in names:
        return Role(WEIGHT, module, 2.0)  # 4-bit: two values per byte, flattened to [n/2, 1]
    if suffix == "weight" and dtype == "I8" and f"{module}.SCB" in names:
        return Role(WEIGHT, module, 1.0)
    return None


def _is_quantized_float(
    dtype: str, module: str, names: Mapping[str, str], scheme: QuantScheme
) -> bool:
    """An fp8/fp4 (or compressed-tensors int8) ``weight`` with a scale beside it."""
    integer = dtype == "I8" and scheme.method == "compressed-tensors"  # int-quantized
    if not (dtype.startswith("F8_") or dtype == "F4" or integer):
        return False
    if not module_is_quantized(module, scheme):
        return False
    return any(f"{module}.{s}" in names for s in ("weight_scale", "weight_scale_inv"))


def _owner(name: str, module: str, suffix: str) -> str:
    if suffix.endswith("_scales"):
        return module
    return name.split(".weight.", 1)[0] if ".weight." in name else module


def _packing(dtype: str, bits: int) -> float:
    """Values per stored element: dense packing, so not necessarily whole (3-bit in I32)."""
    container = CONTAINER_BITS.get(dtype)
    if container is None or bits <= 0 or bits >= container:
        return 1.0
    return container / bits


def _bits_from_format(text: str | None) -> int | None:
    if not text:
        return None
    lowered = text.lower()
    for pattern, bits in (("fp4", 4), ("int4", 4), ("uint4", 4), ("nf4", 4), ("int2", 2)):
        if pattern in lowered:
            return bits
    return None
