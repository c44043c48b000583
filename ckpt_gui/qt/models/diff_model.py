"""Table models of the diff view: one row per tensor (pair or unmatched), one per module.

Rows exist from the start (the structure diff is instant); a pair's value columns
fill in when ``apply_results`` receives its ``TensorDiff``. Sorting goes through
``SortRole``: plain floats, arranged so that a descending sort on rel L2 or
max |a-b| puts the most changed rows first (structural differences, then values
with NaN/Inf whose metrics are undefined, then the largest finite changes).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import IntEnum
from typing import Any

from PySide6.QtCore import (
    QAbstractTableModel,
    QModelIndex,
    QPersistentModelIndex,
    QSortFilterProxyModel,
    Qt,
)
from PySide6.QtGui import QBrush, QColor, QFont

from ckpt_gui.core.diff import ModuleDiff, StructureDiff, TensorDiff
from ckpt_gui.core.formatting import human_count
from ckpt_gui.qt.models.tree_model import shape_text

AnyIndex = QModelIndex | QPersistentModelIndex
_NO_PARENT = QModelIndex()
SortRole = Qt.ItemDataRole.UserRole + 2
KindRole = Qt.ItemDataRole.UserRole + 5

# Row kinds: the core's pair statuses plus the structural ones and "pending".
ONLY_IN_A, ONLY_IN_B, SHAPE_CHANGED, PENDING = "only_in_a", "only_in_b", "shape_changed", "pending"
CHANGED, IDENTICAL, EQUAL_VALUES, NOT_COMPARED = (
    "changed",
    "identical",
    "equal_values",
    "not_compared",
)
KIND_LABELS = {
    ONLY_IN_A: "only in A",
    ONLY_IN_B: "only in B",
    SHAPE_CHANGED: "shape changed",
    PENDING: "comparing…",
    CHANGED: "changed",
    IDENTICAL: "identical",
    EQUAL_VALUES: "equal values",
    NOT_COMPARED: "not compared",
}
KIND_COLORS = {
    ONLY_IN_A: QColor(198, 40, 40),
    ONLY_IN_B: QColor(21, 101, 192),
    SHAPE_CHANGED: QColor(142, 36, 170),
    PENDING: QColor(140, 140, 140),
    CHANGED: QColor(216, 67, 21),
    IDENTICAL: QColor(46, 125, 50),
    EQUAL_VALUES: QColor(46, 125, 50),
    NOT_COMPARED: QColor(120, 120, 120),
}
# Severity for sorting the Status column (lower = more interesting).
KIND_RANK = {
    ONLY_IN_A: 0,
    ONLY_IN_B: 1,
    SHAPE_CHANGED: 2,
    CHANGED: 3,
    NOT_COMPARED: 4,
    PENDING: 5,
    EQUAL_VALUES: 6,
    IDENTICAL: 7,
}
STRUCTURAL = frozenset({ONLY_IN_A, ONLY_IN_B, SHAPE_CHANGED})
# Sort values of the metric columns for rows without a number.
_STRUCTURAL_SORT = math.inf
_UNDEFINED_SORT = 1e300  # changed, but NaN/Inf made the metrics undefined
_PENDING_SORT = -0.1
_IDENTICAL_SORT = -0.25
_GREY = QBrush(QColor(138, 138, 138))


class DiffColumn(IntEnum):
    STATUS = 0
    NAME = 1
    NAME_B = 2
    SHAPE = 3
    DTYPE = 4
    PARAMETERS = 5
    MAX_ABS = 6
    REL_L2 = 7
    COSINE = 8


DIFF_HEADERS = (
    "Status",
    "Tensor",
    "In B as",
    "Shape",
    "DType",
    "Parameters",
    "max |a−b|",
    "rel L2",
    "cosine",
)


@dataclass
class DiffRow:
    key: str  # A's name (B's for only-in-B rows)
    key_b: str  # B's name; "" when only in A
    kind: str
    shape: str
    dtype: str
    parameters: int
    result: TensorDiff | None = None


def rows_from_structure(structure: StructureDiff) -> list[DiffRow]:
    """Every tensor of A and B once: pairs (pending values), then A-only, then B-only."""
    rows: list[DiffRow] = []
    for pair in structure.pairs:
        a, b = pair.a, pair.b
        shape = (
            shape_text(a.shape)
            if pair.same_shape
            else f"{shape_text(a.shape)} → {shape_text(b.shape)}"
        )
        dtype = a.dtype if pair.same_dtype else f"{a.dtype} → {b.dtype}"
        kind = PENDING if pair.same_shape else SHAPE_CHANGED
        rows.append(DiffRow(a.name, b.name, kind, shape, dtype, a.parameters))
    for t in structure.only_in_a:
        rows.append(DiffRow(t.name, "", ONLY_IN_A, shape_text(t.shape), t.dtype, t.parameters))
    for t in structure.only_in_b:
        rows.append(DiffRow(t.name, t.name, ONLY_IN_B, shape_text(t.shape), t.dtype, t.parameters))
    return rows


def format_metric(value: float | None, digits: int = 3) -> str:
    if value is None:
        return "—"
    if value == 0:
        return "0"
    return f"{value:.{digits}g}"


def format_cosine(value: float | None) -> str:
    if value is None:
        return "—"
    if value == 1.0:
        return "1"
    # 1 - cos is what tells nearly identical tensors apart: show enough digits for it.
    return f"{value:.10f}".rstrip("0")


class SortableTableModel(QAbstractTableModel):
    """Sorts its own row list by ``_sort_value``: one Python key per row.

    A QSortFilterProxyModel sorting on a Python role calls back into Python for every
    comparison (5 s for 100,000 rows); a key sort of the list takes a fraction of that.
    Pair with ``SourceSortProxy``.
    """

    def __init__(self, parent: Any = None) -> None:
        super().__init__(parent)
        self._rows: list[Any] = []
        self.sort_column, self.sort_order = -1, Qt.SortOrder.AscendingOrder

    def _sort_value(self, entry: Any, column: int) -> Any:
        raise NotImplementedError

    def _rows_reordered(self) -> None:
        """Hook: the row list was reordered."""

    def sort(self, column: int, order: Qt.SortOrder = Qt.SortOrder.AscendingOrder) -> None:
        self.sort_column, self.sort_order = column, order
        if not 0 <= column < self.columnCount() or len(self._rows) < 2:
            return
        self.layoutAboutToBeChanged.emit()
        old = self._rows
        keys = [self._sort_value(entry, column) for entry in old]
        order_of = sorted(
            range(len(old)),
            key=keys.__getitem__,
            reverse=order == Qt.SortOrder.DescendingOrder,
        )
        new_row = [0] * len(old)
        for new, previous in enumerate(order_of):
            new_row[previous] = new
        self._rows = [old[i] for i in order_of]
        self._rows_reordered()
        persistent = self.persistentIndexList()
        self.changePersistentIndexList(
            persistent,
            [self.index(new_row[i.row()], i.column()) for i in persistent],
        )
        self.layoutChanged.emit()

    def resort(self) -> None:
        """Sort again by the last column and order (after values changed)."""
        self.sort(self.sort_column, self.sort_order)


class SourceSortProxy(QSortFilterProxyModel):
    """Filters in the proxy, but sorts by asking a ``SortableTableModel`` to sort itself."""

    def sort(self, column: int, order: Qt.SortOrder = Qt.SortOrder.AscendingOrder) -> None:
        model = self.sourceModel()
        if isinstance(model, SortableTableModel):
            model.sort(column, order)
            super().sort(-1)  # keep the source's order
        else:
            super().sort(column, order)


class DiffTableModel(SortableTableModel):
    """One row per tensor; ``apply_results`` fills in values as the job reports them."""

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

    # -- QAbstractTableModel ----------------------------------------------------------------
    def rowCount(self, parent: AnyIndex = _NO_PARENT) -> int:
        return 0 if parent.isValid() else len(self._rows)

    def columnCount(self, parent: AnyIndex = _NO_PARENT) -> int:
        return 0 if parent.isValid() else len(DIFF_HEADERS)

    def headerData(
        self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole
    ) -> Any:
        if orientation != Qt.Orientation.Horizontal or not 0 <= section < len(DIFF_HEADERS):
            return None
        if role == Qt.ItemDataRole.DisplayRole:
            return DIFF_HEADERS[section]
        if role == Qt.ItemDataRole.ToolTipRole:
            return _HEADER_TIPS.get(section)
        return None

    def flags(self, index: AnyIndex) -> Qt.ItemFlag:
        if not index.isValid():
            return Qt.ItemFlag.NoItemFlags
        return Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable

    def data(self, index: AnyIndex, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid() or not 0 <= index.row() < len(self._rows):
            return None
        entry = self._rows[index.row()]
        column = index.column()
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
                return _GREY
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


class ModuleColumn(IntEnum):
    MODULE = 0
    TENSORS = 1
    CHANGED = 2
    IDENTICAL = 3
    PARAMETERS = 4
    MAX_ABS = 5
    REL_L2 = 6


MODULE_HEADERS = ("Module", "Tensors", "Changed", "Identical", "Parameters", "max |a−b|", "rel L2")


class ModuleDiffModel(SortableTableModel):
    """Aggregates per dotted prefix (``report.modules``); "" is shown as "(whole checkpoint)"."""

    def __init__(self, parent: Any = None) -> None:
        super().__init__(parent)
        self._rows: list[ModuleDiff] = []
        self._bold = QFont()
        self._bold.setBold(True)

    def set_modules(self, modules: Mapping[str, ModuleDiff]) -> None:
        self.beginResetModel()
        self._rows = list(modules.values())
        self.endResetModel()
        self.resort()

    def module(self, row: int) -> ModuleDiff:
        return self._rows[row]

    def rowCount(self, parent: AnyIndex = _NO_PARENT) -> int:
        return 0 if parent.isValid() else len(self._rows)

    def columnCount(self, parent: AnyIndex = _NO_PARENT) -> int:
        return 0 if parent.isValid() else len(MODULE_HEADERS)

    def headerData(
        self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole
    ) -> Any:
        if (
            orientation == Qt.Orientation.Horizontal
            and 0 <= section < len(MODULE_HEADERS)
            and role == Qt.ItemDataRole.DisplayRole
        ):
            return MODULE_HEADERS[section]
        return None

    def flags(self, index: AnyIndex) -> Qt.ItemFlag:
        if not index.isValid():
            return Qt.ItemFlag.NoItemFlags
        return Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable

    def data(self, index: AnyIndex, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid() or not 0 <= index.row() < len(self._rows):
            return None
        module = self._rows[index.row()]
        column = index.column()
        if role == Qt.ItemDataRole.DisplayRole:
            return self._display(module, column)
        if role == SortRole:
            return self._sort_value(module, column)
        if role == Qt.ItemDataRole.ForegroundRole:
            if column == ModuleColumn.CHANGED and module.changed:
                return QBrush(KIND_COLORS[CHANGED])
            return _GREY if not module.changed else None
        if role == Qt.ItemDataRole.FontRole:
            return self._bold if module.path == "" else None
        if role == Qt.ItemDataRole.TextAlignmentRole and column != ModuleColumn.MODULE:
            return Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter
        if role == Qt.ItemDataRole.ToolTipRole and module.without_metrics:
            return f"{module.without_metrics} changed tensor(s) without metrics (NaN/Inf values)"
        return None

    def _display(self, module: ModuleDiff, column: int) -> str:
        if column == ModuleColumn.MODULE:
            return module.path or "(whole checkpoint)"
        if column == ModuleColumn.TENSORS:
            return f"{module.tensors:,}"
        if column == ModuleColumn.CHANGED:
            return f"{module.changed:,}"
        if column == ModuleColumn.IDENTICAL:
            return f"{module.identical:,}"
        if column == ModuleColumn.PARAMETERS:
            return human_count(module.parameters)
        if column == ModuleColumn.MAX_ABS:
            return format_metric(module.max_abs_diff)
        return format_metric(module.rel_l2)

    def _sort_value(self, module: ModuleDiff, column: int) -> Any:
        if column == ModuleColumn.MODULE:
            # The whole checkpoint stays on top when sorting by name.
            return module.path or ""
        values = {
            ModuleColumn.TENSORS: module.tensors,
            ModuleColumn.CHANGED: module.changed,
            ModuleColumn.IDENTICAL: module.identical,
            ModuleColumn.PARAMETERS: module.parameters,
            ModuleColumn.MAX_ABS: module.max_abs_diff,
            ModuleColumn.REL_L2: module.rel_l2 if module.rel_l2 is not None else -1.0,
        }
        return float(values[ModuleColumn(column)])
