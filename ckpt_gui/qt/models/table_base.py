"""Shared plumbing of the flat, read-only table models.

``RowTableModel`` keeps a list of row objects and answers rowCount, columnCount,
headerData and flags from a tuple of column titles; subclasses only say what one
cell shows for one role (``_cell``). ``SortableTableModel`` adds a key sort of that
list, paired with ``SourceSortProxy``.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import (
    QAbstractTableModel,
    QModelIndex,
    QPersistentModelIndex,
    QSortFilterProxyModel,
    Qt,
)

AnyIndex = QModelIndex | QPersistentModelIndex
_NO_PARENT = QModelIndex()


class RowTableModel(QAbstractTableModel):
    """One row per entry of ``self._rows``, one column per title in ``headers``."""

    headers: tuple[str, ...] = ()

    def __init__(self, parent: Any = None) -> None:
        super().__init__(parent)
        self._rows: list[Any] = []

    def _cell(self, entry: Any, column: int, role: int) -> Any:
        """What ``entry`` shows in ``column`` for ``role`` (None: nothing)."""
        raise NotImplementedError

    def _header_tooltip(self, section: int) -> str | None:
        """Hook: a column title's tooltip."""
        return None

    def rowCount(self, parent: AnyIndex = _NO_PARENT) -> int:
        return 0 if parent.isValid() else len(self._rows)

    def columnCount(self, parent: AnyIndex = _NO_PARENT) -> int:
        return 0 if parent.isValid() else len(self.headers)

    def headerData(
        self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole
    ) -> Any:
        if orientation != Qt.Orientation.Horizontal or not 0 <= section < len(self.headers):
            return None
        if role == Qt.ItemDataRole.DisplayRole:
            return self.headers[section]
        if role == Qt.ItemDataRole.ToolTipRole:
            return self._header_tooltip(section)
        return None

    def flags(self, index: AnyIndex) -> Qt.ItemFlag:
        if not index.isValid():
            return Qt.ItemFlag.NoItemFlags
        return Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable

    def data(self, index: AnyIndex, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid() or not 0 <= index.row() < len(self._rows):
            return None
        return self._cell(self._rows[index.row()], index.column(), role)


class SortableTableModel(RowTableModel):
    """Sorts its own row list by ``_sort_value``: one Python key per row.

    A QSortFilterProxyModel sorting on a Python role calls back into Python for every
    comparison (5 s for 100,000 rows); a key sort of the list takes a fraction of that.
    Pair with ``SourceSortProxy``.
    """

    def __init__(self, parent: Any = None) -> None:
        super().__init__(parent)
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
