"""The tree view with its filter bar: what a loaded checkpoint tab shows on the left."""

from __future__ import annotations

from operator import attrgetter

from PySide6.QtCore import QModelIndex, QPoint, Qt, QTimer, Signal
from PySide6.QtGui import QAction, QGuiApplication, QKeySequence
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QComboBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QMenu,
    QTreeView,
    QVBoxLayout,
    QWidget,
)

from ckpt_gui.core.tree.build import ModuleNode
from ckpt_gui.core.tree.grouping import group_repeated_blocks
from ckpt_gui.core.tree.text_export import export_tree
from ckpt_gui.qt.models.filter_proxy import MODES, TreeFilterProxy
from ckpt_gui.qt.models.tree_model import HEADERS, CheckpointTreeModel, Column
from ckpt_gui.qt.widgets.size_bar import SizeBarDelegate

FILTER_DELAY_MS = 150  # typing pauses this long before the tree is filtered
EXPAND_ALL_LIMIT = 3000  # after filtering, expand everything when this few rows match


class TreePanel(QWidget):
    """Filter bar + tree. ``node_selected`` fires with the current node (or None)."""

    node_selected = Signal(object)
    # (QMenu, node or None) before the row context menu shows: other features add actions.
    context_menu_requested = Signal(object, object)

    def __init__(self, root: ModuleNode, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.raw_root = root
        self.model = CheckpointTreeModel(root, self)
        self.proxy = TreeFilterProxy(self)
        self.proxy.setSourceModel(self.model)

        self.filter_edit = QLineEdit()
        self.filter_edit.setPlaceholderText("Filter by name (Ctrl+F)…")
        self.filter_edit.setClearButtonEnabled(True)
        self.mode_box = QComboBox()
        self.mode_box.addItems([m.capitalize() for m in MODES])
        self.mode_box.setToolTip("Contains: substring · Glob: layers.*.mlp · Regex: re.search")
        self.group_box = QCheckBox("Group repeated blocks")
        self.group_box.setToolTip("Show layers.{0..31} once, with a count")
        self.count_label = QLabel()
        self.count_label.setStyleSheet("color: #777;")
        bar = QHBoxLayout()
        bar.setContentsMargins(0, 0, 0, 0)
        bar.addWidget(self.filter_edit, 1)
        bar.addWidget(self.mode_box)
        bar.addWidget(self.group_box)
        bar.addWidget(self.count_label)

        self.view = QTreeView()
        self.view.setModel(self.proxy)
        self.view.setUniformRowHeights(True)  # essential for 100k rows
        self.view.setAlternatingRowColors(True)
        self.view.setTextElideMode(Qt.TextElideMode.ElideMiddle)  # shard names differ at the end
        self.view.setSortingEnabled(True)
        self.view.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.view.setItemDelegateForColumn(Column.SIZE, SizeBarDelegate(self.view))
        self.view.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.view.customContextMenuRequested.connect(self._context_menu)
        self.view.header().setSortIndicator(-1, Qt.SortOrder.AscendingOrder)
        self.proxy.sort(-1)  # natural (file) order until the user clicks a header
        self._size_columns()

        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(bar)
        layout.addWidget(self.view, 1)

        self._filter_timer = QTimer(self)
        self._filter_timer.setSingleShot(True)
        self._filter_timer.setInterval(FILTER_DELAY_MS)
        self._filter_timer.timeout.connect(self.apply_filter)
        self.filter_edit.textChanged.connect(self._filter_timer.start)
        self.mode_box.currentIndexChanged.connect(self.apply_filter)
        self.group_box.toggled.connect(self.set_grouped)
        self.view.selectionModel().currentChanged.connect(self._current_changed)
        self._copy_action = QAction("Copy", self.view)
        self._copy_action.setShortcut(QKeySequence.StandardKey.Copy)
        self._copy_action.setShortcutContext(Qt.ShortcutContext.WidgetShortcut)
        self._copy_action.triggered.connect(self.copy_selection)
        self.view.addAction(self._copy_action)
        self._filter_pending = False
        self._pending_select: ModuleNode | None = None
        self.model.settled.connect(self._settled)
        self._update_count()
        self._expanded_once = False
        self.expand_default()

    # -- public API ----------------------------------------------------------------------
    def apply_filter(self) -> None:
        """Filter now (typing waits FILTER_DELAY_MS first).

        A big tree is filtered on a worker thread: the rows open up when the model has
        ``settled`` (at once for a small tree).
        """
        self._filter_timer.stop()
        self._filter_pending = True
        self.proxy.set_filter(self.filter_edit.text(), MODES[self.mode_box.currentIndex()])
        self.filter_edit.setToolTip(self.proxy.error)
        self.filter_edit.setStyleSheet("border: 1px solid #c62828;" if self.proxy.error else "")

    @property
    def busy(self) -> bool:
        """A sort or filter is still being prepared (big trees)."""
        return self.model.busy

    def set_grouped(self, grouped: bool) -> None:
        """Show runs of identical numbered blocks once (``layers.{0..31} ×32``)."""
        if self.group_box.isChecked() != grouped:
            self.group_box.setChecked(grouped)  # re-enters through toggled
            return
        root = group_repeated_blocks(self.raw_root) if grouped else self.raw_root
        self.model.set_root(root)
        self.apply_filter()

    def set_root(self, root: ModuleNode) -> None:
        """Replace the tree (e.g. one with ghost rows); grouping applies on top."""
        self.raw_root = root
        self.set_grouped(self.group_box.isChecked())

    def expand_default(self) -> None:
        """Top levels open, plus the first repeated block, so the structure is visible.

        Rows are expanded by name, not with ``expandToDepth``/``collapseAll``, which
        visit every row of the model (200,000 Python calls for a flat checkpoint).
        """
        if self._expanded_once:
            self.view.collapseAll()
        self._expanded_once = True
        first_block: ModuleNode | None = None
        # Only modules (a flat checkpoint has 200,000 tensors here: filtered in C).
        for top in filter(attrgetter("children"), self.model.root.children):
            self._expand(top)
            for child in filter(attrgetter("children"), top.children):
                if len(child.children) <= 50:
                    self._expand(child)
                    if first_block is None and child.children[0].children:
                        first_block = child.children[0]
        if first_block is not None:
            self._expand(first_block)
            for child in first_block.children:
                if not child.is_tensor and len(child.children) <= 10:
                    self._expand(child)

    def current_node(self) -> ModuleNode | None:
        index = self.view.currentIndex()
        return self.proxy.mapToSource(index).internalPointer() if index.isValid() else None

    def select_node(self, node: ModuleNode) -> None:
        """Make ``node`` current (once a pending sort or filter shows, if one runs)."""
        if self.model.busy:
            self._pending_select = node
            return
        index = self.proxy.mapFromSource(self.model.index_of(node))
        if index.isValid():
            self.view.scrollTo(index)
            self.view.setCurrentIndex(index)

    def selected_nodes(self) -> list[ModuleNode]:
        rows = self.view.selectionModel().selectedRows(0)
        return [self.proxy.mapToSource(i).internalPointer() for i in rows]

    def copy_name(self) -> None:
        node = self.current_node()
        if node is not None:
            QGuiApplication.clipboard().setText(node.path)

    def copy_selection(self) -> None:
        """Selected rows as tab-separated text (with the column headers)."""
        nodes = self.selected_nodes() or [n for n in [self.current_node()] if n]
        if not nodes:
            return
        lines = ["\t".join(HEADERS)]
        for node in nodes:
            index = self.model.index_of(node)
            cells = [node.path] + [
                str(self.model.data(index.siblingAtColumn(c)) or "") for c in range(1, len(HEADERS))
            ]
            lines.append("\t".join(cells))
        QGuiApplication.clipboard().setText("\n".join(lines) + "\n")

    def export_text(self, fmt: str) -> str:
        """The rows the filter shows (all rows without a filter) as json, csv or md."""
        nodes = (n for n in self.model.root.walk() if self.proxy.accepts(n))
        return export_tree(nodes, fmt)

    # -- helpers -------------------------------------------------------------------------------
    def _expand(self, node: ModuleNode) -> None:
        self.view.expand(self.proxy.mapFromSource(self.model.index_of(node)))

    def _size_columns(self) -> None:
        metrics = self.view.fontMetrics()
        header = self.view.header()
        header.setStretchLastSection(True)
        header.setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        widths = {
            Column.NAME: 250,
            Column.SHAPE: metrics.horizontalAdvance("152064 × 8192") + 12,
            Column.DTYPE: metrics.horizontalAdvance("F8_E4M3FNUZ") + 12,
            Column.PARAMETERS: metrics.horizontalAdvance("Parameters") + 24,
            Column.SIZE: metrics.horizontalAdvance("1023.9 MiB") + 40,
        }
        for column, width in widths.items():
            header.resizeSection(column, width)

    def _current_changed(self, current: QModelIndex, _previous: QModelIndex) -> None:
        node = self.proxy.mapToSource(current).internalPointer() if current.isValid() else None
        self.node_selected.emit(node)

    def _settled(self) -> None:
        if self._filter_pending:
            self._filter_pending = False
            if self.proxy.is_filtering and self.proxy.visible_count <= EXPAND_ALL_LIMIT:
                self.view.expandAll()
            elif not self.proxy.is_filtering:
                self.expand_default()
        self._update_count()
        if self._pending_select is not None and not self.model.busy:
            node, self._pending_select = self._pending_select, None
            self.select_node(node)

    def _update_count(self) -> None:
        total = self.model.root.tensor_count
        if self.proxy.is_filtering:
            shown = self.proxy.visible_tensor_count
            self.count_label.setText(f"{shown:,} of {total:,} tensors")
        else:
            self.count_label.setText(f"{total:,} tensors")

    def _context_menu(self, position: QPoint) -> None:
        menu = QMenu(self)
        menu.addAction("Copy name", self.copy_name)
        menu.addAction("Copy selection", self.copy_selection)
        menu.addSeparator()
        index = self.view.indexAt(position)
        if index.isValid():
            menu.addAction("Expand all below", lambda: self.view.expandRecursively(index))
        menu.addAction("Collapse all", self.view.collapseAll)
        node = self.proxy.mapToSource(index).internalPointer() if index.isValid() else None
        self.context_menu_requested.emit(menu, node)
        menu.exec(self.view.viewport().mapToGlobal(position))
