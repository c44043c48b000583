"""What one feature offers another, as typed interfaces.

A feature that needs another one's help is handed an object with one of these
interfaces when ``ckpt_gui.qt.app.build_window`` registers it (the check feature
gets the export feature as its ``ExportService``). Neither imports the other, and
neither finds the other through the window.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol

from PySide6.QtWidgets import QDialog

from ckpt_gui.qt.inspect.checkpoint_tab import CheckpointTab


class ExportService(Protocol):
    """Exports of a tab's checkpoint (implemented by the export feature)."""

    def export_with_renames(self, tab: CheckpointTab, renames: Iterable[object]) -> QDialog:
        """Open the export dialog for ``tab``'s checkpoint with key renames filled in.

        ``renames`` holds the comparison's suggested renames, the export core's
        ``RenameRule`` objects or plain ``(regex, replacement)`` pairs.
        """
