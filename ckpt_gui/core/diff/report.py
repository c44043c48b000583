"""What a value diff found: per tensor pair, per module, and for the whole checkpoint."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ckpt_gui.core.diff.structure import StructureDiff

IDENTICAL, EQUAL_VALUES, CHANGED, NOT_COMPARED = (
    "identical",
    "equal_values",
    "changed",
    "not_compared",
)


@dataclass(frozen=True)
class TensorDiff:
    """How one tensor pair compares. Metrics are None when not defined (NaN/Inf, zero norm)."""

    key: str
    key_b: str
    dtype_a: str
    dtype_b: str
    parameters: int
    status: str  # identical (same bytes) | equal_values | changed | not_compared
    max_abs_diff: float | None
    rel_l2: float | None
    cosine: float | None
    sq_diff: float = 0.0  # ||a - b||^2 and ||a||^2, kept for module aggregates
    sq_a: float = 0.0
    note: str = ""

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "key": self.key,
            "max_abs_diff": self.max_abs_diff,
            "rel_l2": self.rel_l2,
            "cosine": self.cosine,
            "parameters": self.parameters,
            "dtype": self.dtype_a
            if self.dtype_a == self.dtype_b
            else f"{self.dtype_a}->{self.dtype_b}",
        }
        if self.key_b != self.key:
            out["key_b"] = self.key_b
        if self.note:
            out["note"] = self.note
        return out


@dataclass(frozen=True)
class ModuleDiff:
    """Aggregate over every compared tensor under a dotted prefix of A's names."""

    path: str
    tensors: int
    changed: int
    identical: int
    parameters: int
    max_abs_diff: float
    rel_l2: float | None  # sqrt(sum ||a-b||^2) / sqrt(sum ||a||^2) over the module
    # Changed pairs whose metrics are undefined (NaN/Inf values, packed dtypes):
    # counted here and in ``changed``, left out of the two figures above.
    without_metrics: int = 0

    def to_json(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "tensors": self.tensors,
            "changed": self.changed,
            "identical": self.identical,
            "parameters": self.parameters,
            "max_abs_diff": self.max_abs_diff,
            "rel_l2": self.rel_l2,
            "without_metrics": self.without_metrics,
        }


@dataclass(frozen=True)
class DiffReport:
    structure: StructureDiff
    tensors: tuple[TensorDiff, ...]  # every same-shape pair, in A's order
    modules: Mapping[str, ModuleDiff]  # "" is the whole checkpoint

    @property
    def changed(self) -> tuple[TensorDiff, ...]:
        """Changed pairs, most changed (relative L2) first; undefined metrics first of all."""
        found = [t for t in self.tensors if t.status == CHANGED]
        return tuple(sorted(found, key=lambda t: -(t.rel_l2 if t.rel_l2 is not None else math.inf)))

    @property
    def identical(self) -> tuple[TensorDiff, ...]:
        return tuple(t for t in self.tensors if t.status == IDENTICAL)

    @property
    def different(self) -> bool:
        return not self.structure.same_structure or any(
            t.status not in (IDENTICAL, EQUAL_VALUES) for t in self.tensors
        )

    def to_json(self) -> dict[str, Any]:
        out = self.structure.to_json()
        values_equal = {t.key: t.status in (IDENTICAL, EQUAL_VALUES) for t in self.tensors}
        for entry in out["dtype_changed"]:
            entry["values_equal"] = values_equal.get(entry["key"])
        out.update(
            {
                "different": self.different,
                "identical": len(self.identical),
                "changed": [t.to_json() for t in self.changed],
                "not_compared": [
                    {"key": t.key, "reason": t.note}
                    for t in self.tensors
                    if t.status == NOT_COMPARED
                ],
                "modules": [m.to_json() for m in self.modules.values()],
            }
        )
        return out


def relative_l2(sq_diff: float, sq_a: float) -> float | None:
    if sq_a > 0:
        return math.sqrt(sq_diff / sq_a)
    return 0.0 if sq_diff == 0 else None


def cosine_from_norms(sq_diff: float, sq_a: float, sq_b: float) -> float | None:
    """cos = (|a|^2 + |b|^2 - |a-b|^2) / (2|a||b|), written as 1 - (...) to keep small changes."""
    if sq_a <= 0 or sq_b <= 0:
        return 1.0 if sq_a == sq_b == 0 else None
    norm_a, norm_b = math.sqrt(sq_a), math.sqrt(sq_b)
    one_minus = (sq_diff - (norm_a - norm_b) ** 2) / (2 * norm_a * norm_b)
    return min(1.0, max(-1.0, 1.0 - one_minus))


def aggregate_modules(tensors: tuple[TensorDiff, ...]) -> dict[str, ModuleDiff]:
    """Sum per dotted prefix of each key (and "" for everything), in first-seen order."""
    sums: dict[str, list[Any]] = {}
    for t in tensors:
        parts = t.key.split(".")
        for depth in range(len(parts)):
            path = ".".join(parts[:depth])
            entry = sums.setdefault(path, [0, 0, 0, 0, 0.0, 0.0, 0.0, 0])
            entry[0] += 1
            entry[1] += t.status == CHANGED
            entry[2] += t.status == IDENTICAL
            entry[3] += t.parameters
            # Pairs without metrics (NaN values, packed dtypes) count in ``changed`` only.
            if t.max_abs_diff is None or not math.isfinite(t.sq_diff):
                entry[7] += t.status == CHANGED
                continue
            entry[4] = max(entry[4], t.max_abs_diff)
            entry[5] += t.sq_diff
            entry[6] += t.sq_a
    return {
        path: ModuleDiff(
            path,
            n,
            changed,
            identical,
            params,
            max_abs,
            relative_l2(sq_diff, sq_a),
            unknown,
        )
        for path, (n, changed, identical, params, max_abs, sq_diff, sq_a, unknown) in sums.items()
    }
