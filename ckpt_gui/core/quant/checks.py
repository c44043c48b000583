"""Do a quantized module's tensors agree with each other and with the config?

Each layout fixes the shapes of its bookkeeping from the weight's shape (GPTQ:
``qzeros`` is ``[groups, out * bits / 32]``; FP8 blocks: ``weight_scale_inv`` is
``[ceil(out / b0), ceil(in / b1)]``...). A module whose shapes disagree is named in a
warning, so a count that rests on a wrong assumption (a width, a group size) never
passes silently.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

from ckpt_gui.core.quant.scheme import QuantScheme, group_for

Shapes = Mapping[str, tuple[int, ...]]
MAX_NAMED = 3


def gptq_bits(shapes: Shapes, module: str, method: str) -> int | None:
    """The width the shapes imply: GPTQ packs ``qzeros`` columns, AWQ ``qweight``
    columns, both ``32 / bits`` values per int32, against ``scales``' columns."""
    scales = shapes.get(f"{module}.scales")
    packed = shapes.get(f"{module}.qzeros" if method == "gptq" else f"{module}.qweight")
    if not scales or not packed or len(scales) != 2 or len(packed) != 2 or not packed[1]:
        return None
    ratio = scales[1] / packed[1]
    return round(32 / ratio) if ratio and float(32 / ratio).is_integer() else None


def layout_problems(
    shapes: Shapes,
    modules: Mapping[str, Any],
    scheme: QuantScheme,
    bits_for: Callable[[str, QuantScheme], int | None],
) -> list[str]:
    """One warning per kind of problem, naming the first modules it affects."""
    problems: dict[str, list[str]] = {}
    for path in modules:
        for problem in _module_problems(shapes, path, scheme, bits_for(path, scheme)):
            problems.setdefault(problem, []).append(path)
    warnings = []
    for problem, paths in problems.items():
        named = ", ".join(paths[:MAX_NAMED])
        more = f" and {len(paths) - MAX_NAMED} more" if len(paths) > MAX_NAMED else ""
        warnings.append(f"{scheme.method} layout: {problem} ({named}{more})")
    return warnings


def _module_problems(shapes: Shapes, path: str, scheme: QuantScheme, bits: int | None) -> list[str]:
    method = scheme.method
    if method in ("gptq", "awq"):
        return _gptq_problems(shapes, path, method, scheme, bits)
    if method == "fp8":
        return _fp8_problems(shapes, path, scheme)
    if method == "compressed-tensors":
        return _packed_problems(shapes, path, scheme, bits)
    if method == "mxfp4":
        return _mxfp4_problems(shapes, path)
    if method == "bitsandbytes":
        return _bnb_problems(shapes, path, scheme)
    return []


def _gptq_problems(
    shapes: Shapes, path: str, method: str, scheme: QuantScheme, bits: int | None
) -> list[str]:
    missing = [s for s in ("scales", "qzeros") if f"{path}.{s}" not in shapes]
    if missing:
        return [f"qweight without {' and '.join(missing)}"]
    qweight, scales = shapes[f"{path}.qweight"], shapes[f"{path}.scales"]
    if len(qweight) != 2 or len(scales) != 2:
        return ["qweight or scales is not 2-D"]
    implied = gptq_bits(shapes, path, method)
    problems = []
    if implied is None:
        problems.append("qzeros/scales shapes imply no whole bit width")
    elif bits is not None and implied != bits:
        problems.append(f"shapes imply {implied}-bit but the config says {bits}-bit")
    width = bits or implied or 4
    in_features = qweight[0] * 32 // width if method == "gptq" else qweight[0]
    out_features = scales[1]
    if method == "gptq" and qweight[1] != out_features:
        problems.append("qweight and scales disagree on the output size")
    g_idx = shapes.get(f"{path}.g_idx")
    if g_idx is not None and g_idx != (in_features,):
        problems.append(f"g_idx has {list(g_idx)} entries for {in_features} input features")
    group = scheme.group_size
    if group and group > 0 and scales[0] != math.ceil(in_features / group):
        problems.append(
            f"scales has {scales[0]} groups; {in_features} inputs in groups of {group} need "
            f"{math.ceil(in_features / group)}"
        )
    return problems


def _fp8_problems(shapes: Shapes, path: str, scheme: QuantScheme) -> list[str]:
    weight = shapes.get(f"{path}.weight")
    scale = shapes.get(f"{path}.weight_scale_inv", shapes.get(f"{path}.weight_scale"))
    if weight is None:
        return []
    if scale is None:
        return ["fp8 weight without weight_scale_inv or weight_scale"]
    if scheme.block_size and len(weight) == 2 and len(scheme.block_size) == 2:
        wanted = tuple(math.ceil(d / b) for d, b in zip(weight, scheme.block_size, strict=True))
        if tuple(scale) != wanted:
            return [
                f"block scales are {list(scale)}, blocks of {list(scheme.block_size)} over "
                f"{list(weight)} need {list(wanted)}"
            ]
    return []


def _packed_problems(shapes: Shapes, path: str, scheme: QuantScheme, bits: int | None) -> list[str]:
    packed = shapes.get(f"{path}.weight_packed")
    if packed is None:
        return []
    if bits is None:
        return ["no num_bits in config_groups for this module; 4-bit assumed"]
    scale = shapes.get(f"{path}.weight_scale")
    group = group_for(path, scheme)
    if scale is None or group is None or not group.group_size or len(scale) != 2:
        return []
    in_features = scale[1] * group.group_size
    wanted = math.ceil(in_features * bits / 32)
    if len(packed) == 2 and packed[1] not in (wanted, math.ceil((in_features - 1) * bits / 32)):
        return [
            f"weight_packed has {packed[1]} columns; {in_features} {bits}-bit inputs need {wanted}"
        ]
    return []


def _mxfp4_problems(shapes: Shapes, path: str) -> list[str]:
    problems = []
    for name, shape in shapes.items():
        if not (name.startswith(path + ".") and name.endswith("_blocks")):
            continue
        scales = shapes.get(name[: -len("_blocks")] + "_scales")
        if scales is None:
            problems.append("mxfp4 blocks without their _scales")
        elif tuple(scales) != tuple(shape[:-1]):
            problems.append(f"_scales {list(scales)} do not match _blocks {list(shape)}")
    return problems


def _bnb_problems(shapes: Shapes, path: str, scheme: QuantScheme) -> list[str]:
    if f"{path}.weight.absmax" in shapes:
        has_state = any(n.startswith(f"{path}.weight.quant_state.") for n in shapes)
        return [] if has_state else ["4-bit weight without its quant_state"]
    if f"{path}.SCB" in shapes:
        return []
    return []
