"""Will this checkpoint load into this architecture? The report, before loading any weight.

    report = compare(open_target("ckpt/"), resolve_config("LlamaForCausalLM"))

``compare`` builds the model on the meta device (imports transformers: seconds; run
it on a worker thread in the GUI) and reports what ``from_pretrained(...,
output_loading_info=True, ignore_mismatched_sizes=True)`` would report, plus fixes.

Behaviour chosen for training-framework prefixes: transformers does not strip DDP's
``module.`` or torch.compile's ``_orig_mod.``, so neither do we; such keys are
reported as unexpected (and the model's keys as missing), exactly as from_pretrained
would, and a suggestion to strip the prefix comes with a machine-readable rename. The
report answers "what will transformers do", the suggestion "how to fix it".
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ckpt_gui.core.check.config_source import ResolvedConfig
from ckpt_gui.core.check.expected import ExpectedModel
from ckpt_gui.core.check.expected_cache import load_expected
from ckpt_gui.core.check.key_matching import KeyMatch, match_keys
from ckpt_gui.core.check.status import KeyStatus
from ckpt_gui.core.check.suggestions import (
    SuggestedRename,
    Suggestion,
    suggest_config_override,
    suggest_renames,
)
from ckpt_gui.core.dtypes import FLOAT_DTYPES, torch_dtype_name
from ckpt_gui.core.model import Checkpoint

STATUSES = tuple(KeyStatus)  # the report order of ``counts``


@dataclass(frozen=True)
class Mismatch:
    key: str  # model key, as transformers reports it
    checkpoint_key: str
    checkpoint_shape: tuple[int, ...]
    model_shape: tuple[int, ...]

    def to_json(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "checkpoint_key": self.checkpoint_key,
            "checkpoint_shape": list(self.checkpoint_shape),
            "model_shape": list(self.model_shape),
        }


@dataclass(frozen=True)
class DtypeDifference:
    key: str  # checkpoint key
    checkpoint_dtype: str
    model_dtype: str

    def to_json(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "checkpoint_dtype": self.checkpoint_dtype,
            "model_dtype": self.model_dtype,
        }


@dataclass(frozen=True)
class MatchReport:
    """The comparison. Key lists use transformers' (model) names; ``status_by_key`` uses
    the checkpoint's names, plus one ghost entry (status "missing") per missing key at
    the name it would have in the checkpoint's naming (``ghost_keys``)."""

    checkpoint: str
    config: ResolvedConfig
    architecture: str
    missing: tuple[str, ...]
    unexpected: tuple[str, ...]
    mismatched: tuple[Mismatch, ...]
    dtype_differences: tuple[DtypeDifference, ...]
    suggestions: tuple[Suggestion, ...]
    status_by_key: Mapping[str, KeyStatus]
    ghost_keys: Mapping[str, str]  # missing model key -> where it would be in the checkpoint
    renamed: Mapping[str, str]  # checkpoint key -> model key, where they differ
    tied: Mapping[str, str]  # model key absent from the checkpoint -> tied partner loaded
    ignored_unexpected: tuple[str, ...]
    ignored_missing: tuple[str, ...]
    unexpected_sources: Mapping[str, str]  # unexpected (model-named) key -> checkpoint key
    expected_count: int
    model_dtype: str
    warnings: tuple[str, ...] = ()

    @property
    def clean(self) -> bool:
        return not (self.missing or self.unexpected or self.mismatched)

    @property
    def counts(self) -> dict[KeyStatus, int]:
        counts = dict.fromkeys(KeyStatus, 0)
        for status in self.status_by_key.values():
            counts[status] += 1
        return counts

    def renames(self) -> list[SuggestedRename]:
        """The suggested renames, in the order they must be applied."""
        return [s.rename for s in self.suggestions if s.rename is not None]

    def to_json(self) -> dict[str, Any]:
        return {
            "checkpoint": self.checkpoint,
            "config": self.config.to_json(),
            "architecture": self.architecture,
            "clean": self.clean,
            "missing": list(self.missing),
            "unexpected": list(self.unexpected),
            "mismatched": [m.to_json() for m in self.mismatched],
            "dtype_differences": [d.to_json() for d in self.dtype_differences],
            "model_dtype": self.model_dtype,
            "suggestions": [s.to_json() for s in self.suggestions],
            "tied": dict(self.tied),
            "ignored_unexpected": list(self.ignored_unexpected),
            "ignored_missing": list(self.ignored_missing),
            "renamed": dict(self.renamed),
            "unexpected_sources": dict(self.unexpected_sources),
            "ghost_keys": dict(self.ghost_keys),
            "status_by_key": {key: str(s) for key, s in self.status_by_key.items()},
            "counts": {str(status): n for status, n in self.counts.items()},
            "expected_count": self.expected_count,
            "warnings": list(self.warnings),
        }


def compare(
    checkpoint: Checkpoint,
    config: ResolvedConfig,
    key_mapping: dict[str, str] | None = None,
    expected: ExpectedModel | None = None,
    use_cache: bool = True,
) -> MatchReport:
    """Compare ``checkpoint`` with the model ``config`` describes (built on meta).

    ``key_mapping`` is from_pretrained's ``{regex: replacement}``; pass ``expected`` to
    reuse a model description across comparisons. The description comes from the
    disk cache when this config was seen before (no transformers import then).
    """
    if expected is None:
        expected = load_expected(config, key_mapping, use_cache=use_cache)
    shapes = {t.name: t.shape for t in checkpoint.tensors}
    match = match_keys(shapes, expected)
    suggestions = suggest_renames(shapes, expected, match)
    override = suggest_config_override(match, config.values)
    if override is not None:
        suggestions.append(override)
    model_dtype = declared_dtype(config)
    warnings = list(expected.warnings)
    location = checkpoint.metadata.get("state_dict_key")
    if location:
        warnings.append(
            f"weights found under '{location}' of a training checkpoint; from_pretrained "
            "expects them at the top level (export to a plain state dict first)"
        )
    ghosts = ghost_keys(match, set(shapes))
    return MatchReport(
        checkpoint=checkpoint.source,
        config=config,
        architecture=expected.architecture,
        missing=tuple(sorted(match.missing)),
        unexpected=tuple(sorted(match.unexpected)),
        mismatched=tuple(
            Mismatch(key, source, ckpt_shape, model_shape)
            for key, (source, ckpt_shape, model_shape) in sorted(match.mismatched.items())
        ),
        dtype_differences=tuple(dtype_differences(checkpoint, expected, match, model_dtype)),
        suggestions=tuple(suggestions),
        status_by_key=status_by_key(match, ghosts),
        ghost_keys=ghosts,
        renamed={ckpt: model for ckpt, model in sorted(match.sources.items()) if ckpt != model},
        tied=dict(sorted(match.tied.items())),
        ignored_unexpected=tuple(sorted(match.ignored_unexpected)),
        ignored_missing=tuple(sorted(match.ignored_missing)),
        unexpected_sources=dict(sorted(match.unexpected.items())),
        expected_count=len(expected.tensors),
        model_dtype=model_dtype,
        warnings=tuple(warnings),
    )


def status_by_key(match: KeyMatch, ghosts: Mapping[str, str]) -> dict[str, KeyStatus]:
    status: dict[str, KeyStatus] = {}
    mismatched_sources = {source for source, _, _ in match.mismatched.values()}
    for ckpt_key, model_key in match.sources.items():
        bad = model_key in match.mismatched or ckpt_key in mismatched_sources
        status[ckpt_key] = KeyStatus.MISMATCHED if bad else KeyStatus.OK
    for ckpt_key, names in match.rejected.items():
        # Ignored only when every name it would be reported under is ignored.
        ignored = all(name in match.ignored_unexpected for name in names)
        status[ckpt_key] = KeyStatus.IGNORED if ignored else KeyStatus.UNEXPECTED
    for ghost in ghosts.values():
        status.setdefault(ghost, KeyStatus.MISSING)
    return dict(sorted(status.items()))


def ghost_keys(match: KeyMatch, checkpoint_keys: set[str]) -> dict[str, str]:
    """Where each missing model key would sit in the checkpoint's naming.

    The base-model prefix is the one systematic difference between the two namings
    that transformers bridges itself (``bert.x`` in the checkpoint loads as ``x``):
    learn its direction from the keys that loaded and apply it to the missing ones.
    A ghost never takes the name of a real checkpoint key.
    """
    extra: dict[str, int] = {}  # checkpoint has this prefix, the model does not
    lacking: dict[str, int] = {}  # the model has this prefix, the checkpoint does not
    for ckpt_key, model_key in match.sources.items():
        if ckpt_key != model_key and ckpt_key.endswith("." + model_key):
            head = ckpt_key[: -len(model_key)]
            extra[head] = extra.get(head, 0) + 1
        elif ckpt_key != model_key and model_key.endswith("." + ckpt_key):
            head = model_key[: -len(ckpt_key)]
            lacking[head] = lacking.get(head, 0) + 1
    ghosts: dict[str, str] = {}
    for key in sorted(match.missing):
        ghost = key
        if extra and max(extra.values()) >= max(lacking.values(), default=0):
            ghost = max(extra, key=lambda h: extra[h]) + key
        elif lacking:
            ghost = key.removeprefix(max(lacking, key=lambda h: lacking[h]))
        if ghost in checkpoint_keys:
            ghost = key
        if ghost not in checkpoint_keys:
            ghosts[key] = ghost
    return ghosts


def declared_dtype(config: ResolvedConfig) -> str:
    """The dtype from_pretrained gives floating weights: the config's ``dtype``
    (``torch_dtype`` in older configs), else the model default, float32."""
    for name in ("dtype", "torch_dtype"):
        value = config.values.get(name)
        if isinstance(value, str) and value != "auto":
            return torch_dtype_name(value)
    return "F32"


def dtype_differences(
    checkpoint: Checkpoint, expected: ExpectedModel, match: KeyMatch, model_dtype: str
) -> list[DtypeDifference]:
    """Informational: loaded tensors whose stored dtype differs from the model's."""
    tensors = checkpoint.tensor_map
    differences = []
    for ckpt_key, model_key in sorted(match.sources.items()):
        stored = tensors[ckpt_key].dtype
        meta_dtype = expected.tensors[model_key].dtype
        wanted = (
            model_dtype if meta_dtype in FLOAT_DTYPES and stored in FLOAT_DTYPES else meta_dtype
        )
        if stored != wanted:
            differences.append(DtypeDifference(ckpt_key, stored, wanted))
    return differences
