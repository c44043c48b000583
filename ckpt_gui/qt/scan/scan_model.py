"""Table model of the scan panel: the flagged tensors, added as the scan finds them."""

from __future__ import annotations

from collections.abc import Iterable
from enum import IntEnum
from typing import Any

from PySide6.QtCore import QModelIndex, Qt
from PySide6.QtGui import QBrush, QColor, QFont

from ckpt_gui.core.values.scan import TensorScan
from ckpt_gui.qt.models.table_base import RowTableModel

SortRole = Qt.ItemDataRole.UserRole + 2

# Tree statuses for flagged tensors, most severe first (a tensor gets its first problem).
PROBLEM_ORDER = ("nan", "inf", "extreme", "all_zero")
PROBLEM_LABELS = {"nan": "NaN", "inf": "Inf", "extreme": "extreme", "all_zero": "all zero"}
PROBLEM_COLORS = {
    "nan": QColor(198, 40, 40),
    "inf": QColor(173, 20, 87),
    "extreme": QColor(230, 81, 0),
    "all_zero": QColor(0, 121, 107),
}


class ScanColumn(IntEnum):
    TENSOR = 0
    PROBLEMS = 1
    DTYPE = 2
    NAN = 3
    INF = 4
    ZEROS = 5
    MIN = 6
    MAX = 7
    BEYOND = 8


SCAN_HEADERS = ("Tensor", "Problems", "DType", "NaN", "Inf", "Zeros", "Min", "Max", "Beyond")


def worst_problem(scan: TensorScan) -> str | None:
    found = scan.problems
    return next((p for p in PROBLEM_ORDER if p in found), None)


def _number(value: float | None) -> str:
    return "—" if value is None else f"{value:.4g}"


class ScanTableModel(RowTableModel):
    """Only flagged tensors are rows; ``add_results`` appends them in arrival order."""

    headers = SCAN_HEADERS

    def __init__(self, parent: Any = None) -> None:
        super().__init__(parent)
        self._rows: list[TensorScan] = []
        self._names: set[str] = set()
        self._bold = QFont()
        self._bold.setBold(True)
        self.target_label = "F16"  # shown in the Beyond column's tooltip

    def clear(self) -> None:
        self.beginResetModel()
        self._rows, self._names = [], set()
        self.endResetModel()

    def add_results(self, results: Iterable[TensorScan]) -> int:
        new = [r for r in results if r.flagged and r.name not in self._names]
        if new:
            start = len(self._rows)
            self.beginInsertRows(QModelIndex(), start, start + len(new) - 1)
            self._rows.extend(new)
            self._names.update(r.name for r in new)
            self.endInsertRows()
        return len(new)

    def scan_at(self, row: int) -> TensorScan:
        return self._rows[row]

    def flagged(self) -> list[TensorScan]:
        return list(self._rows)

    def _header_tooltip(self, section: int) -> str | None:
        if section == ScanColumn.BEYOND:
            return f"Values beyond the largest finite {self.target_label} value"
        if section in (ScanColumn.MIN, ScanColumn.MAX):
            return "Over the finite values"
        return None

    def _cell(self, scan: TensorScan, column: int, role: int) -> Any:
        if role == Qt.ItemDataRole.DisplayRole:
            return self._display(scan, column)
        if role == SortRole:
            return self._sort_value(scan, column)
        if role == Qt.ItemDataRole.ForegroundRole and column == ScanColumn.PROBLEMS:
            worst = worst_problem(scan)
            return QBrush(PROBLEM_COLORS[worst]) if worst else None
        if role == Qt.ItemDataRole.FontRole and column == ScanColumn.PROBLEMS:
            return self._bold
        if role == Qt.ItemDataRole.TextAlignmentRole and column >= ScanColumn.NAN:
            return Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter
        if role == Qt.ItemDataRole.ToolTipRole and column == ScanColumn.TENSOR:
            return scan.name
        return None

    def _display(self, scan: TensorScan, column: int) -> str:
        if column == ScanColumn.TENSOR:
            return scan.name
        if column == ScanColumn.PROBLEMS:
            return ", ".join(PROBLEM_LABELS[p] for p in scan.problems)
        if column == ScanColumn.DTYPE:
            return scan.dtype
        if column == ScanColumn.NAN:
            return f"{scan.nan:,}"
        if column == ScanColumn.INF:
            return f"{scan.inf:,}"
        if column == ScanColumn.ZEROS:
            fraction = scan.zeros_fraction
            return "—" if fraction is None else f"{fraction:.1%}"
        if column == ScanColumn.MIN:
            return _number(scan.min)
        if column == ScanColumn.MAX:
            return _number(scan.max)
        return f"{scan.beyond_target:,}"

    def _sort_value(self, scan: TensorScan, column: int) -> Any:
        if column in (ScanColumn.TENSOR, ScanColumn.DTYPE):
            return self._display(scan, column)
        if column == ScanColumn.PROBLEMS:
            worst = worst_problem(scan)
            return PROBLEM_ORDER.index(worst) if worst else len(PROBLEM_ORDER)
        values = {
            ScanColumn.NAN: scan.nan,
            ScanColumn.INF: scan.inf,
            ScanColumn.ZEROS: scan.zeros_fraction,
            ScanColumn.MIN: scan.min,
            ScanColumn.MAX: scan.max,
            ScanColumn.BEYOND: scan.beyond_target,
        }
        value = values[ScanColumn(column)]
        return float(value) if value is not None else float("-inf")
