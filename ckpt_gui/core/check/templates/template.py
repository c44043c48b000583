"""Model descriptions as formulas of the config, so a first check needs no transformers.

Building a model on the meta device is quick; importing torch and transformers to do
it costs seconds, far more than the rest of a check. But what a model expects
follows simply from its config: ``model.layers.{0..n-1}`` with ``n =
num_hidden_layers``, ``k_proj`` rows ``= num_key_value_heads * hidden_size /
num_attention_heads``. A ``Template`` keeps one architecture's description with
every repeat count and every shape dimension written as ``c0 + c * Π field^e``,
learned from real builds and checked against more (``template_learn.py``).

A template answers only for configs inside what its learning checked: every config
field that is not *free* must equal the value the template was learned with (a
field the learning never varied, or one that changes the model's structure, such as
``tie_word_embeddings`` or an explicit ``head_dim``, is not free), every formula must
give a whole number, and the multiples the formulas rely on must hold (``divides``).
Otherwise the model is built as before.
Templates are tied to the transformers version they were learned with.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from fractions import Fraction
from functools import cache
from importlib import metadata
from pathlib import Path
from typing import Any, TypeGuard

from ckpt_gui.core.check.expected import ExpectedModel, ExpectedTensor
from ckpt_gui.core.check.renaming import PlainRenaming
from ckpt_gui.core.check.resolved import ResolvedConfig, apply_overrides

SCHEMA = 1
TEMPLATE_DIR = Path(__file__).resolve().parent
REPEAT = "#"  # stands for a ModuleList index in a key pattern
# Kinds of free fields: "int" fields may appear in formulas; "any" fields were shown to
# leave the description unchanged, whatever their value. ``layer_types`` (which
# transformers 5 spells out in config.json, one entry per layer) gets the kind
# "layers:" + the attention types shown not to matter, e.g. "layers:full_attention":
# the field may be left out or list one of those per layer.
LAYER_TYPES = "layers:"
# Config keys outside the config class that transformers only records.
METADATA_KEYS = frozenset({"_name_or_path", "transformers_version", "architectures", "model_type"})


@dataclass(frozen=True)
class Formula:
    """``c0 + c * Π values[field] ** exponent``, exact (fractions, no rounding)."""

    c0: Fraction
    c: Fraction
    exponents: tuple[tuple[str, int], ...] = ()

    def evaluate(self, values: Mapping[str, Any]) -> int | None:
        """The whole number it gives for ``values``, or None (not whole or not positive)."""
        product = Fraction(1)
        for name, exponent in self.exponents:
            value = values.get(name)
            if not is_int(value) or value <= 0:
                return None
            product *= Fraction(value) ** exponent
        result = self.c0 + self.c * product
        if result.denominator != 1 or result < 0:
            return None
        return int(result)

    def to_json(self) -> list[Any]:
        return [str(self.c0), str(self.c), [list(e) for e in self.exponents]]

    @staticmethod
    def from_json(data: Sequence[Any]) -> Formula:
        c0, c, exponents = data
        return Formula(Fraction(c0), Fraction(c), tuple((str(n), int(e)) for n, e in exponents))

    @staticmethod
    def constant(value: int) -> Formula:
        return Formula(Fraction(value), Fraction(0))


@dataclass(frozen=True)
class Template:
    """One architecture's description as formulas of its config values.

    ``base`` holds every config value the template was learned with (the config
    class defaults overlaid by the learning config); ``free`` names the fields that
    may differ and how. Key patterns use ``#`` for ModuleList indices; ``counts``
    gives, for each pattern prefix that ends before a ``#``, how many entries it has.
    The remaining fields are the description's, as in ``ExpectedModel``.
    """

    transformers: str
    architecture: str
    model_type: str
    base: Mapping[str, Any]
    free: Mapping[str, str]
    counts: Mapping[str, Formula]
    tensors: tuple[tuple[str, tuple[Formula, ...], str], ...]
    buffers: tuple[str, ...]
    tied: tuple[tuple[str, str], ...]
    base_model_prefix: str | None
    ignore_missing: tuple[str, ...]
    ignore_unexpected: tuple[str, ...]
    plain_renamings: tuple[PlainRenaming, ...]
    # (a, b): a must be a multiple of b. transformers floors divisions such as
    # hidden_size // num_attention_heads, which formulas cannot express.
    divides: tuple[tuple[str, str], ...] = ()

    def instantiate(self, values: Mapping[str, Any]) -> ExpectedModel | None:
        """The description for config ``values``, or None when they fall outside what
        this template was checked for (the model is built instead)."""
        effective = {**self.base, **values}
        if not self.accepts(effective):
            return None
        counts: dict[str, int] = {}
        for prefix, formula in self.counts.items():
            count = formula.evaluate(effective)
            if count is None:
                return None
            counts[prefix] = count
        shapes: list[tuple[int, ...]] = []
        for _, dims, _ in self.tensors:
            shape = [d.evaluate(effective) for d in dims]
            if None in shape:
                return None
            shapes.append(tuple(int(d) for d in shape if d is not None))
        tensors = {
            name: ExpectedTensor(name, shapes[number], self.tensors[number][2])
            for number, name in expand([p for p, _, _ in self.tensors], counts)
        }
        return ExpectedModel(
            architecture=self.architecture,
            model_type=self.model_type,
            base_model_prefix=self.base_model_prefix,
            tensors=tensors,
            tied=dict(self.tied),
            non_persistent_buffers=tuple(name for _, name in expand(self.buffers, counts)),
            ignore_missing=self.ignore_missing,
            ignore_unexpected=self.ignore_unexpected,
            plain_renamings=self.plain_renamings,
        )

    def accepts(self, effective: Mapping[str, Any]) -> bool:
        """Whether every field of ``effective`` is either free (of the right kind) or
        exactly the learned value."""
        for name, value in effective.items():
            if name in METADATA_KEYS:
                continue
            kind = self.free.get(name)
            if kind is None:
                if name not in self.base or not _same(value, self.base[name]):
                    return False
            elif kind.startswith(LAYER_TYPES):
                if value is not None and not _per_layer(value, effective, kind):
                    return False
            elif kind == "int" and not is_int(value):
                return False
        return all(
            is_int(effective.get(a))
            and is_int(effective.get(b))
            and effective[b] > 0
            and effective[a] % effective[b] == 0
            for a, b in self.divides
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "schema": SCHEMA,
            "transformers": self.transformers,
            "architecture": self.architecture,
            "model_type": self.model_type,
            "base": dict(self.base),
            "free": dict(self.free),
            "counts": {prefix: f.to_json() for prefix, f in self.counts.items()},
            "tensors": [[p, [d.to_json() for d in dims], t] for p, dims, t in self.tensors],
            "buffers": list(self.buffers),
            "tied": [list(pair) for pair in self.tied],
            "base_model_prefix": self.base_model_prefix,
            "ignore_missing": list(self.ignore_missing),
            "ignore_unexpected": list(self.ignore_unexpected),
            "plain_renamings": [r.to_json() for r in self.plain_renamings],
            "divides": [list(pair) for pair in self.divides],
        }

    @staticmethod
    def from_json(data: Mapping[str, Any]) -> Template:
        if data.get("schema") != SCHEMA:
            raise ValueError("other schema")
        return Template(
            transformers=str(data["transformers"]),
            architecture=str(data["architecture"]),
            model_type=str(data["model_type"]),
            base=dict(data["base"]),
            free={str(k): str(v) for k, v in data["free"].items()},
            counts={str(p): Formula.from_json(f) for p, f in data["counts"].items()},
            tensors=tuple(
                (str(p), tuple(Formula.from_json(d) for d in dims), str(t))
                for p, dims, t in data["tensors"]
            ),
            buffers=tuple(str(b) for b in data["buffers"]),
            tied=tuple((str(a), str(b)) for a, b in data["tied"]),
            base_model_prefix=data["base_model_prefix"],
            ignore_missing=tuple(data["ignore_missing"]),
            ignore_unexpected=tuple(data["ignore_unexpected"]),
            plain_renamings=tuple(PlainRenaming.from_json(r) for r in data["plain_renamings"]),
            divides=tuple((str(a), str(b)) for a, b in data["divides"]),
        )


def expand(patterns: Sequence[str], counts: Mapping[str, int]) -> Iterator[tuple[int, str]]:
    """``(pattern index, key)`` for every key of ``patterns``, in state-dict order.

    A state dict lists a module's entries depth first: all of ``layers.0`` before
    ``layers.1``. So the patterns go into a trie in the order they came, and the trie
    is walked depth first, a ``#`` node once per index.
    """
    trie: dict[str, Any] = {}
    for number, pattern in enumerate(patterns):
        node = trie
        for segment in pattern.split("."):
            node = node.setdefault(segment, {})
        node[_END] = number
    yield from _walk(trie, [], [], counts)


_END = ""  # trie key marking the end of a pattern (no key segment is empty)


def _walk(
    node: dict[str, Any], concrete: list[str], abstract: list[str], counts: Mapping[str, int]
) -> Iterator[tuple[int, str]]:
    for segment, child in node.items():
        if segment == _END:
            yield child, ".".join(concrete)
        elif segment == REPEAT:
            for index in range(counts[".".join(abstract)]):
                yield from _walk(child, [*concrete, str(index)], [*abstract, REPEAT], counts)
        else:
            yield from _walk(child, [*concrete, segment], [*abstract, segment], counts)


def template_for(
    config: ResolvedConfig, key_mapping: Mapping[str, str] | None
) -> ExpectedModel | None:
    """The description from a shipped template that answers for ``config``, else None."""
    if key_mapping or config.architecture is None or "auto_map" in config.values:
        return None
    if os.environ.get("CKPT_GUI_NO_TEMPLATES"):
        return None  # benchmarks and debugging: always build
    for template in shipped_templates().get(config.architecture, ()):
        values = dict(config.values)
        if config.model_type != template.model_type:
            # As expected.py: another model type's values are dropped for the defaults.
            if config.model_type is not None:
                return None  # that case carries a note only the build writes
            values = apply_overrides({"model_type": template.model_type}, config.overrides)
        expected = template.instantiate(values)
        if expected is not None:
            return expected
    return None


def template_size(values: Mapping[str, Any], architecture: str | None) -> tuple[int, int] | None:
    """(parameters, tensors) of the model a shipped template describes for ``values``,
    counted from its formulas without expanding a key; None when no template answers."""
    if architecture is None:
        return None
    for template in templates_for(architecture):
        effective = {**template.base, **values}
        if not template.accepts(effective):
            continue
        counts = {prefix: f.evaluate(effective) for prefix, f in template.counts.items()}
        if None in counts.values():
            continue
        parameters = tensors = 0
        for pattern, dims, _ in template.tensors:
            shape = [d.evaluate(effective) for d in dims]
            if None in shape:
                break
            repeats = 1
            parts = pattern.split(".")
            for position, part in enumerate(parts):
                if part == REPEAT:
                    repeats *= counts.get(".".join(parts[:position])) or 0
            tensors += repeats
            parameters += repeats * math.prod(d for d in shape if d is not None)
        else:
            return parameters, tensors
    return None


def templates_for(architecture: str) -> tuple[Template, ...]:
    """The shipped templates of ``architecture`` (also for size estimates, see size_guard)."""
    return tuple(shipped_templates().get(architecture, ()))


def transformers_version() -> str | None:
    """The installed transformers version: it keys the shipped templates (and the cache)."""
    try:
        return metadata.version("transformers")
    except metadata.PackageNotFoundError:
        return None


def shipped_file(version: str | None) -> Path | None:
    """The shipped templates learned with ``version``, or None when none were shipped:
    then every first check builds the model (seconds), nothing fails."""
    if version is None:
        return None
    # Next to this module, as the icons are (proven in the PyInstaller bundle).
    path = TEMPLATE_DIR / f"transformers-{version}.json"
    return path if path.is_file() else None


def shipped_templates() -> dict[str, list[Template]]:
    """Shipped templates learned with the installed transformers version, by architecture."""
    version = transformers_version()
    return _templates_of(version) if version is not None else {}


@cache
def _templates_of(version: str) -> dict[str, list[Template]]:
    path = shipped_file(version)
    if path is None:
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    found: dict[str, list[Template]] = {}
    for entry in data.get("templates", ()):
        try:
            template = Template.from_json(entry)
        except (KeyError, TypeError, ValueError):
            continue
        if template.transformers == version:
            found.setdefault(template.architecture, []).append(template)
    return found


def is_int(value: Any) -> TypeGuard[int]:
    """An int that is not a bool (JSON true is not a size)."""
    return isinstance(value, int) and not isinstance(value, bool)


def _per_layer(value: Any, values: Mapping[str, Any], kind: str) -> bool:
    """``value`` lists one of the kind's attention types for each layer."""
    allowed = kind[len(LAYER_TYPES) :].split(",")
    return (
        isinstance(value, list)
        and len(value) == values.get("num_hidden_layers")
        and all(entry in allowed for entry in value)
    )


def _same(a: Any, b: Any) -> bool:
    """JSON equality that keeps 1, 1.0 and True apart."""
    return json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)
