"""Registers the diff and scan feature with the shell (see ``ckpt_gui.qt.diff.actions``)."""

from __future__ import annotations

from ckpt_gui.qt.diff.actions import CompareScanActions
from ckpt_gui.qt.shell import Shell


def register(shell: Shell) -> CompareScanActions:
    """Analyze menu, Compare With… / Scan entries on tabs, compare-on-drop."""
    return CompareScanActions(shell)
