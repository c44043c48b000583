"""Registers the diff feature with the shell (see ``ckpt_gui.qt.diff.actions``)."""

from __future__ import annotations

from ckpt_gui.qt.diff.actions import DiffFeature
from ckpt_gui.qt.shell import Shell


def register(shell: Shell) -> DiffFeature:
    """Analyze > Compare With…, the same entry on tabs, compare-on-drop."""
    return DiffFeature(shell)
