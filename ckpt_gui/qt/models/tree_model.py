"""Qt item model over the core's ModuleNode tree (no copy of the data).

Each index's internalPointer is its ModuleNode; ``parent()`` is constant time
because every node knows its parent and row. Nothing is materialised up front, so
a 100,000-tensor checkpoint costs only what the view actually shows.

Extension points for other features (comparison, exports):

* ``set_row_status({path: status})`` colours rows; ``STATUS_COLORS`` maps a status
  name to a colour (add your own), ``StatusRole`` returns the status of a row. A
  module row without its own status shows the "worst" status found below it
  (order in ``STATUS_SEVERITY``), so problems are visible from the top.
* ``set_root(root)`` swaps the whole tree (e.g. a tree that includes ghost rows for
  missing tensors); views keep working.

Sorting and filtering happen here, not in a QSortFilterProxyModel (whose Python
``lessThan``/``filterAcceptsRow`` run per row: a minute frozen for 200,000 siblings).
What each parent shows is decided in ``tree_rows``: a parent with a few thousand
children gets its shown list built lazily when a view asks (a set lookup, one
``sorted``); a longer level is prepared by ``tree_rows.prepare_job``, on a worker
thread when the tree is big (``ASYNC_TENSORS``), and shown in ranges of
``BUCKET_SIZE`` rows, so no step on the GUI thread walks it. ``settled`` fires once a
requested sort or filter is showing. Display texts and colours are in ``tree_style``
(re-exported here).
"""

from __future__ import annotations

import dataclasses
import sys
import time
from collections.abc import Mapping
from typing import Any

from PySide6.QtCore import QAbstractItemModel, QModelIndex, QPersistentModelIndex, Qt, Signal
from PySide6.QtGui import QBrush, QFont

from ckpt_gui.core.adapters.tree import is_adapter_tensor
from ckpt_gui.core.check.status import KeyStatus
from ckpt_gui.core.tree.build import ModuleNode
from ckpt_gui.qt.models.tree_rows import (
    BUCKET_LIMIT,
    BUCKET_SIZE,
    Level,
    OrderCache,
    Prepared,
    RangeNode,
    TreeIndex,
    ViewSpec,
    needs_work,
    prepare_job,
    run,
)
from ckpt_gui.qt.models.tree_style import (
    ADAPTER_COLOR,
    GHOST_COLOR,
    HEADERS,
    RANGE_COLOR,
    STATUS_COLORS,
    STATUS_ICONS,
    STATUS_SEVERITY,
    Column,
    FractionRole,
    NodeRole,
    SortRole,
    StatusRole,
    display_text,
    inherit_status,
    is_ghost_row,
    natural_key,
    shape_text,
    sort_value,
    tooltip_text,
    worst_status,
)
from ckpt_gui.qt.runtime.workers import Worker

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

ASYNC_TENSORS = 20_000  # trees with more tensors sort and filter on a worker thread
PAUSE_S = 0.001  # the worker's pause after each step of a job: the GUI thread's turn

AnyIndex = QModelIndex | QPersistentModelIndex
_NO_PARENT = QModelIndex()  # default argument (ruff B008: no calls in defaults)
_ROW_FLAGS = Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable
_NO_FLAGS = Qt.ItemFlag.NoItemFlags
_LEAF_FLAGS = _ROW_FLAGS | Qt.ItemFlag.ItemNeverHasChildren
_COLUMNS = len(HEADERS)


def _paced(job: Any) -> Any:
    """Run ``job``, leaving the GIL free for a moment after each of its steps.

    A Python callback on the GUI thread (a timer, a paint's ``data()``) otherwise waits
    up to the interpreter's switch interval (5 ms) for the busy worker each time, and a
    repaint makes hundreds of them.
    """
    while True:
        try:
            next(job)
        except StopIteration as stop:
            return stop.value
        yield
        time.sleep(PAUSE_S)


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
        self._bold = QFont()
        self._bold.setBold(True)
        self._italic = QFont()
        self._italic.setItalic(True)
        # The view state shown (_spec) and the one asked for (_wanted, being prepared
        # by _worker when it differs); what the filter shows (ids, None: all).
        self._spec = ViewSpec()
        self._wanted = ViewSpec()
        self._worker: Worker | None = None
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
        self._cancel()
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
        return self._worker is not None

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
        return len(self._tree_index().nodes)

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
        node: ModuleNode = index.internalPointer()
        column = index.column()
        if role == Qt.ItemDataRole.DisplayRole:
            return display_text(node, column, self.module_class(node), self.alias_of(node))
        if role == SortRole:
            return sort_value(node, column)
        if role == NodeRole:
            return node
        if role == FractionRole:
            total = self._root.nbytes
            return node.nbytes / total if total else 0.0
        if role == StatusRole:
            return self.status_of(node)
        if role == Qt.ItemDataRole.DecorationRole and column == Column.NAME:
            return STATUS_ICONS.get(self.status_of(node) or "")
        if is_ghost_row(node):
            if role == Qt.ItemDataRole.ForegroundRole:
                return QBrush(GHOST_COLOR)
            if role == Qt.ItemDataRole.FontRole:
                return self._italic
        if role == Qt.ItemDataRole.ForegroundRole:
            status = self.status_of(node)
            if status in STATUS_COLORS and status != KeyStatus.OK:
                return QBrush(STATUS_COLORS[status])
            if type(node) is RangeNode:
                return QBrush(RANGE_COLOR)
            if is_adapter_tensor(node.tensor):
                return QBrush(ADAPTER_COLOR)  # a LoRA adapter's tensor shown in its base
            return None
        if role == Qt.ItemDataRole.TextAlignmentRole and column in (
            Column.PARAMETERS,
            Column.SIZE,
        ):
            return Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter
        if role == Qt.ItemDataRole.FontRole and column == Column.NAME and not node.is_tensor:
            top = node.parent is self._root and type(node) is not RangeNode
            return self._bold if top else None
        if role == Qt.ItemDataRole.ToolTipRole and column == Column.NAME:
            return tooltip_text(
                node,
                self.status_of(node),
                self.module_class(node),
                self.alias_of(node),
                self._alias_label,
            )
        return None

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

    def _tree_index(self) -> TreeIndex:
        if self._index is None or self._index.root is not self._root:
            self._index = run(prepare_job(self._root, None, ViewSpec(), {})).index
        return self._index

    # -- view changes ----------------------------------------------------------------------
    def _request(self, spec: ViewSpec, now: bool = False) -> None:
        """Show ``spec``: at once when it is cheap or the tree small, else from a worker."""
        self._wanted = spec
        self._cancel()
        job = prepare_job(self._root, self._index, spec, dict(self._orders))
        small = self._root.tensor_count <= ASYNC_TENSORS
        if now or small or not needs_work(self._index, spec, self._orders):
            self._apply(run(job))
            return
        worker = self._worker = Worker(_paced, job)
        worker.name = "tree view: sort/filter"
        worker.returned.connect(lambda prepared: self._prepared(worker, prepared))
        worker.errored.connect(lambda error: self._failed(worker, error))
        worker.start()

    def _cancel(self) -> None:
        if self._worker is not None:
            self._worker.quit()
            self._worker = None

    def _prepared(self, worker: Worker, prepared: Prepared) -> None:
        if worker is self._worker:
            self._worker = None
            if prepared.index.root is self._root:
                self._apply(prepared)

    def _failed(self, worker: Worker, error: BaseException) -> None:
        if worker is self._worker:
            self._worker = None
            print(f"ckpt-gui: sorting/filtering the tree failed: {error!r}", file=sys.stderr)
            self.settled.emit()

    def _apply(self, prepared: Prepared) -> None:
        def change() -> None:
            self._spec = prepared.spec
            self._index = prepared.index
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
