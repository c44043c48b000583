"""A page with a message and an indeterminate progress bar, centred (loading states)."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QHBoxLayout, QLabel, QProgressBar, QVBoxLayout, QWidget


def busy_page(label: QLabel) -> tuple[QWidget, QProgressBar]:
    """A page with ``label`` and an indeterminate progress bar, centred."""
    page = QWidget()
    layout = QVBoxLayout(page)
    layout.addStretch(1)
    label.setAlignment(Qt.AlignmentFlag.AlignCenter)
    label.setWordWrap(True)
    layout.addWidget(label)
    busy = QProgressBar()
    busy.setRange(0, 0)
    busy.setFixedWidth(320)  # an indeterminate bar's own size hint is a stub
    row = QHBoxLayout()
    row.addStretch(1)
    row.addWidget(busy)
    row.addStretch(1)
    layout.addLayout(row)
    layout.addStretch(2)
    return page, busy
