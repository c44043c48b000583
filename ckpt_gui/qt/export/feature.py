"""Registers the export feature with the shell (see ``ckpt_gui.qt.export.controller``)."""

from __future__ import annotations

from ckpt_gui.qt.export.controller import ExportController
from ckpt_gui.qt.shell import Shell


def register(shell: Shell) -> ExportController:
    """Export menu, tab and tree entries, Jobs dock, quit guard; also the ExportService."""
    return ExportController(shell)
