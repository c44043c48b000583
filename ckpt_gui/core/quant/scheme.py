"""Which quantization a checkpoint uses: from ``quantization_config`` or from its tensors.

transformers' own ``QuantizationConfig`` classes need torch (and some need their
kernels installed) just to be constructed, and listing a checkpoint must import no
torch, so the few fields that decide the layout are read from the JSON here.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

_NESTED_QUANTIFIER = re.compile(r"\)[*+?{]")
# quant_method spellings -> the layout family this room understands.
KNOWN_METHODS = {
    "gptq": "gptq",
    "awq": "awq",
    "bitsandbytes": "bitsandbytes",
    "fp8": "fp8",
    "compressed-tensors": "compressed-tensors",
    "mxfp4": "mxfp4",
}


def describe_layout(
    method: str,
    bits: int | None,
    group_size: int | None,
    block_size: tuple[int, ...] | None,
    variant: str | None = None,
) -> str:
    """``gptq 4-bit group 128``, ``fp8 8-bit block 128x128``: one line for a layout."""
    parts = [method]
    if variant:
        parts.append(variant)
    if bits:
        parts.append(f"{bits}-bit")
    if group_size:
        parts.append(f"group {group_size}")
    if block_size:
        parts.append("block " + "x".join(str(b) for b in block_size))
    return " ".join(parts)


@dataclass(frozen=True)
class GroupRule:
    """One compressed-tensors ``config_groups`` entry: which modules, at what width."""

    targets: tuple[str, ...]
    bits: int | None
    group_size: int | None
    strategy: str | None
    format: str | None
    symmetric: bool = True
    actorder: str | None = None


@dataclass(frozen=True)
class QuantScheme:
    """The facts of a quantization that decide what its tensors mean.

    ``excluded`` are transformers' ``modules_to_not_convert`` (substring matches, as
    transformers applies them); ``ignore`` compressed-tensors' exact or ``re:`` targets.
    ``from_config`` is False when the scheme was recognised from tensor names alone.
    """

    method: str
    bits: int | None = None
    group_size: int | None = None
    block_size: tuple[int, ...] | None = None
    variant: str | None = None  # nf4/fp4, int8, e4m3, gemm...
    excluded: tuple[str, ...] = ()
    ignore: tuple[str, ...] = ()
    groups: tuple[GroupRule, ...] = ()
    format: str | None = None
    double_quant: bool = False
    from_config: bool = True
    raw: Mapping[str, Any] = field(default_factory=dict)

    @property
    def known(self) -> bool:
        return self.method in KNOWN_METHODS.values()

    def describe(self) -> str:
        return describe_layout(self.method, self.bits, self.group_size, self.block_size, self.variant)

    def to_json(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "bits": self.bits,
            "group_size": self.group_size,
            "block_size": list(self.block_size) if self.block_size else None,
            "variant": self.variant,
            "excluded": list(self.excluded),
            "ignore": list(self.ignore),
            "format": self.format,
            "from_config": self.from_config,
        }


def quantization_config_of(config: Mapping[str, Any] | None) -> Mapping[str, Any] | None:
    """``quantization_config`` at the top of config.json or under ``text_config``."""
    if not isinstance(config, Mapping):
        return None
    found = config.get("quantization_config")
    if not isinstance(found, Mapping):
        text = config.get("text_config")
        found = text.get("quantization_config") if isinstance(text, Mapping) else None
    return found if isinstance(found, Mapping) else None


def scheme_from_config(config: Mapping[str, Any] | None) -> QuantScheme | None:
    """The scheme config.json declares, or None when it declares none."""
    quant = quantization_config_of(config)
    if quant is None:
        return None
    method = str(quant.get("quant_method") or "").lower()
    if not method and (quant.get("load_in_4bit") or quant.get("load_in_8bit")):
        method = "bitsandbytes"
    family = KNOWN_METHODS.get(method, method or "unknown")
    excluded = _strings(quant.get("modules_to_not_convert"))
    common: dict[str, Any] = {"excluded": excluded, "raw": dict(quant)}
    if family in ("gptq", "awq"):
        group = _int(quant.get("group_size", quant.get("q_group_size")))
        return QuantScheme(
            family,
            bits=_int(quant.get("bits", quant.get("w_bit"))) or 4,
            group_size=group,
            variant=_str(quant.get("version")) if family == "awq" else None,
            **common,
        )
    if family == "bitsandbytes":
        four = bool(quant.get("load_in_4bit"))
        return QuantScheme(
            family,
            bits=4 if four else 8,
            variant=_str(quant.get("bnb_4bit_quant_type")) or "fp4" if four else "int8",
            double_quant=bool(quant.get("bnb_4bit_use_double_quant")),
            **common,
        )
    if family == "fp8":
        block = quant.get("weight_block_size")
        block_size = (
            tuple(int(b) for b in block) if isinstance(block, list) and _int_list(block) else None
        )
        return QuantScheme(family, bits=8, block_size=block_size, variant="e4m3", **common)
    if family == "mxfp4":
        return QuantScheme(family, bits=4, group_size=32, variant="e2m1", **common)
    if family == "compressed-tensors":
        groups = tuple(_group_rule(g) for g in _mapping(quant.get("config_groups")).values())
        bits = {g.bits for g in groups if g.bits}
        sizes = {g.group_size for g in groups if g.group_size}
        return QuantScheme(
            family,
            bits=bits.pop() if len(bits) == 1 else None,
            group_size=sizes.pop() if len(sizes) == 1 else None,
            ignore=_strings(quant.get("ignore")),
            groups=groups,
            format=_str(quant.get("format")),
            **common,
        )
    return QuantScheme(family, **common)


def scheme_from_tensors(names: Iterable[str], dtypes: Mapping[str, str]) -> QuantScheme | None:
    """Recognise a layout from tensor names when config.json says nothing."""
    suffixes: set[str] = set()
    for name in names:
        suffixes.add(name.rsplit(".", 1)[-1])
    if "qweight" in suffixes and "scales" in suffixes:
        method = "gptq" if "g_idx" in suffixes else "awq"
        return QuantScheme(method, from_config=False)
    if "weight_packed" in suffixes:
        return QuantScheme("compressed-tensors", format="pack-quantized", from_config=False)
    if "absmax" in suffixes or any(s.startswith("bitsandbytes__") for s in suffixes):
        return QuantScheme("bitsandbytes", bits=4, from_config=False)
    if "SCB" in suffixes:
        return QuantScheme("bitsandbytes", bits=8, variant="int8", from_config=False)
    if "weight_scale_inv" in suffixes:
        return QuantScheme("fp8", bits=8, from_config=False)
    if any(s.endswith("_blocks") for s in suffixes) and any(
        s.endswith("_scales") for s in suffixes
    ):
        return QuantScheme("mxfp4", bits=4, group_size=32, from_config=False)
    if "weight_scale" in suffixes and any(d.startswith("F8_") for d in dtypes.values()):
        return QuantScheme("fp8", bits=8, from_config=False)
    return None


def module_is_quantized(
    module: str, scheme: QuantScheme, default_excluded: tuple[str, ...] = ()
) -> bool:
    """Whether ``module`` (a dotted path) escapes the scheme's exclusions.

    ``modules_to_not_convert`` match as transformers 5 matches them
    (``should_convert_module``): a regex from the start up to a module boundary, or
    a suffix. ``default_excluded`` is what transformers excludes when the config
    lists nothing (the output embeddings).
    """
    patterns = scheme.excluded or default_excluded
    if any(_excludes(pattern, module) for pattern in patterns if pattern):
        return False
    return not any(target_matches(target, module) for target in scheme.ignore)


def _excludes(pattern: str, module: str) -> bool:
    if module.endswith(pattern):
        return True
    if _NESTED_QUANTIFIER.search(pattern):
        # A config is untrusted input: a nested quantifier can backtrack for ever.
        return module.startswith(pattern)
    try:
        return re.match(rf"(?:{pattern})(?:(?<=\.)|(?=\.|$))", module) is not None
    except re.error:
        return False


def target_matches(target: str, module: str) -> bool:
    """compressed-tensors target syntax: an exact module name, or ``re:`` + a Python regex.

    Class-name targets (``Linear``) cannot be resolved from names and match nothing
    here; a regex that does not compile matches nothing rather than raising.
    """
    if not target.startswith("re:"):
        return target == module or module.endswith("." + target)
    if _NESTED_QUANTIFIER.search(target):
        return False  # could backtrack for ever on untrusted input
    try:
        return re.match(target[3:], module) is not None
    except re.error:
        return False


def group_for(module: str, scheme: QuantScheme) -> GroupRule | None:
    """The compressed-tensors group whose targets name ``module`` (class targets match all)."""
    named = [g for g in scheme.groups if any(target_matches(t, module) for t in g.targets)]
    if named:
        return named[0]
    return scheme.groups[0] if len(scheme.groups) == 1 else None


def _group_rule(entry: Any) -> GroupRule:
    entry = _mapping(entry)
    weights = _mapping(entry.get("weights"))
    return GroupRule(
        targets=_strings(entry.get("targets")),
        bits=_int(weights.get("num_bits")),
        group_size=_int(weights.get("group_size")),
        strategy=_str(weights.get("strategy")),
        format=_str(entry.get("format")),
        symmetric=weights.get("symmetric", True) is not False,
        actorder=_str(weights.get("actorder")),
    )


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _strings(value: Any) -> tuple[str, ...]:
    if not isinstance(value, list | tuple):
        return ()
    return tuple(v for v in value if isinstance(v, str))


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _str(value: Any) -> str | None:
    return value.lower() if isinstance(value, str) else None


def _int_list(value: Any) -> bool:
    return isinstance(value, list | tuple) and bool(value) and all(_int(v) for v in value)
