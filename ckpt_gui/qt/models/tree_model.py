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

Sorting and filtering happen here, not in a QSortFilterProxyModel: that proxy calls
Python (``lessThan``, ``filterAcceptsRow``) for every row, 3.5 million calls to sort
200,000 siblings (a minute frozen). Here a parent's shown children are one list,
built lazily the first time a view asks for that parent: the filter is a set lookup
in a list comprehension, and each sibling list is sorted once per column with its
keys computed once (``sorted(key=...)``); the other direction and later filters
reuse that order. ``filter_proxy.TreeFilterProxy`` only forwards (an identity proxy).
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import IntEnum
from typing import Any

from PySide6.QtCore import QAbstractItemModel, QModelIndex, QPersistentModelIndex, Qt
from PySide6.QtGui import QBrush, QColor, QFont, QIcon

from ckpt_gui.core.adapters.tree import is_adapter_tensor
from ckpt_gui.core.check.status import KeyStatus
from ckpt_gui.core.formatting import human_bytes, human_count
from ckpt_gui.core.tree.build import ModuleNode
from ckpt_gui.core.tree.ghosts import is_ghost
from ckpt_gui.core.tree.grouping import GroupNode

AnyIndex = QModelIndex | QPersistentModelIndex
_NO_PARENT = QModelIndex()  # default argument (ruff B008: no calls in defaults)
_ROW_FLAGS = Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable
_NO_FLAGS = Qt.ItemFlag.NoItemFlags
_LEAF_FLAGS = _ROW_FLAGS | Qt.ItemFlag.ItemNeverHasChildren


class Column(IntEnum):
    NAME = 0
    SHAPE = 1
    DTYPE = 2
    PARAMETERS = 3
    SIZE = 4
    FILE = 5


HEADERS = ("Name", "Shape", "DType", "Parameters", "Size", "File")
_COLUMNS = len(HEADERS)

NodeRole = Qt.ItemDataRole.UserRole + 1  # the ModuleNode
SortRole = Qt.ItemDataRole.UserRole + 2  # a value that sorts naturally
FractionRole = Qt.ItemDataRole.UserRole + 3  # node bytes / checkpoint bytes (size bar)
StatusRole = Qt.ItemDataRole.UserRole + 4  # status name or None

# Row colours by status name; any other name may be added here. The comparison's
# statuses are core's KeyStatus (strings, so they key this dict like any name).
STATUS_COLORS: dict[str, QColor] = {
    KeyStatus.OK: QColor(46, 125, 50),
    KeyStatus.MISSING: QColor(198, 40, 40),
    KeyStatus.UNEXPECTED: QColor(230, 120, 0),
    KeyStatus.MISMATCHED: QColor(142, 36, 170),
    KeyStatus.IGNORED: QColor(120, 120, 120),
    # Scan findings (qt/scan) and diff results (qt/diff).
    "nan": QColor(198, 40, 40),
    "inf": QColor(173, 20, 87),
    "extreme": QColor(230, 81, 0),
    "all_zero": QColor(0, 121, 107),
    "changed": QColor(216, 67, 21),
    "only_in_a": QColor(198, 40, 40),
}
# Worst first: a module row shows the first of these found below it.
STATUS_SEVERITY: tuple[str, ...] = (
    "nan",
    "inf",
    "extreme",
    "all_zero",
    "only_in_a",
    "changed",
    *KeyStatus.by_severity(),
)
# Optional icon per status, shown before the name (the comparison registers them).
STATUS_ICONS: dict[str, QIcon] = {}
# Tensors of a LoRA adapter in its base's tree (teal: purple already means mismatch).
ADAPTER_COLOR = QColor(0, 121, 107)
GHOST_COLOR = QColor(140, 140, 140)  # rows for tensors the checkpoint lacks (ghost rows)


def shape_text(shape: tuple[int, ...]) -> str:
    return " × ".join(str(d) for d in shape) if shape else "scalar"


def natural_key(name: str) -> tuple[int, int | str]:
    return (0, int(name)) if name.isdigit() else (1, name.lower())


class CheckpointTreeModel(QAbstractItemModel):
    """Name, Shape, DType, Parameters, Size, File for every module and tensor."""

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
        # What the views show: ids of the nodes that pass the filter (None: all), and
        # the sort column (-1: file order) and direction.
        self._visible: set[int] | None = None
        self._sort_column = -1
        self._descending = False
        # Per parent id: its shown children (only when they differ from node.children)
        # and their rows; per (parent id, column): the children sorted ascending.
        self._shown: dict[int, list[ModuleNode]] = {}
        self._rows: dict[int, dict[int, int]] = {}
        self._sorted: dict[tuple[int, int], list[ModuleNode]] = {}

    # -- public API --------------------------------------------------------------------
    @property
    def root(self) -> ModuleNode:
        return self._root

    def set_root(self, root: ModuleNode) -> None:
        self.beginResetModel()
        self._root = root
        self._inherited = _inherit_status(root, self._status)
        self._visible = None
        self._sorted.clear()
        self._forget_views()
        self.endResetModel()

    def set_visible(self, visible: set[int] | None) -> None:
        """Show only nodes whose id is in ``visible`` (None: every node)."""
        self._change_views(lambda: setattr(self, "_visible", visible))

    def sort(self, column: int, order: Qt.SortOrder = Qt.SortOrder.AscendingOrder) -> None:
        """Order every sibling list by ``column`` (-1: file order), natural keys."""
        descending = order == Qt.SortOrder.DescendingOrder

        def apply() -> None:
            self._sort_column = column if 0 <= column < len(HEADERS) else -1
            self._descending = descending

        self._change_views(apply)

    def shown_children(self, node: ModuleNode) -> list[ModuleNode]:
        """``node``'s children as the views show them (filtered, sorted)."""
        shown = self._shown.get(id(node))
        if shown is not None:
            return shown
        if self._visible is None and self._sort_column < 0:
            return node.children
        children = node.children
        if self._sort_column >= 0 and len(children) > 1:
            children = self._sorted_children(node, self._sort_column)
            if self._descending:
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
        self._inherited = _inherit_status(self._root, self._status)
        self._emit_all_changed()

    def set_aliases(self, aliases: Mapping[str, str], label: str) -> None:
        """A second name per tensor (GGUF files: llama.cpp's), shown in the File column."""
        self._aliases = dict(aliases)
        self._alias_label = label
        self._emit_all_changed()

    def alias_of(self, node: ModuleNode) -> str | None:
        return self._aliases.get(node.path) if node.tensor is not None else None

    def status_of(self, node: ModuleNode) -> str | None:
        return self._status.get(node.path) or self._inherited.get(id(node))

    # -- QAbstractItemModel --------------------------------------------------------------
    def index(self, row: int, column: int, parent: AnyIndex = _NO_PARENT) -> QModelIndex:
        # Called for every row at each layout of a view (200,000 for a flat checkpoint):
        # kept to the fewest Python steps.
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
        parent = self.node(index).parent
        if parent is None or parent is self._root:
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
            return self._display(node, column)
        if role == SortRole:
            return self.sort_value(node, column)
        if role == NodeRole:
            return node
        if role == FractionRole:
            total = self._root.nbytes
            return node.nbytes / total if total else 0.0
        if role == StatusRole:
            return self.status_of(node)
        if role == Qt.ItemDataRole.DecorationRole and column == Column.NAME:
            return STATUS_ICONS.get(self.status_of(node) or "")
        if _is_ghost_row(node):
            if role == Qt.ItemDataRole.ForegroundRole:
                return QBrush(GHOST_COLOR)
            if role == Qt.ItemDataRole.FontRole:
                return self._italic
        if role == Qt.ItemDataRole.ForegroundRole:
            status = self.status_of(node)
            if status in STATUS_COLORS and status != KeyStatus.OK:
                return QBrush(STATUS_COLORS[status])
            if is_adapter_tensor(node.tensor):
                return QBrush(ADAPTER_COLOR)  # a LoRA adapter's tensor shown in its base
            return None
        if role == Qt.ItemDataRole.TextAlignmentRole and column in (
            Column.PARAMETERS,
            Column.SIZE,
        ):
            return Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter
        if role == Qt.ItemDataRole.FontRole and column == Column.NAME and not node.is_tensor:
            return self._bold if node.parent is self._root else None
        if role == Qt.ItemDataRole.ToolTipRole:
            return self._tooltip(node, column)
        return None

    # -- helpers ---------------------------------------------------------------------------
    def _display(self, node: ModuleNode, column: int) -> str:
        tensor = node.tensor
        if column == Column.NAME:
            if isinstance(node, GroupNode):
                return f"{node.name}  ×{len(node.members)}"
            pickled_as = self.module_class(node)
            if pickled_as:
                return f"{node.name}  ({pickled_as.rsplit('.', 1)[-1]})"
            return node.name
        if column == Column.SHAPE:
            return shape_text(tensor.shape) if tensor else ""
        if column == Column.DTYPE:
            if tensor is None:
                return node.quant.short() if node.quant is not None else ""
            return f"{tensor.dtype} · aux" if node.bookkeeping else tensor.dtype
        if _is_ghost_row(node) and column in (Column.PARAMETERS, Column.SIZE):
            return "—"  # the model expects it; the checkpoint has no bytes for it
        if column == Column.PARAMETERS:
            return human_count(node.parameters)
        if column == Column.SIZE:
            return human_bytes(node.nbytes)
        if column == Column.FILE:
            alias = self.alias_of(node)
            if alias is not None:
                return f"{alias}  ({tensor.file})" if tensor else alias
            return tensor.file if tensor else ""
        return ""

    def sort_value(self, node: ModuleNode, column: int) -> Any:
        """A key that orders ``column`` naturally (numbers as numbers)."""
        tensor = node.tensor
        if column == Column.NAME:
            return natural_key(node.name)
        if column == Column.SHAPE:
            return tensor.shape if tensor else ()
        if column == Column.DTYPE:
            return tensor.dtype if tensor else ""
        if column == Column.PARAMETERS:
            return node.parameters
        if column == Column.SIZE:
            return node.nbytes
        return tensor.file if tensor else ""

    def _tooltip(self, node: ModuleNode, column: int) -> str | None:
        if column != Column.NAME:
            return None
        if isinstance(node, GroupNode):
            return (
                f"{len(node.members)} identical blocks; the rows below show block "
                f"{node.members[0].name} ({node.members[0].path})"
            )
        status = self.status_of(node)
        alias = self.alias_of(node)
        if alias is not None:
            return f"{node.path}\n{self._alias_label} name: {alias}"
        if node.quant is not None:
            quant = node.quant
            return (
                f"{node.path}  [{quant.describe()}: {len(quant.bookkeeping)} bookkeeping "
                f"tensors, {quant.bookkeeping_bytes:,} bytes, not counted as parameters]"
            )
        if node.bookkeeping:
            return f"{node.path}  [quantization bookkeeping: stored bytes, no parameters]"
        if is_ghost(node.tensor):
            return f"{node.path}  [missing: the model expects it, the checkpoint lacks it]"
        if is_adapter_tensor(node.tensor):
            return f"{node.path}  [from the adapter]" + (f"  [{status}]" if status else "")
        pickled_as = self.module_class(node)
        if pickled_as:
            return f"{node.path}  (pickled as {pickled_as})"
        return f"{node.path}  [{status}]" if status else node.path

    def _row_of(self, node: ModuleNode) -> int | None:
        parent = node.parent
        if node is self._root or parent is None:
            return None
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
            sort_value = self.sort_value
            keyed = [(sort_value(c, column), c.row) for c in node.children]
            try:
                ranks = sorted(range(len(keyed)), key=keyed.__getitem__)
            except TypeError:  # mixed kinds of values: compare their text
                ranks = sorted(range(len(keyed)), key=lambda i: (str(keyed[i][0]), i))
            children = node.children
            ordered = self._sorted[key] = [children[i] for i in ranks]
        return ordered

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


def _is_ghost_row(node: ModuleNode) -> bool:
    """A tensor the checkpoint lacks (comparison ghost), or a module made only of them."""
    if node.tensor is not None:
        return is_ghost(node.tensor)
    return bool(node.children) and node.tensor_count == 0 and node.parent is not None


def _inherit_status(root: ModuleNode, status: Mapping[str, str]) -> dict[int, str]:
    """For module rows without their own status: the most severe status below them."""
    if not status:
        return {}
    rank = {name: i for i, name in enumerate(STATUS_SEVERITY)}
    inherited: dict[int, str] = {}
    for node in reversed(list(root.walk())):
        best = status.get(node.path)
        for child in node.children:
            candidate = status.get(child.path) or inherited.get(id(child))
            if candidate is not None and (
                best is None or rank.get(candidate, 99) < rank.get(best, 99)
            ):
                best = candidate
        if best is not None and not node.is_tensor:
            inherited[id(node)] = best
    return inherited
