"""Wires comparison, scanning and pickle risk into the main window.

``install_compare_scan(window)`` (called by MainWindow) adds:

* an **Analyze** menu and a tab-bar context menu: "Compare With…" (a file, a
  folder or a Hub repo id) and "Scan All Tensors";
* a drop handler: one checkpoint dropped while a loaded tab is shown asks
  "Open in New Tab" / "Compare with <tab>" (a non-blocking popup); with Ctrl or
  Alt held it compares at once;
* for tabs whose pickle was refused (UnsafePickleError), the pickle-risk view
  under the error line.

Comparisons open as their own tab (``DiffView``) and colour the compared tab's
tree (``changed`` / ``only_in_a``); scans add a "Scan" panel under the tree.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, cast

from PySide6.QtCore import QObject, QPoint, Qt
from PySide6.QtGui import QAction, QDropEvent, QKeySequence
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QMenu,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from ckpt_gui.core.errors import UnsafePickleError
from ckpt_gui.core.tree.build import ModuleNode
from ckpt_gui.qt.diff.diff_view import DiffView
from ckpt_gui.qt.drops import hub_target
from ckpt_gui.qt.inspect.checkpoint_tab import CheckpointTab
from ckpt_gui.qt.pickles.risk_view import UnsafePickleView
from ckpt_gui.qt.scan.scan_panel import ScanPanel

if TYPE_CHECKING:
    from ckpt_gui.qt.main_window import MainWindow

FILE_FILTER = "Checkpoints (*.safetensors *.bin *.pt *.pth *.ckpt *.index.json);;All files (*)"
REVEAL_LIMIT = 40  # rows the tree opens up to after a scan or diff
COMPARE_MODIFIERS = Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.AltModifier


class CompareTargetDialog(QDialog):
    """Pick B: type a path or a Hub repo id, or browse for a file or a folder."""

    def __init__(self, a_title: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Compare with checkpoint")
        self.setMinimumWidth(520)
        self.edit = QLineEdit()
        self.edit.setPlaceholderText("A file, a model folder, or a Hub repo id (org/name)")
        file_button = QPushButton("File…")
        folder_button = QPushButton("Folder…")
        file_button.clicked.connect(self._pick_file)
        folder_button.clicked.connect(self._pick_folder)
        row = QHBoxLayout()
        row.addWidget(self.edit, 1)
        row.addWidget(file_button)
        row.addWidget(folder_button)
        buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel
        )
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(QLabel(f"Compare <b>{a_title}</b> (A) with (B):"))
        layout.addLayout(row)
        hint = QLabel(
            "A Hub repo is compared by structure only (its values are not on this machine)."
        )
        hint.setStyleSheet("color: #777;")
        layout.addWidget(hint)
        layout.addWidget(buttons)

    def target(self) -> str:
        text = self.edit.text().strip()
        return (hub_target(text) or text) if text else ""

    def _pick_file(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Compare with file", "", FILE_FILTER)
        if path:
            self.edit.setText(path)

    def _pick_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Compare with folder")
        if folder:
            self.edit.setText(folder)


def ask_compare_target(parent: QWidget, a_title: str) -> str:
    """The B target the user chose ("" when cancelled). Tests replace this."""
    dialog = CompareTargetDialog(a_title, parent)
    return dialog.target() if dialog.exec() == QDialog.DialogCode.Accepted else ""


class CompareScanActions(QObject):
    """The window's comparison / scan / pickle-risk glue (see the module doc)."""

    def __init__(self, window: MainWindow) -> None:
        super().__init__(window)
        self.drop_menu: QMenu | None = None  # the last drop prompt (tests trigger its actions)
        menu = window.menu("&Analyze")
        self.compare_action = self._action(menu, "&Compare With…", self.compare_current, "Ctrl+D")
        self.scan_action = self._action(
            menu, "&Scan All Tensors", self.scan_current, "Ctrl+Shift+S"
        )
        bar = window.tab_widget.tabBar()
        bar.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        bar.customContextMenuRequested.connect(self._tab_context_menu)
        window.tab_opened.connect(self._watch_tab)
        window.drop_handlers.append(self._handle_drop)

    @property
    def window(self) -> MainWindow:
        # Through the Qt parent, not an attribute: window.compare_scan -> self -> window
        # would be a reference cycle, and the garbage collector may then destroy the
        # window on whichever thread it runs, a worker's included (a crash).
        return cast("MainWindow", self.parent())

    # -- public API ----------------------------------------------------------------------
    def compare(self, tab: CheckpointTab, b_target: str) -> DiffView:
        """Open a diff of ``tab``'s checkpoint (A) with ``b_target`` (B) in a new tab."""
        view = DiffView(tab.target, b_target, a=tab.checkpoint)
        view.statuses_ready.connect(lambda statuses, tab=tab: self._colour_tree(tab, statuses))
        widget = self.window.tab_widget
        index = widget.addTab(view, view.title)
        widget.setTabToolTip(index, f"A: {tab.target}\nB: {b_target}")
        widget.setCurrentIndex(index)
        self.window._update_stack()
        return view

    def scan(self, tab: CheckpointTab, target_dtype: str = "") -> ScanPanel | None:
        """Show the tab's Scan panel (created on first use) and start a scan.

        ``target_dtype`` ("F16", "BF16", "F8_E4M3", "F8_E5M2", "none"; "" keeps the
        panel's choice) sets what counts as extreme.
        """
        if tab.checkpoint is None:
            self.window.statusBar().showMessage("Open the checkpoint before scanning it", 5000)
            return None
        panel = tab.findChild(ScanPanel)
        if panel is None:
            panel = ScanPanel(tab.checkpoint)
            panel.statuses_ready.connect(lambda statuses, tab=tab: self._colour_tree(tab, statuses))
            panel.tensor_activated.connect(lambda name, tab=tab: select_tensor(tab, name))
            tab.add_panel(panel, "Scan")
        tab.show_panel(panel)
        if target_dtype:
            panel.set_target_dtype(None if target_dtype.lower() == "none" else target_dtype)
        panel.start()
        return panel

    def compare_current(self) -> None:
        tab = self.window.current_tab()
        if tab is None or tab.checkpoint is None:
            self.window.statusBar().showMessage("Open a checkpoint to compare it", 5000)
            return
        target = ask_compare_target(self.window, tab.title)
        if target:
            self.compare(tab, target)

    def scan_current(self) -> None:
        tab = self.window.current_tab()
        if tab is not None:
            self.scan(tab)

    def when_loaded(self, tab: CheckpointTab, action: str, argument: str = "") -> None:
        """Compare (``argument`` = B) or scan (``argument`` = target dtype or "") once
        ``tab`` has loaded: the command line's ``--compare`` / ``--scan``."""

        def run() -> None:
            if action == "compare":
                self.compare(tab, argument)
            else:
                self.scan(tab, argument)

        if tab.checkpoint is not None:
            run()
        else:
            tab.loaded.connect(lambda _cp: run(), Qt.ConnectionType.SingleShotConnection)

    # -- hooks -------------------------------------------------------------------------------
    def _watch_tab(self, tab: CheckpointTab) -> None:
        tab.failed.connect(lambda _message, tab=tab: self._explain_failure(tab))

    def _explain_failure(self, tab: CheckpointTab) -> None:
        if isinstance(tab.exception, UnsafePickleError):
            from pathlib import Path

            if Path(tab.target).expanduser().exists():
                tab.set_error_details(UnsafePickleView(tab.target))

    def _colour_tree(self, tab: CheckpointTab, statuses: dict[str, str]) -> None:
        if tab in self.window.tabs():  # the tab may have been closed meanwhile
            tab.set_row_status(statuses)
            reveal_rows(tab, list(statuses))

    def _handle_drop(self, targets: list[str], event: QDropEvent) -> bool:
        tab = self.window.current_tab()
        if len(targets) != 1 or tab is None or tab.checkpoint is None or targets[0] == tab.target:
            return False
        target = targets[0]
        if event.modifiers() & COMPARE_MODIFIERS:
            self.compare(tab, target)
            return True
        menu = QMenu(self.window)
        menu.addAction("Open in New Tab", lambda: self.window.open_targets([target]))
        menu.addAction(f"Compare with “{tab.title}”", lambda: self.compare(tab, target))
        menu.addSeparator()
        menu.addAction("Cancel")
        self.drop_menu = menu
        position = self.window.mapToGlobal(event.position().toPoint())
        menu.popup(position)  # not exec(): a drop must never block the event loop
        return True

    def tab_menu(self, index: int) -> QMenu | None:
        """The context menu of tab ``index`` (None when there is no such tab)."""
        widget = self.window.tab_widget.widget(index) if index >= 0 else None
        if widget is None:
            return None
        menu = QMenu(self.window)
        if isinstance(widget, CheckpointTab) and widget.checkpoint is not None:
            tab = widget

            def compare() -> None:
                target = ask_compare_target(self.window, tab.title)
                if target:
                    self.compare(tab, target)

            menu.addAction("Compare With…", compare)
            menu.addAction("Scan All Tensors", lambda: self.scan(tab))
            menu.addSeparator()
        menu.addAction(
            "Close Tab", lambda: self.window.close_tab(self.window.tab_widget.indexOf(widget))
        )
        return menu

    def _tab_context_menu(self, position: QPoint) -> None:
        bar = self.window.tab_widget.tabBar()
        menu = self.tab_menu(bar.tabAt(position))
        if menu is not None:
            menu.exec(bar.mapToGlobal(position))
            menu.deleteLater()

    def _action(self, menu: QMenu, text: str, slot: object, shortcut: str) -> QAction:
        action = QAction(text, self.window)
        action.triggered.connect(slot)
        action.setShortcut(QKeySequence(shortcut))
        menu.addAction(action)
        return action


def select_tensor(tab: CheckpointTab, name: str) -> None:
    """Select the tree row of tensor ``name`` (clearing a filter that hides it)."""
    if tab.tree is None:
        return
    node = find_node(tab.tree.model.root, name)
    if node is None:
        return
    if tab.tree.proxy.is_filtering and not tab.tree.proxy.accepts(node):
        tab.tree.filter_edit.clear()
        tab.tree.apply_filter()
    tab.tree.select_node(node)


def reveal_rows(tab: CheckpointTab, names: list[str], limit: int = REVEAL_LIMIT) -> None:
    """Expand the tree down to the given tensors (the first ``limit``), so they are seen."""
    if tab.tree is None or not names:
        return
    wanted = set(names[:limit])
    tree = tab.tree
    for node in tree.model.root.walk():
        if node.path in wanted:
            parent = node.parent
            while parent is not None and parent is not tree.model.root:
                tree.view.expand(tree.proxy.mapFromSource(tree.model.index_of(parent)))
                parent = parent.parent


def find_node(root: ModuleNode, path: str) -> ModuleNode | None:
    return next((node for node in root.walk() if node.path == path), None)


def install_compare_scan(window: MainWindow) -> CompareScanActions:
    window.compare_scan = CompareScanActions(window)  # type: ignore[attr-defined]
    return window.compare_scan  # type: ignore[attr-defined,no-any-return]
