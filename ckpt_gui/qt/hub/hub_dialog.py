"""File > Open from Hub: a repo id (``org/name[@rev]``) or a Hub URL, checked as you type.

The text is read by ``ckpt_gui.core.hub.ref.parse_hub_target`` (no network); the
line under the box says what it understood (repo, revision, file or folder), and OK
stays disabled until it is a Hub reference. The accepted text is opened like any
other target, so the tab shows the per-shard progress and the repo facts.
"""

from __future__ import annotations

import html

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QLabel,
    QLineEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from ckpt_gui.core.hub.ref import hub_endpoint, parse_hub_target

EXAMPLES = "meta-llama/Llama-3.2-1B, Qwen/Qwen2.5-0.5B@main or a huggingface.co URL"


def describe_hub_text(text: str) -> str | None:
    """What ``text`` names on the Hub, in words; None when it is not a Hub reference."""
    ref = parse_hub_target(text)
    if ref is None:
        return None
    what = f"repo <b>{html.escape(ref.repo_id)}</b>"
    what += f" at <b>{html.escape(ref.revision)}</b>" if ref.revision else " (default branch)"
    if ref.path_in_repo:
        what += f", only <b>{html.escape(ref.path_in_repo)}</b>"
    return what


class OpenFromHubDialog(QDialog):
    """``target()`` is the accepted text (stripped); ``exec()`` as usual or ``open()``."""

    def __init__(self, parent: QWidget | None = None, text: str = "") -> None:
        super().__init__(parent)
        self.setWindowTitle("Open from Hub")
        self.setMinimumWidth(560)
        layout = QVBoxLayout(self)
        prompt = QLabel(f"Repo id or Hub URL, e.g. {EXAMPLES}:")
        prompt.setWordWrap(True)
        layout.addWidget(prompt)
        self.edit = QLineEdit(text)
        self.edit.setPlaceholderText("org/name[@revision]  or  https://huggingface.co/org/name/…")
        self.edit.setClearButtonEnabled(True)
        layout.addWidget(self.edit)
        self.hint = QLabel()
        self.hint.setTextFormat(Qt.TextFormat.RichText)
        self.hint.setWordWrap(True)
        layout.addWidget(self.hint)
        note = QLabel(
            f"Only headers and small JSON files are read from {html.escape(hub_endpoint())}; "
            "the weights are not downloaded. Gated and private repos use your "
            "<code>hf auth login</code> or <code>HF_TOKEN</code>."
        )
        note.setWordWrap(True)
        note.setStyleSheet("color: #777;")
        layout.addWidget(note)
        self.buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Open | QDialogButtonBox.StandardButton.Cancel
        )
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)
        layout.addWidget(self.buttons)
        self.edit.textChanged.connect(self._check)
        self._check(self.edit.text())

    @property
    def open_button(self) -> QPushButton:
        return self.buttons.button(QDialogButtonBox.StandardButton.Open)

    def target(self) -> str:
        return self.edit.text().strip()

    def _check(self, text: str) -> None:
        described = describe_hub_text(text) if text.strip() else None
        if described is not None:
            self.hint.setText(f"Opens {described}.")
            self.hint.setStyleSheet("color: #2e7d32;")
        elif text.strip():
            self.hint.setText("Not a repo id (org/name) or a Hub model URL.")
            self.hint.setStyleSheet("color: #c62828;")
        else:
            self.hint.setText("")
        self.open_button.setEnabled(described is not None)

    def accept(self) -> None:
        if describe_hub_text(self.target()) is not None:
            super().accept()
