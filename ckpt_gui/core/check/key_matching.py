"""The key-level comparison, step for step as transformers' ``from_pretrained`` does it.

transformers 5 (``core_model_loading.convert_and_load_state_dict_in_model`` and
``PreTrainedModel._finalize_model_loading``) loads a checkpoint like this:

1. rename each checkpoint key with the model's conversion rules (legacy
   ``LayerNorm.gamma/beta``, ``weight_g/v``, per-model renames, the user's
   ``key_mapping``), then add or strip ``base_model_prefix`` when that makes the key
   one the model has;
2. keys the model has are loaded (shape differences become "mismatched"), the rest
   are "unexpected" under their renamed name;
3. model keys nobody loaded are "missing", except tied weights whose partner was
   loaded (tying is symmetric when loading);
4. the model's ``_keys_to_ignore_on_load_missing/unexpected`` patterns (plus
   ``rotary_emb.inv_freq`` and ``position_ids`` for models with such buffers) are
   dropped from the lists.

The renaming itself uses transformers' own rule objects and ``rename_source_key``
(or, for a cached model description, their exact replay in renaming.py), so the same
legacy renames apply; only if that API is absent does a small built-in fallback
(gamma/beta + base-model prefix) take over. Weight converters (fused MoE experts)
run their own operations on meta tensors to get the converted shapes.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ckpt_gui.core.check.expected import ExpectedModel
from ckpt_gui.core.check.renaming import rename_keys

Shape = tuple[int, ...]
Renamer = Callable[[str], tuple[str, Any]]


@dataclass
class KeyMatch:
    """Raw outcome, model key names as transformers reports them.

    ``loaded`` maps model key -> checkpoint key for every key that loaded (shape
    mismatches included); ``sources`` every loaded checkpoint key -> model key (a
    converter loads several into one); ``unexpected`` maps reported name -> checkpoint
    key and ``rejected`` every unloaded checkpoint key -> the names it is reported as.
    """

    loaded: dict[str, str] = field(default_factory=dict)
    sources: dict[str, str] = field(default_factory=dict)
    rejected: dict[str, list[str]] = field(default_factory=dict)
    converted: set[str] = field(default_factory=set)
    unexpected: dict[str, str] = field(default_factory=dict)
    ignored_unexpected: dict[str, str] = field(default_factory=dict)
    mismatched: dict[str, tuple[str, Shape, Shape]] = field(default_factory=dict)
    missing: set[str] = field(default_factory=set)
    ignored_missing: set[str] = field(default_factory=set)
    tied: dict[str, str] = field(default_factory=dict)  # absent target -> loaded partner

    @property
    def problem_count(self) -> int:
        return len(self.unexpected) + len(self.missing) + len(self.mismatched)


def match_keys(shapes: Mapping[str, Shape], expected: ExpectedModel) -> KeyMatch:
    """Compare checkpoint ``{key: shape}`` with the model, as from_pretrained would."""
    result = KeyMatch()
    rename = make_renamer(expected)
    converters = _converters_by_pattern(expected)
    groups: dict[str, list[tuple[str, str, Shape]]] = {}  # first target -> its sources
    for original in sorted(shapes, key=dot_natural_key):
        renamed, pattern = rename(original)
        if renamed in expected.tensors:
            result.sources[original] = renamed
            if pattern is not None:
                groups.setdefault(renamed, []).append((original, pattern, tuple(shapes[original])))
                continue
            result.loaded.setdefault(renamed, original)
            model_shape = expected.tensors[renamed].shape
            if tuple(shapes[original]) != model_shape:
                result.mismatched[renamed] = (original, tuple(shapes[original]), model_shape)
        elif pattern is not None:
            # As transformers: one unexpected key per target the converter would make.
            targets = list(converters[pattern].target_patterns) if pattern in converters else []
            names = [renamed.replace(targets[0], t) for t in targets] if targets else [renamed]
            for name in names:
                result.unexpected.setdefault(name, original)
            result.rejected[original] = names
        else:
            result.unexpected.setdefault(renamed, original)
            result.rejected[original] = [renamed]
    for first_target, sources in groups.items():
        converter = converters[sources[0][1]]
        for target, shape in convert_shapes(converter, first_target, sources, expected).items():
            source = sources[0][0]
            if target not in expected.tensors:
                result.unexpected.setdefault(target, source)
                result.rejected.setdefault(source, []).append(target)
                continue
            result.loaded.setdefault(target, source)
            result.converted.add(target)
            model_shape = expected.tensors[target].shape
            if shape is not None and shape != model_shape:
                result.mismatched[target] = (source, shape, model_shape)
    missing = set(expected.tensors) - set(result.loaded)
    _apply_tying(missing, expected.tied, result.tied)
    _apply_ignore_lists(result, missing, expected)
    return result


def _apply_tying(missing: set[str], tied: Mapping[str, str], provided: dict[str, str]) -> None:
    """``PreTrainedModel.tie_weights(missing_keys=...)`` on a set of missing keys."""
    pairs = list(tied.items())
    for index, (target, source) in enumerate(pairs):
        source_there = source not in missing
        target_there = target not in missing
        if source_there and target_there:
            continue
        if target_there:  # only the target was saved: tie the other way round
            target, source = source, target
        elif not source_there:  # both absent: another key tied to the same source may be present
            for other_target, other_source in pairs[index + 1 :]:
                if other_source == source and other_target not in missing:
                    source = other_target
                    break
            else:
                continue  # transformers warns and leaves it missing
        if target in missing:
            missing.discard(target)
            provided[target] = source


def _apply_ignore_lists(result: KeyMatch, missing: set[str], expected: ExpectedModel) -> None:
    ignore_missing = _alternation(expected.ignore_missing)
    ignore_unexpected = _alternation(expected.ignore_unexpected)
    for key in missing:
        if ignore_missing is not None and ignore_missing.search(key):
            result.ignored_missing.add(key)
        else:
            result.missing.add(key)
    if ignore_unexpected is not None:
        for key in list(result.unexpected):
            if ignore_unexpected.search(key):
                result.ignored_unexpected[key] = result.unexpected.pop(key)


def _alternation(patterns: tuple[str, ...]) -> re.Pattern[str] | None:
    return re.compile("|".join(f"({p})" for p in patterns)) if patterns else None


def make_renamer(expected: ExpectedModel) -> Renamer:
    """``key -> (renamed key, converter pattern or None)`` as transformers renames on load."""
    meta = dict.fromkeys(expected.tensors, True)
    prefix = expected.base_model_prefix
    plain = expected.plain_renamings
    if plain is not None:
        # Plain renamings only: replay them without importing transformers.

        def rename_plain(key: str) -> tuple[str, Any]:
            renamed = rename_keys(key, plain, prefix, meta)
            if renamed not in meta and key in meta:
                renamed = rename_keys(key, (), prefix, meta)
            return renamed, None

        return rename_plain
    try:
        from transformers.core_model_loading import WeightConverter, rename_source_key
    except ImportError:
        return _fallback_renamer(expected)
    renamings = [c for c in expected.conversions if not isinstance(c, WeightConverter)]
    converters = [c for c in expected.conversions if isinstance(c, WeightConverter)]

    def rename(key: str) -> tuple[str, Any]:
        renamed, pattern = rename_source_key(key, renamings, converters, prefix, meta)
        if renamed not in meta and key in meta:
            # As transformers: the key should not have been renamed (only re-prefixed).
            renamed, pattern = rename_source_key(key, [], [], prefix, meta)
        return renamed, pattern

    return rename


def _fallback_renamer(expected: ExpectedModel) -> Renamer:
    prefix = expected.base_model_prefix
    legacy = (("LayerNorm.gamma", "LayerNorm.weight"), ("LayerNorm.beta", "LayerNorm.bias"))

    def rename(key: str) -> tuple[str, Any]:
        renamed = key
        for old, new in legacy:
            renamed = renamed.replace(old, new, 1)
        if renamed not in expected.tensors and key in expected.tensors:
            renamed = key
        if prefix:
            if renamed.startswith(prefix + ".") and renamed[len(prefix) + 1 :] in expected.tensors:
                renamed = renamed[len(prefix) + 1 :]
            elif f"{prefix}.{renamed}" in expected.tensors:
                renamed = f"{prefix}.{renamed}"
        return renamed, None

    return rename


def _converters_by_pattern(expected: ExpectedModel) -> dict[str, Any]:
    return {
        pattern: conversion
        for conversion in expected.conversions
        if hasattr(conversion, "operations")
        for pattern in conversion.source_patterns
    }


def convert_shapes(
    converter: Any,
    first_target: str,
    sources: list[tuple[str, str, Shape]],
    expected: ExpectedModel,
) -> dict[str, Shape | None]:
    """Target key -> shape after transformers' conversion, run on meta tensors.

    The converter's own operations (stack experts, concatenate, chunk...) run on
    empty meta tensors of the checkpoint's shapes, so the shapes compared are the
    ones transformers compares. If an operation cannot run that way, the targets are
    named from the converter's patterns and their shapes are not compared.
    """
    targets = list(converter.target_patterns)
    try:
        import copy

        import torch

        group = copy.deepcopy(converter)
        for original, pattern, shape in sources:
            group.add_tensor(
                first_target, original, pattern, lambda s=shape: torch.empty(s, device="meta")
            )
        produced = group.convert(first_target, model=None, config=expected.hf_config)
        return {
            name: tuple(int(d) for d in (value[0] if isinstance(value, list) else value).shape)
            for name, value in produced.items()
        }
    except Exception:
        names = [first_target.replace(targets[0], t) for t in targets] if targets else []
        return dict.fromkeys(names or [first_target])


def dot_natural_key(key: str) -> list[tuple[int, str] | tuple[int, str, int] | tuple[int, int]]:
    """transformers' load order: dotted parts, numbers compared as numbers."""
    parts: list[tuple[int, str] | tuple[int, str, int] | tuple[int, int]] = []
    for part in key.split("."):
        if part.isdigit():
            parts.append((0, int(part)))
        else:
            text = part.rstrip("0123456789")
            digits = part[len(text) :]
            parts.append((1, text, int(digits)) if digits else (1, text))
    return parts
