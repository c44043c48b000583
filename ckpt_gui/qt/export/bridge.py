"""Renames handed to the export feature, as the export core applies them.

``ExportController.export_with_renames(tab, renames)`` (the ``ExportService`` the
check feature is given) turns each with ``export_rename``. ``renames`` may hold the
comparison's ``ckpt_gui.core.check.suggestions.SuggestedRename`` objects (``re.sub(pattern, replacement, key, count=1)``), the export core's ``RenameRule``
(``re.sub`` on every match), or plain ``(regex, replacement)`` pairs. Suggestion
renames are made to replace once, as the comparison measured them.
"""

from __future__ import annotations

import re
from typing import Any

from ckpt_gui.core.export import RenameRule

_GROUP_REFERENCE = re.compile(r"\\(?:g<(\d+)>|(\d{1,2}))")


def export_rename(item: Any) -> RenameRule:
    """One rename as the export core applies it (see the module doc)."""
    if isinstance(item, RenameRule):
        return item
    pattern = getattr(item, "pattern", None)
    replacement = getattr(item, "replacement", None)
    if isinstance(pattern, str) and isinstance(replacement, str):
        # Objects with an apply(key) (the comparison's suggestions) replace only the first
        # match; the export core replaces all, so anchor the rule to its first match.
        return (
            _first_match_only(pattern, replacement)
            if hasattr(item, "apply")
            else RenameRule(pattern, replacement)
        )
    first, second = item
    return RenameRule(str(first), str(second))


def _first_match_only(pattern: str, replacement: str) -> RenameRule:
    if pattern.startswith("^") and "|" not in pattern:
        return RenameRule(pattern, replacement)  # anchored: matches at most once anyway
    # '^(.*?)' eats the text before the first match; the rule's groups shift by one.
    shifted = _GROUP_REFERENCE.sub(
        lambda m: f"\\g<{int(m.group(1) or m.group(2)) + 1}>", replacement
    )
    return RenameRule(f"^(.*?)(?:{pattern})", "\\g<1>" + shifted)
