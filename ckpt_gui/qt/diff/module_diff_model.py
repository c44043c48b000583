"""Table model of the diff view's Modules tab: one row per dotted prefix."""

from __future__ import annotations

from collections.abc import Mapping
from enum import IntEnum
from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtGui import QBrush, QFont

from ckpt_gui.core.diff.values import ModuleDiff
from ckpt_gui.core.formatting import human_count
from ckpt_gui.qt.diff.diff_rows import (
    CHANGED,
    GREY,
    KIND_COLORS,
    SortRole,
    format_metric,
)
from ckpt_gui.qt.models.table_base import SortableTableModel


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

    headers = MODULE_HEADERS

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

    def _cell(self, module: ModuleDiff, column: int, role: int) -> Any:
        if role == Qt.ItemDataRole.DisplayRole:
            return self._display(module, column)
        if role == SortRole:
            return self._sort_value(module, column)
        if role == Qt.ItemDataRole.ForegroundRole:
            if column == ModuleColumn.CHANGED and module.changed:
                return QBrush(KIND_COLORS[CHANGED])
            return GREY if not module.changed else None
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
