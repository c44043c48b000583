"""The mismatch panel: grouped problems in a table, and the suggested fixes.

``ProblemTableModel`` shows ``ProblemRow``s (kind, key or group, checkpoint shape,
model shape, count); selecting a row emits ``reveal_requested`` with the tree paths
of its keys. Rename suggestions get an "Export with this fix…" button that calls
``ckpt_gui.qt.export.bridge.request_export_with_renames``.
"""

from __future__ import annotations

from collections.abc import Sequence
from enum import IntEnum
from typing import Any

from PySide6.QtCore import (
    QItemSelection,
    Qt,
    Signal,
)
from PySide6.QtGui import QBrush
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QSplitter,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from ckpt_gui.core.check.status import KeyStatus
from ckpt_gui.core.check.suggestions import Suggestion
from ckpt_gui.qt.check.status_style import LABELS, status_color, status_icon
from ckpt_gui.qt.check.view_model import ComparisonResult, ProblemRow
from ckpt_gui.qt.models.table_base import RowTableModel
from ckpt_gui.qt.models.tree_model import shape_text

RowRole = Qt.ItemDataRole.UserRole + 1  # the ProblemRow


class ProblemColumn(IntEnum):
    KIND = 0
    KEY = 1
    CHECKPOINT_SHAPE = 2
    MODEL_SHAPE = 3
    COUNT = 4


PROBLEM_HEADERS = ("Problem", "Key or group", "Checkpoint", "Model", "Keys")


class ProblemTableModel(RowTableModel):
    """A flat, read-only table of ProblemRows."""

    headers = PROBLEM_HEADERS

    def __init__(self, parent: Any = None) -> None:
        super().__init__(parent)
        self._rows: list[ProblemRow] = []

    def set_rows(self, rows: Sequence[ProblemRow]) -> None:
        self.beginResetModel()
        self._rows = list(rows)
        self.endResetModel()

    def row_at(self, row: int) -> ProblemRow:
        return self._rows[row]

    def _cell(self, row: ProblemRow, column: int, role: int) -> Any:
        if role == Qt.ItemDataRole.DisplayRole:
            return self._display(row, column)
        if role == RowRole:
            return row
        if role == Qt.ItemDataRole.DecorationRole and column == ProblemColumn.KIND:
            return status_icon(row.kind)
        if role == Qt.ItemDataRole.ForegroundRole and column == ProblemColumn.KIND:
            return QBrush(status_color(row.kind))
        if role == Qt.ItemDataRole.ToolTipRole and column == ProblemColumn.KEY:
            shown = "\n".join(row.keys[:40])
            more = f"\n… and {row.count - 40} more" if row.count > 40 else ""
            return shown + more
        if role == Qt.ItemDataRole.TextAlignmentRole and column == ProblemColumn.COUNT:
            return Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter
        return None

    @staticmethod
    def _display(row: ProblemRow, column: int) -> str:
        if column == ProblemColumn.KIND:
            return LABELS[row.kind]
        if column == ProblemColumn.KEY:
            return row.pattern
        whole = row.pattern.endswith(".*")  # a module entirely missing or unexpected
        if column == ProblemColumn.CHECKPOINT_SHAPE:
            if row.checkpoint_shape is not None:
                return shape_text(row.checkpoint_shape)
            return "(whole module)" if whole and row.kind == KeyStatus.UNEXPECTED else "—"
        if column == ProblemColumn.MODEL_SHAPE:
            if row.model_shape is not None:
                return shape_text(row.model_shape)
            return "(whole module)" if whole and row.kind == KeyStatus.MISSING else "—"
        if column == ProblemColumn.COUNT:
            return f"{row.count:,}"
        return ""


class MismatchPanel(QWidget):
    """Problems table on the left, suggested fixes on the right."""

    reveal_requested = Signal(object)  # tuple of tree paths
    export_requested = Signal(object)  # list of SuggestedRename (core.check), in order
    override_requested = Signal(object)  # config values to change, e.g. {"vocab_size": 32001}

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.model = ProblemTableModel(self)
        self.table = QTableView()
        self.table.setModel(self.model)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.verticalHeader().setVisible(False)
        self.table.verticalHeader().setDefaultSectionSize(22)
        self.table.setAlternatingRowColors(True)
        self.table.setTextElideMode(Qt.TextElideMode.ElideMiddle)
        self.table.setWordWrap(False)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        header.setSectionResizeMode(ProblemColumn.KEY, QHeaderView.ResizeMode.Stretch)
        for column in ProblemColumn:
            if column != ProblemColumn.KEY:
                header.setSectionResizeMode(column, QHeaderView.ResizeMode.ResizeToContents)
        self.table.selectionModel().selectionChanged.connect(self._selection_changed)

        self.heading = QLabel()
        self.heading.setWordWrap(True)
        left = QWidget()
        left_layout = QVBoxLayout(left)
        left_layout.setContentsMargins(0, 0, 0, 0)
        left_layout.addWidget(self.heading)
        left_layout.addWidget(self.table, 1)

        self.fixes = QWidget()
        self._fixes_layout = QVBoxLayout(self.fixes)
        self._fixes_layout.setContentsMargins(6, 0, 0, 0)

        split = QSplitter(Qt.Orientation.Horizontal)
        split.addWidget(left)
        split.addWidget(self.fixes)
        split.setStretchFactor(0, 3)
        split.setStretchFactor(1, 1)
        split.setSizes([660, 240])
        self.setMinimumHeight(190)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(split)
        self.suggestions: list[Suggestion] = []
        self.export_buttons: list[QPushButton] = []
        self.override_buttons: list[QPushButton] = []
        self.set_result(None)

    def set_result(self, result: ComparisonResult | None) -> None:
        self.model.set_rows(result.problems if result else [])
        if result is None:
            self.heading.setText("No comparison yet.")
        elif not result.problems:
            self.heading.setText(
                f"<b style='color:#2e7d32'>Loads cleanly</b> into {result.report.architecture}: "
                "nothing missing, unexpected or mismatched."
            )
        else:
            keys = sum(row.count for row in result.problems)
            self.heading.setText(
                f"<b>{keys:,} problem key{'s' * (keys != 1)}</b> in {len(result.problems):,} "
                f"group{'s' * (len(result.problems) != 1)} against "
                f"<b>{result.report.architecture}</b>. Select a row to find it in the tree."
            )
        self._show_suggestions(result)

    def _show_suggestions(self, result: ComparisonResult | None) -> None:
        while self._fixes_layout.count():
            item = self._fixes_layout.takeAt(0)
            widget = item.widget() if item is not None else None
            if widget is not None:
                widget.deleteLater()
        self.suggestions = list(result.report.suggestions) if result else []
        self.export_buttons = []
        self.override_buttons = []
        title = QLabel("<b>Suggested fixes</b>")
        self._fixes_layout.addWidget(title)
        if not self.suggestions:
            none = QLabel("None." if result else "")
            none.setStyleSheet("color: #777;")
            self._fixes_layout.addWidget(none)
        renames_so_far = []
        for suggestion in self.suggestions:
            text = QLabel(f"• {suggestion.text}")
            text.setWordWrap(True)
            text.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
            self._fixes_layout.addWidget(text)
            if suggestion.rename is not None:
                # Suggestions apply in order: exporting one fix includes the ones before it.
                renames_so_far.append(suggestion.rename)
                button = QPushButton("Export with this fix…")
                renames = list(renames_so_far)
                button.clicked.connect(lambda _=False, r=renames: self.export_requested.emit(r))
                self._fixes_layout.addWidget(_right_aligned(button))
                self.export_buttons.append(button)
            elif suggestion.config_override:
                button = QPushButton("Compare with this change")
                values = dict(suggestion.config_override)
                button.clicked.connect(lambda _=False, v=values: self.override_requested.emit(v))
                self._fixes_layout.addWidget(_right_aligned(button))
                self.override_buttons.append(button)
        if result is not None and result.report.warnings:
            for warning in result.report.warnings[:3]:
                note = QLabel(f"⚠ {warning}")
                note.setWordWrap(True)
                note.setStyleSheet("color: #b26a00;")
                self._fixes_layout.addWidget(note)
        self._fixes_layout.addStretch(1)

    def _selection_changed(self, selected: QItemSelection, _deselected: QItemSelection) -> None:
        indexes = selected.indexes()
        if indexes:
            row = self.model.row_at(indexes[0].row())
            self.reveal_requested.emit(row.tree_paths)


def _right_aligned(button: QPushButton) -> QWidget:
    holder = QWidget()
    row = QHBoxLayout(holder)
    row.setContentsMargins(0, 0, 0, 0)
    row.addStretch(1)
    row.addWidget(button)
    return holder
