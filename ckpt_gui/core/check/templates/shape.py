"""A model description split into its shape and its numbers, and formulas fitted to them.

``abstract`` turns a description into key patterns (ModuleList indices as ``#``),
their ranks and dtypes, and the rules (tied weights, ignore lists, renamings): the
*shape*, equal for every config of one structure; and the repeat counts and
dimensions: the *numbers*, which ``fit_slot`` writes as formulas of the config.
No torch or transformers here.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Mapping
from fractions import Fraction
from typing import Any

from ckpt_gui.core.check.expected import ExpectedModel
from ckpt_gui.core.check.templates.template import REPEAT, Formula, expand

_INDEX = re.compile(r"^\d+$")
# Each varied field's trials: (value, the numbers at that value).
Trials = Mapping[str, list[tuple[int, tuple[int, ...]]]]


@dataclasses.dataclass(frozen=True)
class Abstract:
    """A description with its numbers taken out: ``shape`` is everything but the
    numbers (equal for configs of one structure), ``numbers`` the counts then dims."""

    shape: str
    numbers: tuple[int, ...]
    count_prefixes: tuple[str, ...]
    tensors: tuple[tuple[str, int, str], ...]  # pattern, rank, dtype
    buffers: tuple[str, ...]


def abstract(expected: ExpectedModel) -> Abstract | None:
    """Patterns, counts and dims of ``expected``, or None when its keys are not a
    regular repetition (then no template can describe it)."""
    if expected.plain_renamings is None or expected.warnings:
        return None
    if any(
        _INDEX.match(part) for key in expected.tied.items() for k in key for part in k.split(".")
    ):
        return None
    counts: dict[str, int] = {}
    patterns: dict[str, tuple[tuple[int, ...], str]] = {}
    for tensor in expected.tensors.values():
        pattern = _pattern(tensor.name, counts)
        seen = patterns.setdefault(pattern, (tensor.shape, tensor.dtype))
        if seen != (tensor.shape, tensor.dtype):
            return None  # repeats of one pattern differ: not a template
    buffer_patterns: dict[str, None] = {}
    for name in expected.non_persistent_buffers:
        buffer_patterns[_pattern(name, counts)] = None
    names = list(patterns)
    if [key for _, key in expand(names, counts)] != list(expected.tensors):
        return None
    if [key for _, key in expand(list(buffer_patterns), counts)] != list(
        expected.non_persistent_buffers
    ):
        return None
    prefixes = tuple(sorted(counts))
    rules = {
        "architecture": expected.architecture,
        "model_type": expected.model_type,
        "base_model_prefix": expected.base_model_prefix,
        "tied": sorted(expected.tied.items()),
        "ignore": [expected.ignore_missing, expected.ignore_unexpected],
        "renamings": [r.to_json() for r in expected.plain_renamings],
        "patterns": [(p, len(s), t) for p, (s, t) in patterns.items()],
        "buffers": list(buffer_patterns),
        "counts": prefixes,
    }
    numbers = [counts[p] for p in prefixes]
    for shape, _ in patterns.values():
        numbers.extend(shape)
    return Abstract(
        shape=json.dumps(rules, sort_keys=True),
        numbers=tuple(numbers),
        count_prefixes=prefixes,
        tensors=tuple((p, len(s), t) for p, (s, t) in patterns.items()),
        buffers=tuple(buffer_patterns),
    )


def _pattern(key: str, counts: dict[str, int]) -> str:
    """``key`` with ModuleList indices as ``#``; records each prefix's largest index."""
    parts = key.split(".")
    abstract_parts: list[str] = []
    for part in parts:
        if _INDEX.match(part) and abstract_parts:
            prefix = ".".join(abstract_parts)
            counts[prefix] = max(counts.get(prefix, 0), int(part) + 1)
            abstract_parts.append(REPEAT)
        else:
            abstract_parts.append(part)
    return ".".join(abstract_parts)


def fit_slot(
    slot: int,
    number: int,
    base: Mapping[str, Any],
    trials: Trials,
) -> Formula | None:
    """``c0 + c * Π field^e`` through the base and every single-field variation."""
    exponents: list[tuple[str, int]] = []
    slope: Fraction | None = None
    for name, points in trials.items():
        xs = [base[name], *(v for v, _ in points)]
        ys = [number, *(numbers[slot] for _, numbers in points)]
        if all(y == number for y in ys):
            continue
        for exponent in (1, -1, 2, -2):
            px = [Fraction(x) ** exponent for x in xs]
            if px[1] == px[0] or px[2] == px[0]:
                continue
            first = Fraction(ys[1] - ys[0]) / (px[1] - px[0])
            if first == Fraction(ys[2] - ys[0]) / (px[2] - px[0]):
                exponents.append((name, exponent))
                if slope is None:
                    slope = first  # c times the other fields' part, at the base
                break
        else:
            return None  # not a monomial in this field
    if slope is None:
        return Formula.constant(number)
    product = Fraction(1)
    for name, exponent in exponents:
        product *= Fraction(base[name]) ** exponent
    first_name, first_exponent = exponents[0]
    c = slope * Fraction(base[first_name]) ** first_exponent / product
    return Formula(Fraction(number) - c * product, c, tuple(sorted(exponents)))


def same_description(a: ExpectedModel | None, b: ExpectedModel | None) -> bool:
    """Equal in everything a comparison uses (order of tensors and buffers included)."""
    if a is None or b is None:
        return a is b
    return (
        list(a.tensors.items()) == list(b.tensors.items())
        and a.non_persistent_buffers == b.non_persistent_buffers
        and a.tied == b.tied
        and (a.architecture, a.model_type, a.base_model_prefix)
        == (b.architecture, b.model_type, b.base_model_prefix)
        and (a.ignore_missing, a.ignore_unexpected) == (b.ignore_missing, b.ignore_unexpected)
        and a.plain_renamings == b.plain_renamings
    )
