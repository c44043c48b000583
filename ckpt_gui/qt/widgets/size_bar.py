"""Delegate that draws a proportional bar behind the Size column, so heavy parts stand out."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QModelIndex, QPersistentModelIndex, QRect
from PySide6.QtGui import QColor, QPainter
from PySide6.QtWidgets import QStyledItemDelegate, QStyleOptionViewItem

from ckpt_gui.qt.models.tree_model import FractionRole


class SizeBarDelegate(QStyledItemDelegate):
    """Paints ``FractionRole`` (0..1, share of the checkpoint's bytes) as a bar under the text."""

    def __init__(self, parent: Any = None) -> None:
        super().__init__(parent)
        self.color = QColor(66, 133, 244, 70)

    def paint(
        self,
        painter: QPainter,
        option: QStyleOptionViewItem,
        index: QModelIndex | QPersistentModelIndex,
    ) -> None:
        fraction = index.data(FractionRole)
        if isinstance(fraction, float) and fraction > 0:
            rect: QRect = option.rect.adjusted(2, 3, -2, -3)
            width = max(1, round(rect.width() * min(fraction, 1.0)))
            painter.save()
            painter.fillRect(QRect(rect.left(), rect.top(), width, rect.height()), self.color)
            painter.restore()
        super().paint(painter, option, index)
