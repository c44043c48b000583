"""Table models of the diff view: one row per tensor (pair or unmatched), one per module.

Rows exist from the start (the structure diff is instant); a pair's value columns
fill in when ``apply_results`` receives its ``TensorDiff``. Sorting goes through
``SortRole``: plain floats, arranged so that a descending sort on rel L2 or
max |a-b| puts the most changed rows first (structural differences, then values
with NaN/Inf whose metrics are undefined, then the largest finite changes).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtGui import QBrush, QFont

from ckpt_gui.core.diff.values import StructureDiff, TensorDiff
from ckpt_gui.core.formatting import human_count
from ckpt_gui.qt.diff.diff_rows import (
    CHANGED,
    DIFF_HEADERS,
    EQUAL_VALUES,
    GREY,
    IDENTICAL,
    KIND_COLORS,
    KIND_LABELS,
    KIND_RANK,
    NOT_COMPARED,
    ONLY_IN_A,
    ONLY_IN_B,
    PENDING,
    SHAPE_CHANGED,
    STRUCTURAL,
    DiffColumn,
    DiffRow,
    KindRole,
    SortRole,
    format_cosine,
    format_metric,
    rows_from_structure,
)
from ckpt_gui.qt.diff.module_diff_model import MODULE_HEADERS, ModuleColumn, ModuleDiffModel
from ckpt_gui.qt.models.table_base import SortableTableModel, SourceSortProxy

# The diff view and its tests import the whole family from here.
__all__ = [
    "CHANGED",
    "DIFF_HEADERS",
    "EQUAL_VALUES",
    "IDENTICAL",
    "KIND_COLORS",
    "KIND_LABELS",
    "KIND_RANK",
    "MODULE_HEADERS",
    "NOT_COMPARED",
    "ONLY_IN_A",
    "ONLY_IN_B",
    "PENDING",
    "SHAPE_CHANGED",
    "STRUCTURAL",
    "DiffColumn",
    "DiffRow",
    "DiffTableModel",
    "KindRole",
    "ModuleColumn",
    "ModuleDiffModel",
    "SortRole",
    "SortableTableModel",
    "SourceSortProxy",
    "format_cosine",
    "format_metric",
    "rows_from_structure",
]

# Sort values of the metric columns for rows without a number.
_STRUCTURAL_SORT = math.inf
_UNDEFINED_SORT = 1e300  # changed, but NaN/Inf made the metrics undefined
_PENDING_SORT = -0.1
_IDENTICAL_SORT = -0.25


class DiffTableModel(SortableTableModel):
    """One row per tensor; ``apply_results`` fills in values as the job reports them."""

    headers = DIFF_HEADERS

    def __init__(self, structure: StructureDiff | None = None, parent: Any = None) -> None:
        super().__init__(parent)
        self._rows: list[DiffRow] = []
        self._row_of: dict[str, int] = {}
        self._italic = QFont()
        self._italic.setItalic(True)
        self._bold = QFont()
        self._bold.setBold(True)
        if structure is not None:
            self.set_structure(structure)

    # -- public API ----------------------------------------------------------------------
    def set_structure(self, structure: StructureDiff) -> None:
        self.beginResetModel()
        self._rows = rows_from_structure(structure)
        self._rows_reordered()
        self.endResetModel()
        self.resort()

    def _rows_reordered(self) -> None:
        self._row_of = {r.key: i for i, r in enumerate(self._rows) if r.kind != ONLY_IN_B}

    def apply_results(self, results: Iterable[TensorDiff]) -> int:
        """Fill in value results (a batch from the worker); returns how many rows changed."""
        first, last, applied = len(self._rows), -1, 0
        for result in results:
            row = self._row_of.get(result.key)
            if row is None:
                continue
            entry = self._rows[row]
            entry.result = result
            entry.kind = result.status
            first, last, applied = min(first, row), max(last, row), applied + 1
        if applied:
            self.dataChanged.emit(self.index(first, 0), self.index(last, len(DIFF_HEADERS) - 1))
        return applied

    def mark_unfinished(self, label: str = NOT_COMPARED) -> None:
        """After a cancel: pending rows become ``not_compared``."""
        changed = False
        for entry in self._rows:
            if entry.kind == PENDING:
                entry.kind, changed = label, True
        if changed and self._rows:
            self.dataChanged.emit(self.index(0, 0), self.index(len(self._rows) - 1, 0))

    def row(self, row: int) -> DiffRow:
        return self._rows[row]

    def rows(self) -> list[DiffRow]:
        return list(self._rows)

    def counts(self) -> dict[str, int]:
        found: dict[str, int] = dict.fromkeys(KIND_LABELS, 0)
        for entry in self._rows:
            found[entry.kind] += 1
        return found

    # -- RowTableModel -----------------------------------------------------------------------
    def _header_tooltip(self, section: int) -> str | None:
        return _HEADER_TIPS.get(section)

    def _cell(self, entry: DiffRow, column: int, role: int) -> Any:
        if role == Qt.ItemDataRole.DisplayRole:
            return self._display(entry, column)
        if role == SortRole:
            return self._sort_value(entry, column)
        if role == KindRole:
            return entry.kind
        if role == Qt.ItemDataRole.ForegroundRole:
            if column == DiffColumn.STATUS:
                return QBrush(KIND_COLORS[entry.kind])
            if entry.kind in (IDENTICAL, EQUAL_VALUES, PENDING):
                return GREY
            return None
        if role == Qt.ItemDataRole.FontRole:
            if column == DiffColumn.STATUS and entry.kind in (CHANGED, *STRUCTURAL):
                return self._bold
            return self._italic if entry.kind == PENDING else None
        if role == Qt.ItemDataRole.TextAlignmentRole and column >= DiffColumn.PARAMETERS:
            return Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter
        if role == Qt.ItemDataRole.ToolTipRole:
            return self._tooltip(entry)
        return None

    # -- helpers -----------------------------------------------------------------------------
    def _display(self, entry: DiffRow, column: int) -> str:
        result = entry.result
        if column == DiffColumn.STATUS:
            return KIND_LABELS[entry.kind]
        if column == DiffColumn.NAME:
            return entry.key
        if column == DiffColumn.NAME_B:
            return entry.key_b if entry.key_b and entry.key_b != entry.key else ""
        if column == DiffColumn.SHAPE:
            return entry.shape
        if column == DiffColumn.DTYPE:
            return entry.dtype
        if column == DiffColumn.PARAMETERS:
            return human_count(entry.parameters)
        if result is None:
            return ""
        if column == DiffColumn.MAX_ABS:
            return format_metric(result.max_abs_diff)
        if column == DiffColumn.REL_L2:
            return format_metric(result.rel_l2)
        if column == DiffColumn.COSINE:
            return format_cosine(result.cosine)
        return ""

    def _sort_value(self, entry: DiffRow, column: int) -> Any:
        if column == DiffColumn.STATUS:
            return KIND_RANK[entry.kind]
        if column in (DiffColumn.NAME, DiffColumn.NAME_B, DiffColumn.SHAPE, DiffColumn.DTYPE):
            return self._display(entry, column)
        if column == DiffColumn.PARAMETERS:
            return float(entry.parameters)
        if entry.kind in STRUCTURAL:
            return -math.inf if column == DiffColumn.COSINE else _STRUCTURAL_SORT
        result = entry.result
        if result is None:
            return 2.0 if column == DiffColumn.COSINE else _PENDING_SORT
        if result.status == IDENTICAL:
            # Below equal-valued dtype changes and pending pairs: those are worth a look.
            return 3.0 if column == DiffColumn.COSINE else _IDENTICAL_SORT
        value = {
            DiffColumn.MAX_ABS: result.max_abs_diff,
            DiffColumn.REL_L2: result.rel_l2,
            DiffColumn.COSINE: result.cosine,
        }.get(DiffColumn(column))
        if value is None:
            if result.status == CHANGED:
                return -_UNDEFINED_SORT if column == DiffColumn.COSINE else _UNDEFINED_SORT
            return _PENDING_SORT
        return float(value)

    def _tooltip(self, entry: DiffRow) -> str:
        lines = [entry.key]
        if entry.key_b and entry.key_b != entry.key:
            lines.append(f"in B: {entry.key_b}")
        lines.append(KIND_LABELS[entry.kind])
        if entry.result is not None and entry.result.note:
            lines.append(entry.result.note)
        return "\n".join(lines)


_HEADER_TIPS: dict[int, str] = {
    DiffColumn.MAX_ABS: "Largest absolute difference between corresponding values",
    DiffColumn.REL_L2: "Relative L2 difference ‖a − b‖ / ‖a‖",
    DiffColumn.COSINE: "Cosine similarity of the flattened tensors",
    DiffColumn.NAME_B: "B's name for this tensor when a prefix rename matched it",
}
