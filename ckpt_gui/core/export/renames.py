"""Key renames applied while exporting: prefix strip/add and regex substitutions.

The config-comparison helper suggests renames as ``(regex, replacement)`` pairs or
prefix operations; all of them become ``RenameRule`` objects applied in order to every
tensor name (``re.sub`` semantics, like ``from_pretrained(key_mapping=...)``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from ckpt_gui.core.errors import CheckpointError


@dataclass(frozen=True)
class RenameRule:
    """One rule: ``pattern`` (a regex) replaced by ``replacement`` wherever it matches."""

    pattern: str
    replacement: str

    @classmethod
    def strip_prefix(cls, prefix: str) -> RenameRule:
        return cls("^" + re.escape(_dotted(prefix)), "")

    @classmethod
    def add_prefix(cls, prefix: str) -> RenameRule:
        return cls("^", _dotted(prefix).replace("\\", "\\\\"))

    @classmethod
    def parse(cls, text: str) -> RenameRule:
        """``REGEX=REPLACEMENT`` as typed on the command line (split at the last '=')."""
        pattern, sep, replacement = text.rpartition("=")
        if not sep or not pattern:
            raise ValueError(f"not a rename: {text!r} (expected REGEX=REPLACEMENT)")
        return cls(pattern, replacement)


RenameRuleLike = RenameRule | tuple[str, str]


def _dotted(prefix: str) -> str:
    """'model' and 'model.' both mean the module prefix 'model.'."""
    return prefix if prefix.endswith(".") or not prefix else prefix + "."


def normalize(renames: Iterable[RenameRuleLike] | None) -> tuple[RenameRule, ...]:
    """Accept RenameRule objects or plain ``(regex, replacement)`` pairs; check every regex."""
    rules: list[RenameRule] = []
    for item in renames or ():
        rule = item if isinstance(item, RenameRule) else RenameRule(item[0], item[1])
        try:
            re.compile(rule.pattern)
        except re.error as exc:
            raise ValueError(f"invalid rename regex {rule.pattern!r}: {exc}") from None
        rules.append(rule)
    return tuple(rules)


def apply(name: str, rules: Sequence[RenameRule]) -> str:
    for rule in rules:
        name = re.sub(rule.pattern, rule.replacement, name, count=1 if rule.pattern == "^" else 0)
    return name


def rename_all(names: Iterable[str], rules: Sequence[RenameRule], source: str) -> dict[str, str]:
    """Map each source name to its output name; two names landing on one is an error."""
    mapping: dict[str, str] = {}
    taken: dict[str, str] = {}
    for name in names:
        new = apply(name, rules) if rules else name
        if not new:
            raise CheckpointError(source, f"rename turns '{name}' into an empty name")
        if new in taken:
            raise CheckpointError(
                source, f"renames map both '{taken[new]}' and '{name}' to '{new}'"
            )
        taken[new] = name
        mapping[name] = new
    return mapping
