"""Qt item model over the core's ModuleNode tree (no copy of the data).

Each index's internalPointer is its ModuleNode; nothing is materialised up front, so a
100,000-tensor checkpoint costs only what the view shows. Hooks for other features:
``set_row_status({path: status})`` colours rows (``STATUS_COLORS``; a module shows the
worst status below it, ``STATUS_SEVERITY``), ``set_root(root)`` swaps the tree (ghost
rows); ``settled`` fires once a requested sort or filter is showing.

Sorting and filtering happen here, not in a QSortFilterProxyModel (its Python
``lessThan``/``filterAcceptsRow`` per row froze 200,000 siblings for a minute). A parent
with a few thousand children gets its shown list built lazily (a set lookup, one
``sorted``); a longer one is prepared by ``tree_rows.prepare_job`` (on a worker thread
for big trees, ``tree_prepare``) and shown in range rows of ``BUCKET_SIZE``, so no
GUI-thread step walks it. Texts and colours are in ``tree_style`` (re-exported here).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from PySide6.QtCore import QAbstractItemModel, QModelIndex, QPersistentModelIndex, Qt, Signal

from ckpt_gui.core.tree.build import ModuleNode
from ckpt_gui.qt.models.tree_prepare import Preparations
from ckpt_gui.qt.models.tree_rows import (
    BUCKET_LIMIT,
    BUCKET_SIZE,
    Level,
    OrderCache,
    Prepared,
    RangeNode,
    TreeIndex,
    ViewSpec,
)
from ckpt_gui.qt.models.tree_style import (
    ADAPTER_COLOR,
    GHOST_COLOR,
    HEADERS,
    STATUS_COLORS,
    STATUS_ICONS,
    STATUS_SEVERITY,
    Column,
    FractionRole,
    NodeRole,
    SortRole,
    StatusRole,
    inherit_status,
    natural_key,
    row_data,
    shape_text,
    sort_value,
    worst_status,
)

__all__ = [
    "ADAPTER_COLOR",
    "GHOST_COLOR",
    "HEADERS",
    "STATUS_COLORS",
    "STATUS_ICONS",
    "STATUS_SEVERITY",
    "CheckpointTreeModel",
    "Column",
    "FractionRole",
    "NodeRole",
    "SortRole",
    "StatusRole",
    "natural_key",
    "shape_text",
]


AnyIndex = QModelIndex | QPersistentModelIndex
_NO_PARENT = QModelIndex()  # default argument (ruff B008: no calls in defaults)
_ROW_FLAGS = Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable
_NO_FLAGS = Qt.ItemFlag.NoItemFlags
_LEAF_FLAGS = _ROW_FLAGS | Qt.ItemFlag.ItemNeverHasChildren
_COLUMNS = len(HEADERS)


class CheckpointTreeModel(QAbstractItemModel):
    """Name, Shape, DType, Parameters, Size, File for every module and tensor."""

    settled = Signal()  # a requested sort or filter is showing (also when done at once)

    def __init__(self, root: ModuleNode | None = None, parent: Any = None) -> None:
        super().__init__(parent)
        self._root = root or ModuleNode("", "", None)
        self._status: dict[str, str] = {}
        self._inherited: dict[int, str] = {}
        self._aliases: dict[str, str] = {}
        self._alias_label = ""
        # Module path -> the class it was pickled as (whole-model pickles only).
        self._classes: dict[str, str] = {}
        # The view state shown (_spec) and the one asked for (_wanted, being prepared
        # by _worker when it differs); what the filter shows (ids, None: all).
        self._spec = ViewSpec()
        self._wanted = ViewSpec()
        self._preparations = Preparations(self._apply, self.settled.emit)
        self._index: TreeIndex | None = None
        self._visible: set[int] | None = None
        self._visible_tensors = 0
        # Long parents (> BUCKET_LIMIT children): their Level under _spec, their range
        # rows (kept for the model's life: indexes point at them), the generation the
        # ranges were filled for, and the ascending orders computed so far.
        self._levels: dict[int, Level] = {}
        self._ranges: dict[int, list[RangeNode]] = {}
        self._filled: dict[int, int] = {}
        self._generation = 0
        self._orders: OrderCache = {}
        # Other parents: shown children (only when they differ from node.children) and
        # their rows; per (parent id, column): the children sorted ascending.
        self._shown: dict[int, list[ModuleNode]] = {}
        self._rows: dict[int, dict[int, int]] = {}
        self._sorted: dict[tuple[int, int], list[ModuleNode]] = {}

    # -- public API --------------------------------------------------------------------
    @property
    def root(self) -> ModuleNode:
        return self._root

    def set_root(self, root: ModuleNode) -> None:
        self._preparations.cancel()
        self.beginResetModel()
        self._root = root
        self._inherited = inherit_status(root, self._status)
        self._spec = ViewSpec()
        self._visible = None
        self._index = None
        self._levels.clear()
        self._ranges.clear()
        self._filled.clear()
        self._orders.clear()
        self._sorted.clear()
        self._generation += 1
        self._forget_views()
        self.endResetModel()
        self._request(self._wanted)

    def set_filter(self, matches: Any, predicate: Any = None) -> None:
        """Show paths ``matches`` accepts and nodes ``predicate`` accepts (None: all).

        Both may run on a worker thread (big trees): they must only read.
        """
        self._request(dataclasses.replace(self._wanted, matches=matches, predicate=predicate))

    def set_visible(self, visible: set[int] | None) -> None:
        """Show only nodes whose id is in ``visible`` (None: every node), at once."""
        predicate = None if visible is None else (lambda node: id(node) in visible)
        self._request(
            dataclasses.replace(self._wanted, matches=None, predicate=predicate), now=True
        )

    def sort(self, column: int, order: Qt.SortOrder = Qt.SortOrder.AscendingOrder) -> None:
        """Order every sibling list by ``column`` (-1: file order), natural keys."""
        column = column if 0 <= column < _COLUMNS else -1
        descending = order == Qt.SortOrder.DescendingOrder
        self._request(dataclasses.replace(self._wanted, column=column, descending=descending))

    @property
    def busy(self) -> bool:
        """A sort or filter is being prepared on a worker thread (``settled`` follows)."""
        return self._preparations.busy

    @property
    def is_filtering(self) -> bool:
        return self._visible is not None

    def accepts(self, node: ModuleNode) -> bool:
        return self._visible is None or id(node) in self._visible

    @property
    def visible_count(self) -> int:
        """Rows the filter shows (every node without a filter)."""
        if self._visible is not None:
            return len(self._visible)
        known = self._index is not None and self._index.root is self._root
        return len(self._index.nodes) if known else sum(1 for _ in self._root.walk()) - 1  # type: ignore[union-attr]

    @property
    def visible_tensor_count(self) -> int:
        return self._root.tensor_count if self._visible is None else self._visible_tensors

    def shown_children(self, node: ModuleNode) -> list[ModuleNode]:
        """``node``'s rows as the views show them (filtered, sorted, long levels in ranges)."""
        shown = self._shown.get(id(node))
        if shown is not None:
            return shown
        if type(node) is RangeNode:
            return node.children
        level = self._level(node)
        if level is not None:
            shown = self._range_rows(node, level) if level.bucketed else level.shown
            self._shown[id(node)] = shown
            return shown
        spec = self._spec
        if self._visible is None and spec.column < 0:
            return node.children
        children = node.children
        if spec.column >= 0 and len(children) > 1:
            children = self._sorted_children(node, spec.column)
            if spec.descending:
                children = children[::-1]
        if self._visible is not None:
            visible = self._visible
            children = [c for c in children if id(c) in visible]
        self._shown[id(node)] = children
        return children

    def node(self, index: AnyIndex) -> ModuleNode:
        """The node behind ``index`` (the root for an invalid index)."""
        if index.isValid():
            node: ModuleNode = index.internalPointer()
            return node
        return self._root

    def index_of(self, node: ModuleNode, column: int = 0) -> QModelIndex:
        """The index of ``node``; invalid for the root and for nodes the filter hides."""
        row = self._row_of(node)
        if row is None:
            return QModelIndex()
        return self.createIndex(row, column, node)

    def set_module_classes(self, classes: Mapping[str, str]) -> None:
        """Show, beside each module row, the class it was pickled as (``BertSelfAttention``)."""
        self._classes = {str(k): str(v) for k, v in classes.items()}
        self._emit_all_changed()

    def module_class(self, node: ModuleNode) -> str | None:
        return None if node.is_tensor else self._classes.get(node.path)

    def set_row_status(self, status: Mapping[str, str]) -> None:
        """Colour rows by status, keyed by node path (tensor name or module prefix)."""
        self._status = dict(status)
        self._inherited = inherit_status(self._root, self._status)
        for ranges in self._ranges.values():
            for node in ranges:
                node.status_cache = None
        self._emit_all_changed()

    def set_aliases(self, aliases: Mapping[str, str], label: str) -> None:
        """A second name per tensor (GGUF files: llama.cpp's), shown in the File column."""
        self._aliases = dict(aliases)
        self._alias_label = label
        self._emit_all_changed()

    @property
    def alias_label(self) -> str:
        return self._alias_label

    def alias_of(self, node: ModuleNode) -> str | None:
        return self._aliases.get(node.path) if node.tensor is not None else None

    def status_of(self, node: ModuleNode) -> str | None:
        if type(node) is RangeNode:
            if not self._status:
                return None
            if node.status_cache is None:
                node.status_cache = (worst_status([self.status_of(m) for m in node.members]),)
            return node.status_cache[0]
        return self._status.get(node.path) or self._inherited.get(id(node))

    def sort_value(self, node: ModuleNode, column: int) -> Any:
        """A key that orders ``column`` naturally (numbers as numbers)."""
        return sort_value(node, column)

    # -- QAbstractItemModel --------------------------------------------------------------
    def index(self, row: int, column: int, parent: AnyIndex = _NO_PARENT) -> QModelIndex:
        # Called for every row at each layout of a view: kept to the fewest Python steps.
        if parent.isValid():
            if parent.column() != 0:
                return QModelIndex()
            node = parent.internalPointer()
        else:
            node = self._root
        children = self._shown.get(id(node)) or self.shown_children(node)
        if 0 <= row < len(children) and 0 <= column < _COLUMNS:
            return self.createIndex(row, column, children[row])
        return QModelIndex()

    def parent(self, index: AnyIndex = _NO_PARENT) -> QModelIndex:  # type: ignore[override]
        if not index.isValid():
            return QModelIndex()
        node: ModuleNode = index.internalPointer()
        parent = node.parent
        if parent is None:
            return QModelIndex()
        if type(node) is not RangeNode and len(parent.children) > BUCKET_LIMIT:
            level = self._level(parent)
            if level is not None and level.bucketed:
                position = level.position(node)
                if position is None:
                    return QModelIndex()
                ranges = self._shown.get(id(parent)) or self.shown_children(parent)
                holder = ranges[position // BUCKET_SIZE]
                return self.createIndex(holder.number, 0, holder)  # type: ignore[attr-defined]
        if parent is self._root:
            return QModelIndex()
        row = self._row_of(parent)
        return QModelIndex() if row is None else self.createIndex(row, 0, parent)

    def rowCount(self, parent: AnyIndex = _NO_PARENT) -> int:
        if parent.isValid() and parent.column() != 0:
            return 0
        return len(self.shown_children(self.node(parent)))

    def columnCount(self, parent: AnyIndex = _NO_PARENT) -> int:
        return len(HEADERS)

    def hasChildren(self, parent: AnyIndex = _NO_PARENT) -> bool:
        # Asked for every row at each layout: a tensor row answers without a lookup.
        if not parent.isValid():
            return bool(self.shown_children(self._root))
        if parent.column() != 0:
            return False
        node: ModuleNode = parent.internalPointer()
        return bool(node.children) and bool(self.shown_children(node))

    def headerData(
        self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole
    ) -> Any:
        if orientation == Qt.Orientation.Horizontal and 0 <= section < len(HEADERS):
            if role == Qt.ItemDataRole.DisplayRole:
                return HEADERS[section]
            if role == Qt.ItemDataRole.TextAlignmentRole and section in (
                Column.PARAMETERS,
                Column.SIZE,
            ):
                return Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter
        return None

    def flags(self, index: AnyIndex) -> Qt.ItemFlag:
        # Views ask once per row per layout: no enum arithmetic here (see _ROW_FLAGS).
        # ItemNeverHasChildren spares QTreeView a hasChildren() call per tensor row.
        if not index.isValid():
            return _NO_FLAGS
        return _ROW_FLAGS if index.internalPointer().children else _LEAF_FLAGS

    def data(self, index: AnyIndex, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid():
            return None
        return row_data(self, index.internalPointer(), index.column(), role)

    # -- rows ------------------------------------------------------------------------------
    def _level(self, node: ModuleNode) -> Level | None:
        """A long parent's Level (None for other parents)."""
        if len(node.children) <= BUCKET_LIMIT or type(node) is RangeNode:
            return None
        level = self._levels.get(id(node))
        if level is None:  # not prepared: the view state shows it in file order, unfiltered
            level = self._levels[id(node)] = Level(node.children)
        return level

    def _range_rows(self, node: ModuleNode, level: Level) -> list[ModuleNode]:
        ranges = self._ranges.setdefault(id(node), [])
        count = -(-len(level.shown) // BUCKET_SIZE)
        while len(ranges) < count:
            ranges.append(RangeNode(node, len(ranges)))
        if self._filled.get(id(node)) != self._generation:
            self._filled[id(node)] = self._generation
            for holder in ranges[:count]:
                holder.fill(level.shown)
        return list(ranges[:count])

    def _row_of(self, node: ModuleNode) -> int | None:
        parent = node.parent
        if node is self._root or parent is None:
            return None
        if type(node) is RangeNode:
            ranges = self.shown_children(parent)
            return (
                node.number if node.number < len(ranges) and ranges[node.number] is node else None
            )
        level = self._level(parent)
        if level is not None:
            position = level.position(node)
            if position is None or not level.bucketed:
                return position
            return position % BUCKET_SIZE
        shown = self.shown_children(parent)
        if shown is parent.children:
            return node.row
        rows = self._rows.get(id(parent))
        if rows is None:
            rows = self._rows[id(parent)] = dict(
                zip(map(id, shown), range(len(shown)), strict=True)
            )
        return rows.get(id(node))

    def _sorted_children(self, node: ModuleNode, column: int) -> list[ModuleNode]:
        key = (id(node), column)
        ordered = self._sorted.get(key)
        if ordered is None:
            keyed = [(sort_value(c, column), c.row) for c in node.children]
            try:
                ranks = sorted(range(len(keyed)), key=keyed.__getitem__)
            except TypeError:  # mixed kinds of values: compare their text
                ranks = sorted(range(len(keyed)), key=lambda i: (str(keyed[i][0]), i))
            children = node.children
            ordered = self._sorted[key] = [children[i] for i in ranks]
        return ordered

    # -- view changes ----------------------------------------------------------------------
    def _request(self, spec: ViewSpec, now: bool = False) -> None:
        """Show ``spec``: at once when it is cheap or the tree small, else from a worker."""
        self._wanted = spec
        self._preparations.start(self._root, self._index, spec, self._orders, now)

    def _apply(self, prepared: Prepared) -> None:
        def change() -> None:
            self._spec = prepared.spec
            self._index = prepared.index or self._index
            self._visible = prepared.visible
            self._visible_tensors = prepared.visible_tensors
            self._orders.update(prepared.orders)
            self._levels = prepared.levels
            self._generation += 1

        self._change_views(change)
        self.settled.emit()

    def _forget_views(self) -> None:
        self._shown.clear()
        self._rows.clear()

    def _change_views(self, change: Any) -> None:
        """Apply ``change`` to the filter/sort state as one layout change.

        Only persistent indexes (expanded rows, selection, current) are moved: views
        keep their state, and nothing walks the 200,000 rows a view does not show.
        """
        self.layoutAboutToBeChanged.emit()
        old = self.persistentIndexList()
        nodes = [(index.internalPointer(), index.column()) for index in old]
        change()
        self._forget_views()
        self.changePersistentIndexList(old, [self.index_of(n, c) for n, c in nodes])
        self.layoutChanged.emit()

    def _emit_all_changed(self) -> None:
        # Status can touch any row. layoutChanged makes views repaint and proxies
        # re-sort and re-filter without a reset (expanded state and selection stay).
        self.layoutAboutToBeChanged.emit()
        self.layoutChanged.emit()
