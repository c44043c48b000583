"""The keys a quantized model stores in place of each ``Linear.weight``.

A model built from a config on the meta device has plain ``weight`` tensors:
transformers swaps in quantized modules only inside ``from_pretrained``, through a
quantizer that needs the method's kernels (GPTQModel, AutoAWQ, bitsandbytes...),
which a checkpoint viewer cannot require. So each method's stored layout is written
out here from its documentation and the quantized module classes
(transformers ``FP8Linear``; GPTQ ``QuantLinear``; AWQ ``WQLinear_GEMM``;
bitsandbytes ``Linear4bit``/``Linear8bitLt``; compressed-tensors' compressors).
MXFP4 (gpt-oss) quantizes the experts' 3-D ``gate_up_proj`` / ``down_proj``
parameters instead, stored as ``*_blocks`` and ``*_scales``.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping

from ckpt_gui.core.check.expected import ExpectedModel, ExpectedTensor
from ckpt_gui.core.quant.scheme import (
    QuantScheme,
    group_for,
    module_is_quantized,
    scheme_from_config,
)

Shapes = Mapping[str, tuple[int, ...]]


def with_quantized_keys(
    expected: ExpectedModel, config: Mapping[str, object], stored: Shapes
) -> ExpectedModel:
    """``expected`` with the quantized layout the config declares (unchanged if none).

    ``stored`` (the checkpoint's shapes) is used only for what no config states:
    the length of a bitsandbytes quant-state blob, and optional keys.
    """
    scheme = scheme_from_config(config)
    linear = expected.linear_modules
    if scheme is not None and scheme.method == "mxfp4":
        return dataclasses.replace(expected, tensors=_mxfp4_experts(expected.tensors))
    if scheme is None or not scheme.known or linear is None:
        return expected
    default_excluded = _output_embeddings(expected)
    tensors = dict(expected.tensors)
    for module in linear:
        weight = tensors.get(f"{module}.weight")
        if weight is None or len(weight.shape) != 2:
            continue
        if not module_is_quantized(module, scheme, default_excluded):
            continue
        if not _selected(module, scheme):
            continue
        layout = _layout(module, weight.shape, scheme, stored)
        if layout is None:
            continue
        del tensors[f"{module}.weight"]
        for suffix, (shape, dtype) in layout.items():
            name = f"{module}.{suffix}"
            tensors[name] = ExpectedTensor(name, shape, dtype)
    return dataclasses.replace(expected, tensors=tensors)


def _mxfp4_experts(tensors: Mapping[str, ExpectedTensor]) -> dict[str, ExpectedTensor]:
    """gpt-oss experts ``[E, in, out]`` are stored transposed in blocks of 32 values:
    ``_blocks`` uint8 ``[E, out, in / 32, 16]`` (two e2m1 a byte), ``_scales`` uint8
    ``[E, out, in / 32]`` (one UE8M0 exponent a block)."""
    out: dict[str, ExpectedTensor] = {}
    for name, tensor in tensors.items():
        shape = tensor.shape
        if (
            name.endswith(("experts.gate_up_proj", "experts.down_proj"))
            and len(shape) == 3
            and shape[1] % 32 == 0
        ):
            experts, in_features, out_features = shape
            blocks = (experts, out_features, in_features // 32)
            out[f"{name}_blocks"] = ExpectedTensor(f"{name}_blocks", (*blocks, 16), "U8")
            out[f"{name}_scales"] = ExpectedTensor(f"{name}_scales", blocks, "U8")
        else:
            out[name] = tensor
    return out


def _output_embeddings(expected: ExpectedModel) -> tuple[str, ...]:
    """What transformers leaves unquantized when the config lists nothing: the tied
    weights and the output embeddings (``lm_head``)."""
    names = {k.removesuffix(".weight") for pair in expected.tied.items() for k in pair}
    if expected.linear_modules:
        last = expected.linear_modules[-1]
        if last.rsplit(".", 1)[-1] in ("lm_head", "output", "classifier", "score"):
            names.add(last)
    return tuple(sorted(names))


def _selected(module: str, scheme: QuantScheme) -> bool:
    """GPTQ quantizes only the blocks it names (``block_name_to_quantize``, default the
    decoder layers); compressed-tensors only modules a config group targets."""
    if scheme.method == "gptq":
        blocks = scheme.raw.get("block_name_to_quantize")
        if isinstance(blocks, str):
            return any(module.startswith(b + ".") for b in blocks.split(","))
        return ".layers." in f".{module}" or bool(scheme.raw.get("lm_head"))
    if scheme.method == "compressed-tensors":
        return group_for(module, scheme) is not None
    return True


def _layout(
    module: str, shape: tuple[int, ...], scheme: QuantScheme, stored: Shapes
) -> dict[str, tuple[tuple[int, ...], str]] | None:
    out_features, in_features = shape
    bits = scheme.bits or 4
    method = scheme.method
    if method in ("gptq", "awq"):
        group = scheme.group_size if scheme.group_size and scheme.group_size > 0 else in_features
        groups = math.ceil(in_features / group)
        packed_out = out_features * bits // 32
        if method == "gptq":
            return {
                "qweight": ((in_features * bits // 32, out_features), "I32"),
                "qzeros": ((groups, packed_out), "I32"),
                "scales": ((groups, out_features), "F16"),
                "g_idx": ((in_features,), "I32"),
            }
        return {
            "qweight": ((in_features, packed_out), "I32"),
            "qzeros": ((groups, packed_out), "I32"),
            "scales": ((groups, out_features), "F16"),
        }
    if method == "bitsandbytes":
        return _bitsandbytes(module, out_features * in_features, out_features, scheme, stored)
    if method == "fp8":
        block = scheme.block_size
        scale: tuple[int, ...] = (
            (math.ceil(out_features / block[0]), math.ceil(in_features / block[1]))
            if block and len(block) == 2
            else ()
        )
        layout = {"weight": (shape, "F8_E4M3"), "weight_scale_inv": (scale, "F32")}
        if scheme.raw.get("activation_scheme") == "static":
            layout["activation_scale"] = ((), "F32")
        return layout
    if method == "compressed-tensors":
        return _compressed(module, shape, scheme, stored)
    return None


def _bitsandbytes(
    module: str, count: int, out_features: int, scheme: QuantScheme, stored: Shapes
) -> dict[str, tuple[tuple[int, ...], str]]:
    if scheme.bits == 8:
        layout = {
            "weight": ((out_features, count // out_features), "I8"),
            "SCB": ((out_features,), "F32"),
        }
        weight_format = _stored_shape(stored, f"{module}.weight_format")
        if weight_format is not None:
            layout["weight_format"] = (weight_format, "U8")
        return layout
    blocks = math.ceil(count / 64)
    kind = scheme.variant or "fp4"
    state = f"weight.quant_state.bitsandbytes__{kind}"
    layout = {
        "weight": ((math.ceil(count / 2), 1), "U8"),
        "weight.quant_map": ((16,), "F32"),
        # The quant state is the JSON of the rest; its length is in no config.
        state: (_stored_shape(stored, f"{module}.{state}") or (0,), "U8"),
    }
    if scheme.double_quant:
        layout["weight.absmax"] = ((blocks,), "U8")
        layout["weight.nested_absmax"] = ((math.ceil(blocks / 256),), "F32")
        layout["weight.nested_quant_map"] = ((256,), "F32")
    else:
        layout["weight.absmax"] = ((blocks,), "F32")
    return layout


def _compressed(
    module: str, shape: tuple[int, ...], scheme: QuantScheme, stored: Shapes
) -> dict[str, tuple[tuple[int, ...], str]] | None:
    out_features, in_features = shape
    group = group_for(module, scheme)
    if group is None:
        return None
    fmt = (group.format or scheme.format or "").lower()
    if group.strategy == "group" and group.group_size:
        scale_shape: tuple[int, ...] = (out_features, math.ceil(in_features / group.group_size))
    elif group.strategy == "channel":
        scale_shape = (out_features, 1)
    else:
        scale_shape = (1,)
    # Scales keep the model's float dtype: the stored one is the best guess of it.
    scale_dtype = "F32"
    layout: dict[str, tuple[tuple[int, ...], str]] = {}
    if fmt.endswith("pack-quantized"):
        bits = group.bits or 4
        layout["weight_packed"] = ((out_features, math.ceil(in_features * bits / 32)), "I32")
        layout["weight_shape"] = ((2,), "I64")
    elif fmt in ("float-quantized", "naive-quantized", "int-quantized"):
        layout["weight"] = (shape, "F8_E4M3" if fmt == "float-quantized" else "I8")
    else:
        return None
    layout["weight_scale"] = (scale_shape, scale_dtype)
    if not group.symmetric:
        # Packed too in pack-quantized; its exact shape follows the stored one.
        zero_point = _stored_shape(stored, f"{module}.weight_zero_point") or scale_shape
        layout["weight_zero_point"] = (
            zero_point,
            "I32" if fmt.endswith("pack-quantized") else "I8",
        )
    if group.actorder == "group":
        layout["weight_g_idx"] = ((in_features,), "I32")
    return layout


def _stored_shape(stored: Shapes, name: str) -> tuple[int, ...] | None:
    """The checkpoint's shape for model key ``name``, under the base-model prefix or not."""
    if name in stored:
        return stored[name]
    for key, shape in stored.items():
        if key.endswith("." + name) or name.endswith("." + key):
            return shape
    return None
