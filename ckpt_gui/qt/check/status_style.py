"""Comparison statuses in the GUI: labels, glyphs, icons and the legend.

The statuses are core's ``KeyStatus`` (the same strings the JSON report uses); their
row colours live with the tree model's (``tree_model.STATUS_COLORS``). ``ignored``
(keys the model's ignore lists or non-persistent buffers drop, which load fine) gets
a quiet grey so it is never mistaken for a problem.
"""

from __future__ import annotations

from collections.abc import Mapping

from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QColor, QFont, QIcon, QPainter, QPen, QPixmap
from PySide6.QtWidgets import QHBoxLayout, QLabel, QWidget

from ckpt_gui.core.check.status import KeyStatus
from ckpt_gui.qt.models import tree_model

PROBLEMS = frozenset(status for status in KeyStatus if status.is_problem)
LABELS: dict[KeyStatus, str] = {
    KeyStatus.MISMATCHED: "shape mismatch",
    KeyStatus.MISSING: "missing",
    KeyStatus.UNEXPECTED: "unexpected",
    KeyStatus.OK: "ok",
    KeyStatus.IGNORED: "ignored (loads fine)",
}
GLYPHS: dict[KeyStatus, str] = {
    KeyStatus.OK: "✓",
    KeyStatus.MISSING: "−",
    KeyStatus.UNEXPECTED: "+",
    KeyStatus.MISMATCHED: "≠",
    KeyStatus.IGNORED: "·",
}
IGNORED_COLOR = tree_model.STATUS_COLORS[KeyStatus.IGNORED]
GHOST_COLOR = QColor(150, 150, 150)


def install_status_colors() -> None:
    """Register the status icons with the tree model (idempotent)."""
    for status in GLYPHS:
        if status not in tree_model.STATUS_ICONS:
            tree_model.STATUS_ICONS[status] = status_icon(status)


def status_color(status: KeyStatus) -> QColor:
    return tree_model.STATUS_COLORS.get(status, IGNORED_COLOR)


def status_pixmap(status: KeyStatus, size: int = 14) -> QPixmap:
    """A filled disc in the status colour with a white glyph (readable at 14 px)."""
    pixmap = QPixmap(size, size)
    pixmap.fill(Qt.GlobalColor.transparent)
    painter = QPainter(pixmap)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    painter.setPen(Qt.PenStyle.NoPen)
    painter.setBrush(status_color(status))
    painter.drawEllipse(QPointF(size / 2, size / 2), size / 2 - 0.5, size / 2 - 0.5)
    font = QFont()
    font.setPixelSize(int(size * 0.8))
    font.setBold(True)
    painter.setFont(font)
    painter.setPen(QPen(QColor("white")))
    painter.drawText(QRectF(0, -0.5, size, size), Qt.AlignmentFlag.AlignCenter, GLYPHS[status])
    painter.end()
    return pixmap


def status_icon(status: KeyStatus) -> QIcon:
    return QIcon(status_pixmap(status))


class Legend(QWidget):
    """Icon + label + count for each status; counts update with each comparison."""

    ORDER = (
        KeyStatus.OK,
        KeyStatus.MISMATCHED,
        KeyStatus.MISSING,
        KeyStatus.UNEXPECTED,
        KeyStatus.IGNORED,
    )

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(10)
        self.labels: dict[KeyStatus, QLabel] = {}
        for status in self.ORDER:
            icon = QLabel()
            icon.setPixmap(status_pixmap(status))
            text = QLabel()
            text.setToolTip(LABELS[status])
            pair = QHBoxLayout()
            pair.setSpacing(3)
            pair.addWidget(icon)
            pair.addWidget(text)
            layout.addLayout(pair)
            self.labels[status] = text
        self.set_counts({})

    def set_counts(self, counts: Mapping[KeyStatus, int]) -> None:
        for status, label in self.labels.items():
            count = counts.get(status, 0)
            color = status_color(status).name() if status in PROBLEMS and count else "#555"
            weight = "bold" if status in PROBLEMS and count else "normal"
            label.setText(
                f"<span style='color:{color}; font-weight:{weight}'>{count:,}</span> "
                f"<span style='color:#555'>{LABELS[status]}</span>"
            )
