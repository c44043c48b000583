"""Where the comparison hands a suggested fix to the export.

``request_export_with_renames(tab, renames)`` is the single entry point. Until the
export dialog is wired here, it shows the equivalent ``ckpt-gui export safetensors``
command (which applies exactly these renames, atomically) with a Copy button.
The lead replaces the body with a call into the export dialog, pre-filled with
``renames`` (core ``suggestions.Rename`` objects, to apply in order).
"""

from __future__ import annotations

import shlex
from collections.abc import Sequence
from pathlib import Path

from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QLabel,
    QPlainTextEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from ckpt_gui.core.suggestions import Rename


def rename_arguments(renames: Sequence[Rename]) -> list[str]:
    """CLI options that apply ``renames`` exactly as the comparison measured them."""
    args: list[str] = []
    for rename in renames:
        if rename.kind == "strip_prefix" and rename.old.endswith("."):
            # export's --strip-prefix is ^re.escape(P): the same rule.
            args += ["--strip-prefix", rename.old]
        else:
            # add_prefix must not double an existing prefix (the suggestion's regex
            # guards that), and part renames are regexes: pass them verbatim.
            args += ["--rename", f"{rename.pattern}={rename.replacement}"]
    return args


def export_command(target: str, renames: Sequence[Rename], out: str | None = None) -> str:
    """``ckpt-gui export safetensors TARGET OUT --strip-prefix ...`` as a shell line."""
    if out is None:
        source = Path(target)
        out = str(source.with_name(f"{source.stem or source.name}-fixed"))
    argv = ["ckpt-gui", "export", "safetensors", target, out, *rename_arguments(renames)]
    return shlex.join(argv)


def request_export_with_renames(tab: QWidget, renames: Sequence[Rename]) -> QDialog:
    """Export the tab's checkpoint with ``renames`` applied (see the module doc)."""
    target = getattr(tab, "target", "")
    checkpoint = getattr(tab, "checkpoint", None)
    if checkpoint is not None and getattr(checkpoint, "root", None) is not None:
        target = str(checkpoint.source)
    dialog = QDialog(tab)
    dialog.setWindowTitle("Export with this fix")
    layout = QVBoxLayout(dialog)
    intro = QLabel(
        "Run this command to write a renamed copy of the checkpoint as safetensors "
        "(the source is never touched; the output appears only once it is complete):"
    )
    intro.setWordWrap(True)
    layout.addWidget(intro)
    command = QPlainTextEdit(export_command(target, renames))
    command.setReadOnly(True)
    command.setMaximumHeight(80)
    layout.addWidget(command)
    buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
    copy = QPushButton("Copy")
    copy.clicked.connect(lambda: QGuiApplication.clipboard().setText(command.toPlainText()))
    buttons.addButton(copy, QDialogButtonBox.ButtonRole.ActionRole)
    buttons.rejected.connect(dialog.reject)
    layout.addWidget(buttons)
    dialog.setObjectName("export_with_renames")
    dialog.resize(620, 200)
    dialog.open()
    return dialog
