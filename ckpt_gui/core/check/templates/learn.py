"""Learn a ``Template`` (expected_template.py) from real meta-device builds.

For one architecture and one config (the *base*), every config field is varied on its
own and the model rebuilt (a meta build takes milliseconds):

- a field whose variations leave the description unchanged is free ("any");
- an integer field whose variations change only repeat counts and dimensions is free
  ("int"); each count and dimension it touches is fitted as ``c0 + c * Π field^e``
  from three points per field;
- any other field (it adds or removes keys, changes a dtype or a rule, or could not be
  varied) is structural: the template applies only to configs with the base value.

Divisions transformers floors (``hidden_size // num_attention_heads``) become
conditions: values just off each multiple are built, and where the formulas then
disagree the template requires the multiple. The template is then checked against
builds at random combinations of the varied values; one disagreement and no template
is made. Imports torch and transformers.
The shipped templates are made by ``template_ship.py``.
"""

from __future__ import annotations

import dataclasses
import json
import math
import random
from collections.abc import Mapping, Sequence
from importlib import metadata
from typing import Any

from ckpt_gui.core.check.expected import ExpectedModel, build_expected
from ckpt_gui.core.check.resolved import ResolvedConfig
from ckpt_gui.core.check.templates.shape import (
    Abstract,
    Trials,
    abstract,
    fit_slot,
    same_description,
)
from ckpt_gui.core.check.templates.template import (
    LAYER_TYPES,
    METADATA_KEYS,
    Formula,
    Template,
    is_int,
)
from ckpt_gui.core.errors import CheckpointError

# Keys that config.json files carry outside the config class's fields, with values to
# try: legacy spellings transformers converts on load.
EXTRA_KEYS: dict[str, tuple[Any, ...]] = {
    "torch_dtype": ("float16", "bfloat16"),
    "rope_scaling": (None, {"rope_type": "linear", "factor": 2.0}),
    "rope_theta": (10000.0, 500000.0),
}
# Other values to try for string fields (activation names leave shapes alone).
STRING_TRIALS = ("gelu", "relu")
# Fields whose values to try are not like their default's.
FIELD_TRIALS: dict[str, tuple[Any, ...]] = {
    "dtype": ("float16", "bfloat16", "float32"),
    # Label names matter only to classification heads, which the trials show.
    "id2label": ({"0": "LABEL_0", "1": "LABEL_1"}, {"0": "A", "1": "B", "2": "C"}),
    # Rotary settings only shape non-persistent buffers, which the trials confirm.
    "rope_parameters": (
        {"rope_theta": 10000.0, "rope_type": "default"},
        {"rope_theta": 500000.0, "rope_type": "default"},
        {"rope_theta": 10000.0, "rope_type": "linear", "factor": 2.0},
    ),
}
VALIDATION_ROUNDS = 10


class Learner:
    """Builds descriptions of one architecture for varied config values."""

    def __init__(self, architecture: str) -> None:
        import transformers

        model_class = getattr(transformers, architecture, None)
        if not isinstance(model_class, type) or not issubclass(
            model_class, transformers.PreTrainedModel
        ):
            raise CheckpointError(architecture, "not a model architecture transformers knows")
        self.architecture = architecture
        config_class: Any = model_class.config_class
        self.config_class = config_class
        self.model_type = str(config_class.model_type)
        self.defaults = _json_safe(_field_defaults(self.config_class))

    def describe(self, values: Mapping[str, Any]) -> ExpectedModel | None:
        config = ResolvedConfig(
            "template", {**values, "model_type": self.model_type}, self.architecture
        )
        try:
            return build_expected(config)
        except CheckpointError:
            return None

    def learn(self, values: Mapping[str, Any], seed: int = 0) -> Template | None:
        """A checked template for configs shaped like ``values``, or None."""
        base = {**self.defaults, **_json_safe(dict(values))}
        for key in METADATA_KEYS:
            base.pop(key, None)
        described = self.describe(base)
        reference = abstract(described) if described is not None else None
        if reference is None:
            return None
        free: dict[str, str] = {}
        trials: dict[str, list[tuple[int, tuple[int, ...]]]] = {}
        for name in [*base, *EXTRA_KEYS]:
            verdict = self._vary(name, base, reference)
            if verdict is None:
                continue
            kind, points = verdict
            free[name] = kind
            if kind == "int":
                trials[name] = points
        template = self._fit(base, free, trials, reference)
        if template is None:
            return None
        template = dataclasses.replace(template, divides=self._divisions(template, base, trials))
        if not self._validate(template, base, free, trials, seed):
            return None
        return template

    def _divisions(
        self, template: Template, base: Mapping[str, Any], trials: Mapping[str, Any]
    ) -> tuple[tuple[str, str], ...]:
        """The multiples the formulas rely on: for each varied field and each field
        dividing it at the base, values just off the multiple are tried; if
        the build then differs from the formulas, or never succeeds, the template
        keeps the pair as a condition."""
        needed: list[tuple[str, str]] = []
        integers = [name for name, value in base.items() if is_int(value)]
        # Divisors: varied fields, and fixed (structural) ones such as Phi-3's heads.
        # Fields shown not to matter cannot sit in a division that shapes anything.
        divisors = [n for n in integers if n in trials or n not in template.free]
        for a in trials:
            for b in divisors:
                if (
                    a != b
                    and base[b] > 1
                    and base[a] % base[b] == 0
                    and self._needs_multiple(template, base, a, b, integers)
                ):
                    needed.append((a, b))
        return tuple(needed)

    def _vary(
        self, name: str, base: Mapping[str, Any], reference: Abstract
    ) -> tuple[str, list[tuple[int, tuple[int, ...]]]] | None:
        """("any", []) when ``name`` does not matter, ("int", points) when it only
        scales numbers, None when it is structural."""
        present = name in base
        value = base.get(name)
        if name == "layer_types" and value is None and is_int(base.get("num_hidden_layers")):
            return self._vary_layer_types(base, reference)
        candidates = FIELD_TRIALS.get(name) or (
            EXTRA_KEYS[name] if not present else _candidates(value)
        )
        points: list[tuple[int, tuple[int, ...]]] = []
        for candidate in candidates:
            described = self.describe({**base, name: candidate})
            if described is None:
                continue  # not a valid value: try the next
            other = abstract(described)
            if other is None or other.shape != reference.shape:
                return None
            points.append((candidate, other.numbers))
            if len(points) == 2 and is_int(value):
                break  # two points besides the base fit a formula
        if not points:
            return None
        if all(numbers == reference.numbers for _, numbers in points):
            # An invalid value says nothing about the description, hence if_invalid.
            if is_int(value) and not self._unchanged(
                base, name, value + 1, reference, if_invalid=True
            ):
                return None  # matters only off the multiples tried (a floored division)
            return "any", []
        if is_int(value) and len(points) == 2:
            return "int", points
        return None

    def _needs_multiple(
        self, template: Template, base: Mapping[str, Any], a: str, b: str, others: list[str]
    ) -> bool:
        # First a step that keeps a multiple of every other field dividing it (so a
        # failure is this pair's), then small steps.
        keep = math.lcm(
            *(base[c] for c in others if c not in (a, b) and base[c] > 1 and base[a] % base[c] == 0)
        )
        for step in (keep, 1, 2, 3):
            if (base[a] + step) % base[b] == 0:
                continue
            nudged = {**base, a: base[a] + step}
            real = self.describe(nudged)
            guess = template.instantiate(nudged)
            if real is None or guess is None:
                continue  # invalid (e.g. odd), or no answer from the formulas: no evidence
            return not same_description(guess, real)
        return True  # no evidence off the multiples: keep the condition

    def _vary_layer_types(
        self, base: Mapping[str, Any], reference: Abstract
    ) -> tuple[str, list[tuple[int, tuple[int, ...]]]] | None:
        """Which attention types may be spelled out per layer without changing the
        description: all "full_attention", and also sliding windows when a mix of both
        changes nothing."""
        kinds = ["full_attention"]
        if not self._unchanged(base, "layer_types", _layer_types(base, kinds), reference):
            return None
        mixed = ["sliding_attention", "full_attention"]
        if self._unchanged(base, "layer_types", _layer_types(base, mixed), reference):
            kinds = mixed
        return LAYER_TYPES + ",".join(kinds), []

    def _unchanged(
        self,
        base: Mapping[str, Any],
        name: str,
        value: Any,
        reference: Abstract,
        if_invalid: bool = False,
    ) -> bool:
        """Whether ``name = value`` leaves the description as at the base
        (``if_invalid`` when the config does not build)."""
        described = self.describe({**base, name: value})
        if described is None:
            return if_invalid
        other = abstract(described)
        return other is not None and (other.shape, other.numbers) == (
            reference.shape,
            reference.numbers,
        )

    def _fit(
        self,
        base: Mapping[str, Any],
        free: Mapping[str, str],
        trials: Trials,
        reference: Abstract,
    ) -> Template | None:
        formulas: list[Formula] = []
        for slot, number in enumerate(reference.numbers):
            formula = fit_slot(slot, number, base, trials)
            if formula is None:
                return None
            formulas.append(formula)
        count_formulas = dict(zip(reference.count_prefixes, formulas, strict=False))
        dims = iter(formulas[len(reference.count_prefixes) :])
        described = self.describe(base)
        assert described is not None and described.plain_renamings is not None
        return Template(
            transformers=metadata.version("transformers"),
            architecture=self.architecture,
            model_type=self.model_type,
            base=dict(base),
            free=dict(free),
            counts=count_formulas,
            tensors=tuple(
                (pattern, tuple(next(dims) for _ in range(rank)), dtype)
                for pattern, rank, dtype in reference.tensors
            ),
            buffers=reference.buffers,
            tied=tuple(described.tied.items()),
            base_model_prefix=described.base_model_prefix,
            ignore_missing=described.ignore_missing,
            ignore_unexpected=described.ignore_unexpected,
            plain_renamings=described.plain_renamings,
        )

    def _validate(
        self,
        template: Template,
        base: Mapping[str, Any],
        free: Mapping[str, str],
        trials: Trials,
        seed: int,
    ) -> bool:
        """The template agrees with real builds at the base and at random mixes of the
        values tried, wherever both give an answer; at least two must."""
        rng = random.Random(seed)
        mixes: list[dict[str, Any]] = [dict(base)]
        for _ in range(VALIDATION_ROUNDS):
            mix = dict(base)
            for name, points in trials.items():
                mix[name] = rng.choice([base[name], *(v for v, _ in points)])
            for name, kind in free.items():
                if kind.startswith(LAYER_TYPES) and rng.random() < 0.5:
                    mix[name] = _layer_types(mix, kind[len(LAYER_TYPES) :].split(","))
                elif kind == "any" and rng.random() < 0.3:
                    options = (
                        FIELD_TRIALS.get(name)
                        or EXTRA_KEYS.get(name)
                        or _candidates(base.get(name))
                    )
                    if options:
                        mix[name] = rng.choice(list(options))
            mixes.append(mix)
        checked = 0
        for mix in mixes:
            real = self.describe(mix)
            guess = template.instantiate(mix)
            if real is None or guess is None:
                continue  # not a valid config, or the template steps aside: no answer
            if not same_description(guess, real):
                return False
            checked += 1
        return checked >= 2


def _layer_types(values: Mapping[str, Any], kinds: Sequence[str]) -> list[str]:
    """One of ``kinds`` per layer, in turn."""
    return [kinds[i % len(kinds)] for i in range(int(values["num_hidden_layers"]))]


def _candidates(value: Any) -> tuple[Any, ...]:
    if isinstance(value, bool):
        return (not value,)
    if isinstance(value, int):
        if value <= 0:
            return (1, 2, 3)
        halves = [value // d for d in (2, 4) if value % d == 0 and value // d > 0]
        return (value * 2, value * 4, *halves, value * 3, value + 1)
    if isinstance(value, float):
        return (value / 2, value * 0.75) if value else (0.1, 0.25)
    if value is None:
        return (0, 1)
    if isinstance(value, str):
        return tuple(s for s in STRING_TRIALS if s != value)
    return ()


def _field_defaults(config_class: Any) -> dict[str, Any]:
    """What the config class uses for fields a config.json leaves out."""
    defaults: dict[str, Any] = {}
    if dataclasses.is_dataclass(config_class):
        for item in dataclasses.fields(config_class):
            if item.default is not dataclasses.MISSING:
                defaults[item.name] = item.default
            elif item.default_factory is not dataclasses.MISSING:
                defaults[item.name] = item.default_factory()
    return defaults


def _json_safe(values: Mapping[str, Any]) -> dict[str, Any]:
    """Values as JSON keeps them; others as their repr, which no config.json equals."""
    return {k: json.loads(json.dumps(v, default=repr)) for k, v in values.items()}
