"""Find key renames that make a checkpoint fit a model: prefixes and one-part renames.

Candidates come from pairing unexpected checkpoint keys with missing model keys that
share a tail (``module.model.x`` / ``model.x``: strip ``module.``) or differ in one
dotted part (``layers.0.attn.q.weight`` / ``layers.0.self_attn.q.weight``). Each
candidate is checked by re-running the whole comparison on the renamed keys; only
renames that reduce the number of problems are suggested, best first, each one
measured after the ones before it (apply them in order).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ckpt_gui.core.check.expected import ExpectedModel
from ckpt_gui.core.check.key_matching import KeyMatch, Shape, match_keys

MAX_PREFIX_PARTS = 3
MAX_ROUNDS = 3
CANDIDATES_PER_KIND = 4
# Renames between two names (not just a prefix strip/add) must load every key they
# touch, across more than one module: a shape-compatible pair alone
# (``cls.transform.dense`` vs ``pooler.dense``) is a coincidence, not a fix.
STRICT_KINDS = frozenset({"replace_prefix", "regex"})


@dataclass(frozen=True)
class SuggestedRename:
    """A machine-readable key rename: ``re.sub(pattern, replacement, key, count=1)``.

    ``kind`` is strip_prefix / add_prefix / replace_prefix / regex; ``old``/``new`` are
    the literal prefixes or dotted parts involved, for display and simple tools.
    """

    kind: str
    pattern: str
    replacement: str
    old: str = ""
    new: str = ""

    def apply(self, key: str) -> str:
        return re.sub(self.pattern, self.replacement, key, count=1)

    def to_json(self) -> dict[str, str]:
        return {
            "kind": self.kind,
            "pattern": self.pattern,
            "replacement": self.replacement,
            "old": self.old,
            "new": self.new,
        }

    @staticmethod
    def prefix(old: str, new: str) -> SuggestedRename:
        kind = "strip_prefix" if not new else "add_prefix" if not old else "replace_prefix"
        # add_prefix must not double a prefix that is already there.
        pattern = "^" + re.escape(old) if old else f"^(?!{re.escape(new)})"
        return SuggestedRename(kind, pattern, new.replace("\\", "\\\\"), old, new)

    @staticmethod
    def part(old: str, new: str) -> SuggestedRename:
        pattern = rf"(^|\.){re.escape(old)}(\.|$)"
        return SuggestedRename("regex", pattern, rf"\g<1>{new}\g<2>", old, new)


@dataclass(frozen=True)
class Suggestion:
    """A fix: a key ``rename`` for the checkpoint, or a ``config_override`` (values to
    set in the config, e.g. ``{"vocab_size": 32001}``) for shape mismatches."""

    text: str
    rename: SuggestedRename | None
    resolves: int  # problems (missing + unexpected + mismatched) fewer after this fix
    config_override: Mapping[str, Any] | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "text": self.text,
            "rename": self.rename.to_json() if self.rename else None,
            "config_override": dict(self.config_override) if self.config_override else None,
            "resolves": self.resolves,
        }


def suggest_config_override(match: KeyMatch, config_values: Mapping[str, Any]) -> Suggestion | None:
    """A config value that explains every shape mismatch, e.g. ``vocab_size`` 32000 where
    the checkpoint's embeddings have 32001 rows. Only an unambiguous field is named:
    one whose value equals the model-side size of every differing dimension, with one
    checkpoint-side size."""
    if not match.mismatched:
        return None
    differing: list[tuple[int, int]] = []  # (model size, checkpoint size) per mismatch
    for _, ckpt_shape, model_shape in match.mismatched.values():
        if len(ckpt_shape) != len(model_shape):
            return None
        pairs = {(m, c) for m, c in zip(model_shape, ckpt_shape, strict=True) if m != c}
        if len(pairs) != 1:
            return None
        differing.append(pairs.pop())
    if len(set(differing)) != 1:
        return None
    model_size, ckpt_size = differing[0]
    fields = [
        name
        for name, value in config_values.items()
        if isinstance(value, int) and not isinstance(value, bool) and value == model_size
    ]
    if len(fields) != 1:
        return None
    field = fields[0]
    count = len(match.mismatched)
    return Suggestion(
        f"set {field}={ckpt_size} in the config (it is {model_size}; explains "
        f"{count} shape mismatch{'es' if count != 1 else ''}), e.g. --set {field}={ckpt_size}",
        None,
        count,
        {field: ckpt_size},
    )


def suggest_renames(
    shapes: Mapping[str, Shape], expected: ExpectedModel, match: KeyMatch
) -> list[Suggestion]:
    suggestions: list[Suggestion] = []
    current = dict(shapes)
    for _ in range(MAX_ROUNDS):
        if not match.unexpected or not match.missing:
            break
        best: tuple[int, SuggestedRename, KeyMatch] | None = None
        for rename in _candidates(match, expected.base_model_prefix):
            renamed = {rename.apply(k): v for k, v in current.items()}
            if len(renamed) < len(current):
                continue  # the rename would merge two keys
            trial = match_keys(renamed, expected)
            if len(trial.mismatched) > len(match.mismatched):
                continue  # a rename that lands on wrong shapes is not the fix
            if rename.kind in STRICT_KINDS and not _all_touched_load(current, rename, trial):
                continue
            gain = match.problem_count - trial.problem_count
            # Equal gains: the smaller edit wins (strip ``module.`` rather than
            # ``module.bert.``, since transformers bridges ``bert.`` itself).
            if gain > 0 and (best is None or (gain, -_size(rename)) > (best[0], -_size(best[1]))):
                best = (gain, rename, trial)
        if best is None:
            break
        gain, rename, match = best
        current = {rename.apply(k): v for k, v in current.items()}
        suggestions.append(Suggestion(describe(rename, gain), rename, gain))
    return suggestions


def _all_touched_load(
    current: Mapping[str, Shape], rename: SuggestedRename, trial: KeyMatch
) -> bool:
    """Every key the rename touches loads, and they span more than one module: moving
    one module's weights onto another (``pooler.dense`` -> ``lm_head.dense``, same
    shapes) is a coincidence of shapes, not evidence of a renamed layout."""
    loaded = set(trial.sources)
    touched = [rename.apply(k) for k in current if rename.apply(k) != k]
    modules = {key.rpartition(".")[0] for key in touched}
    return len(modules) > 1 and all(key in loaded for key in touched)


def _size(rename: SuggestedRename) -> int:
    """Smaller edits first; a prefix edit beats a part rename doing the same."""
    return len(rename.old) + len(rename.new) + (1000 if rename.kind == "regex" else 0)


def describe(rename: SuggestedRename, gain: int) -> str:
    fixes = f"fixes {gain} problem{'s' if gain != 1 else ''}"
    if rename.kind == "strip_prefix":
        why = _known_prefix_reason(rename.old)
        return f"strip the prefix '{rename.old}' from checkpoint keys{why} ({fixes})"
    if rename.kind == "add_prefix":
        return f"add the prefix '{rename.new}' to checkpoint keys ({fixes})"
    if rename.kind == "replace_prefix":
        return f"rename the prefix '{rename.old}' to '{rename.new}' in checkpoint keys ({fixes})"
    return f"rename '{rename.old}' to '{rename.new}' in checkpoint keys ({fixes})"


def _known_prefix_reason(prefix: str) -> str:
    reasons = []
    if "module." in prefix:
        reasons.append("DDP/DataParallel")
    if "_orig_mod." in prefix:
        reasons.append("torch.compile")
    return f" (added by {' and '.join(reasons)})" if reasons else ""


def _candidates(match: KeyMatch, base_model_prefix: str | None) -> list[SuggestedRename]:
    """Prefix and one-part renames seen between unexpected and missing keys, most common first."""
    unexpected = list(match.unexpected.values())  # checkpoint spelling
    missing = sorted(match.missing)
    prefixes: Counter[tuple[str, str]] = Counter()
    tails: dict[str, set[str]] = {}
    for key in missing:
        for head, tail in _splits(key):
            tails.setdefault(tail, set()).add(head)
    for key in unexpected:
        for head, tail in _splits(key):
            for model_head in tails.get(tail, ()):
                if head != model_head:
                    prefixes[(head, model_head)] += 1
    parts: Counter[tuple[str, str]] = Counter()
    masked: dict[tuple[int, str], set[str]] = {}
    for key in missing:
        pieces = key.split(".")
        for i, piece in enumerate(pieces):
            masked.setdefault((i, ".".join([*pieces[:i], "*", *pieces[i + 1 :]])), set()).add(piece)
    for key in unexpected:
        pieces = key.split(".")
        for i, piece in enumerate(pieces):
            mask = (i, ".".join([*pieces[:i], "*", *pieces[i + 1 :]]))
            for new in masked.get(mask, ()):
                if new != piece and not piece.isdigit() and not new.isdigit():
                    parts[(piece, new)] += 1
    renames = []
    base = base_model_prefix + "." if base_model_prefix else None
    for (old, new), _ in prefixes.most_common(CANDIDATES_PER_KIND):
        renames.append(SuggestedRename.prefix(old, new))
        if base:
            # transformers adds or strips the base-model prefix itself, so the same
            # fix may not need to touch it: offer that smaller edit too.
            if new.startswith(base):
                renames.append(SuggestedRename.prefix(old, new[len(base) :]))
            if old.endswith(base) and old != base:
                renames.append(SuggestedRename.prefix(old[: -len(base)], new))
    renames += [
        SuggestedRename.part(old, new) for (old, new), _ in parts.most_common(CANDIDATES_PER_KIND)
    ]
    return renames


def _splits(key: str) -> list[tuple[str, str]]:
    """(head, tail) pairs cutting up to MAX_PREFIX_PARTS dotted parts off the front.

    A tail keeps at least two parts: ``weight`` alone would pair any two keys.
    """
    pieces = key.split(".")
    return [
        (".".join(pieces[:n]) + "." if n else "", ".".join(pieces[n:]))
        for n in range(min(MAX_PREFIX_PARTS, len(pieces) - 2) + 1)
    ]
