"""transformers' load-time key renaming, replayed without importing transformers.

A cached model description (``expected_cache.py``) keeps each of the model's
``WeightRenaming`` rules exactly as transformers compiled them (the combined regex,
the processed source and target patterns, the scope). ``PlainRenaming.rename``
repeats ``WeightTransform.rename_source_key`` and ``rename_keys`` the module-level
``core_model_loading.rename_source_key`` (renamings in turn, then the base-model
prefix). Rules of any other kind (converters that fuse tensors, renamings with their
own logic) are not cached: those models always go through transformers itself.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

# Classes whose rename logic is WeightTransform.rename_source_key unchanged.
PLAIN_CLASSES = ("WeightRenaming", "PrefixChange")


@dataclass(frozen=True)
class PlainRenaming:
    pattern: str  # transformers' compiled_sources.pattern
    source_patterns: tuple[str, ...]
    target_patterns: tuple[str, ...]
    scope_prefix: str | None = None
    base_model_prefix: str | None = None

    @property
    def compiled(self) -> re.Pattern[str]:
        cached: re.Pattern[str] | None = self.__dict__.get("_compiled")
        if cached is None:
            cached = re.compile(self.pattern)
            object.__setattr__(self, "_compiled", cached)
        return cached

    @staticmethod
    def from_transform(transform: Any) -> PlainRenaming | None:
        """Capture a transformers rule, or None if it is not a plain renaming."""
        if type(transform).__name__ not in PLAIN_CLASSES:
            return None
        return PlainRenaming(
            pattern=transform.compiled_sources.pattern,
            source_patterns=tuple(transform.source_patterns),
            target_patterns=tuple(transform.target_patterns),
            scope_prefix=transform.scope_prefix,
            base_model_prefix=transform.base_model_prefix,
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "pattern": self.pattern,
            "source_patterns": list(self.source_patterns),
            "target_patterns": list(self.target_patterns),
            "scope_prefix": self.scope_prefix,
            "base_model_prefix": self.base_model_prefix,
        }

    @staticmethod
    def from_json(data: Mapping[str, Any]) -> PlainRenaming:
        return PlainRenaming(
            pattern=str(data["pattern"]),
            source_patterns=tuple(data["source_patterns"]),
            target_patterns=tuple(data["target_patterns"]),
            scope_prefix=data.get("scope_prefix"),
            base_model_prefix=data.get("base_model_prefix"),
        )

    def rename(self, key: str) -> tuple[str, str | None]:
        """``WeightTransform.rename_source_key``: (renamed key, matching source pattern)."""
        prefix: str | None = None
        key_to_match = key
        if self.scope_prefix is not None:
            scope = f"{self.scope_prefix}." if self.scope_prefix != "" else ""
            base = f"{self.base_model_prefix}." if self.base_model_prefix != "" else ""
            if key.startswith(base + scope):
                prefix = base + scope
            elif key.startswith(scope):
                prefix = scope
            else:
                return key, None
            key_to_match = key.removeprefix(prefix)
        match = self.compiled.search(key_to_match)
        if match is None:
            return key, None
        group = next(name for name, value in match.groupdict().items() if value is not None)
        source_pattern = self.source_patterns[int(group[1:])]
        replacement = self.target_patterns[0]
        if r"\1" in replacement:
            replacement = replacement.replace(
                r"\1", match.group(self.compiled.groupindex[group] + 1)
            )
        renamed = key_to_match.replace(match.group(0), replacement, 1)
        if prefix is not None:
            renamed = prefix + renamed
        return renamed, source_pattern


def rename_keys(
    key: str,
    renamings: Sequence[PlainRenaming],
    base_model_prefix: str | None,
    meta: Mapping[str, Any],
) -> str:
    """``core_model_loading.rename_source_key`` for renamings only (no converters)."""
    renamed = key
    for renaming in renamings:
        renamed, _ = renaming.rename(renamed)
    if base_model_prefix is not None:
        # Same (unescaped) regexes as transformers, on purpose.
        stripped = re.sub(f"^{base_model_prefix}.", "", renamed, count=1)
        if renamed.startswith(base_model_prefix) and meta.get(stripped) is not None:
            renamed = stripped
        elif meta.get(f"{base_model_prefix}.{renamed}") is not None:
            renamed = f"{base_model_prefix}.{renamed}"
    return renamed
