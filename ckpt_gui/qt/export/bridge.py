"""Entry point from the config comparison to the export dialog.

``request_export_with_renames(tab, renames)`` opens the export dialog for the tab's
checkpoint ("Convert to safetensors": a re-save that copies tensor bytes untouched,
any dtype change is one combo away) prefilled with the suggested key renames.

``renames`` may hold the comparison's ``ckpt_gui.core.check.suggestions.SuggestedRename`` objects
(``re.sub(pattern, replacement, key, count=1)``), the export core's ``RenameRule``
(``re.sub`` on every match), or plain ``(regex, replacement)`` pairs. Suggestion
renames are made to replace once, as the comparison measured them.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from ckpt_gui.core.export import RenameRule

if TYPE_CHECKING:
    from ckpt_gui.qt.export.export_dialog import ExportDialog
    from ckpt_gui.qt.inspect.checkpoint_tab import CheckpointTab

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


def request_export_with_renames(tab: CheckpointTab, renames: Iterable[Any]) -> ExportDialog:
    """Open the export dialog for ``tab`` with ``renames`` filled in; returns the dialog."""
    rules = [export_rename(item) for item in renames]
    window = tab.window()
    controller = getattr(window, "exports", None)
    if controller is not None:
        dialog: ExportDialog = controller.open_dialog("safetensors", tab=tab, renames=rules)
        return dialog
    # A tab outside the main window (tests, embedding): a plain dialog without a job queue.
    from ckpt_gui.qt.export.controller import tab_source
    from ckpt_gui.qt.export.export_dialog import ExportDialog

    dialog = ExportDialog("safetensors", tab_source(tab), renames=rules, parent=tab)
    dialog.show()
    return dialog
