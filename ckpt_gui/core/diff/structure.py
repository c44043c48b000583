"""Structure diff of two checkpoints: matching names, prefix renames, shape and dtype changes.

Header-only and instant. Names present on both sides are paired first; what
is left is matched by the prefix that was added, stripped or replaced between
A and B (``module.`` from DDP, ``model.`` from a base model, ``_orig_mod.``
from torch.compile...), found by counting which prefix pair explains the most
names rather than from a fixed list.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any

from ckpt_gui.core.model import Checkpoint, TensorInfo

# How many leading dotted components a renamed prefix may have.
MAX_PREFIX_DEPTH = 3
_MAX_RENAMES = 8


@dataclass(frozen=True)
class RenamedPrefix:
    """Names ``a_prefix + rest`` in A are ``b_prefix + rest`` in B (``count`` tensors)."""

    a_prefix: str
    b_prefix: str
    count: int

    def to_json(self) -> dict[str, Any]:
        return {"a_prefix": self.a_prefix, "b_prefix": self.b_prefix, "count": self.count}


@dataclass(frozen=True)
class TensorPair:
    """The same tensor in A and B (names differ when a rename matched them)."""

    a: TensorInfo
    b: TensorInfo

    @property
    def key(self) -> str:
        return self.a.name

    @property
    def renamed(self) -> bool:
        return self.a.name != self.b.name

    @property
    def same_shape(self) -> bool:
        return self.a.shape == self.b.shape

    @property
    def same_dtype(self) -> bool:
        return self.a.dtype == self.b.dtype


@dataclass(frozen=True)
class StructureDiff:
    a_source: str
    b_source: str
    pairs: tuple[TensorPair, ...]
    only_in_a: tuple[TensorInfo, ...]
    only_in_b: tuple[TensorInfo, ...]
    renames: tuple[RenamedPrefix, ...]

    @property
    def shape_changed(self) -> tuple[TensorPair, ...]:
        return tuple(p for p in self.pairs if not p.same_shape)

    @property
    def dtype_changed(self) -> tuple[TensorPair, ...]:
        return tuple(p for p in self.pairs if p.same_shape and not p.same_dtype)

    @property
    def same_structure(self) -> bool:
        """Same names, shapes and dtypes (values not looked at)."""
        return not (
            self.only_in_a
            or self.only_in_b
            or self.renames
            or self.shape_changed
            or self.dtype_changed
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "a": self.a_source,
            "b": self.b_source,
            "common": len(self.pairs),
            "only_in_a": [t.name for t in self.only_in_a],
            "only_in_b": [t.name for t in self.only_in_b],
            "renames": [r.to_json() for r in self.renames],
            "shape_changed": [
                {
                    "key": p.key,
                    "key_b": p.b.name,
                    "a_shape": list(p.a.shape),
                    "b_shape": list(p.b.shape),
                }
                for p in self.shape_changed
            ],
            "dtype_changed": [
                {"key": p.key, "key_b": p.b.name, "a_dtype": p.a.dtype, "b_dtype": p.b.dtype}
                for p in self.dtype_changed
            ],
        }


def diff_structure(a: Checkpoint, b: Checkpoint, detect_renames: bool = True) -> StructureDiff:
    """Pair A's tensors with B's by name, then by detected prefix renames."""
    b_map = b.tensor_map
    pairs = [TensorPair(t, b_map[t.name]) for t in a.tensors if t.name in b_map]
    only_a = [t.name for t in a.tensors if t.name not in b_map]
    a_names = a.tensor_map
    only_b = [t.name for t in b.tensors if t.name not in a_names]
    renames: list[RenamedPrefix] = []
    if detect_renames and only_a and only_b:
        renames, mapping = find_prefix_renames(only_a, only_b)
        pairs += [TensorPair(a_names[ka], b_map[kb]) for ka, kb in mapping.items()]
        only_b = [k for k in only_b if k not in set(mapping.values())]
        only_a = [k for k in only_a if k not in mapping]
    order = {t.name: i for i, t in enumerate(a.tensors)}
    pairs.sort(key=lambda p: order[p.a.name])
    return StructureDiff(
        a_source=a.source,
        b_source=b.source,
        pairs=tuple(pairs),
        only_in_a=tuple(a_names[k] for k in only_a),
        only_in_b=tuple(b_map[k] for k in only_b),
        renames=tuple(renames),
    )


def find_prefix_renames(
    only_a: list[str], only_b: list[str]
) -> tuple[list[RenamedPrefix], dict[str, str]]:
    """Greedy: the prefix pair that explains the most unmatched names, applied, repeated.

    A prefix replaced by another (``a.x`` -> ``b.x``) must explain at least two
    names, so that two unrelated leftovers are not called a rename; a prefix
    merely added or stripped (``model.norm.weight`` -> ``norm.weight``) may
    explain one.
    """
    remaining_a = set(only_a)
    remaining_b = set(only_b)
    renames: list[RenamedPrefix] = []
    mapping: dict[str, str] = {}
    for _ in range(_MAX_RENAMES):
        best = _best_prefix_pair(remaining_a, remaining_b)
        if best is None:
            break
        a_prefix, b_prefix = best
        matched = 0
        for key in sorted(remaining_a):
            if key.startswith(a_prefix):
                partner = b_prefix + key[len(a_prefix) :]
                if partner in remaining_b:
                    mapping[key] = partner
                    remaining_b.discard(partner)
                    matched += 1
        remaining_a -= mapping.keys()
        renames.append(RenamedPrefix(a_prefix, b_prefix, matched))
    return renames, mapping


def _best_prefix_pair(remaining_a: set[str], remaining_b: set[str]) -> tuple[str, str] | None:
    if not remaining_a or not remaining_b:
        return None
    b_prefixes_by_rest: dict[str, list[str]] = {}
    for key in remaining_b:
        for prefix, rest in _splits(key):
            b_prefixes_by_rest.setdefault(rest, []).append(prefix)
    counts: Counter[tuple[str, str]] = Counter()
    for key in remaining_a:
        for a_prefix, rest in _splits(key):
            for b_prefix in b_prefixes_by_rest.get(rest, ()):
                if a_prefix != b_prefix:
                    counts[(a_prefix, b_prefix)] += 1
    if not counts:
        return None
    # Most names explained; on a tie the shorter prefixes (the simpler explanation).
    (a_prefix, b_prefix), count = max(
        counts.items(), key=lambda item: (item[1], -len(item[0][0]) - len(item[0][1]), item[0])
    )
    if count < 2 and (a_prefix and b_prefix):
        return None
    return a_prefix, b_prefix


def _splits(key: str) -> list[tuple[str, str]]:
    """("", key) and each (first k dotted components + ".", rest), rest never empty."""
    parts = key.split(".")
    out = [("", key)]
    for depth in range(1, min(MAX_PREFIX_DEPTH, len(parts) - 1) + 1):
        out.append((".".join(parts[:depth]) + ".", ".".join(parts[depth:])))
    return out
