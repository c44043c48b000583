"""The main window: tabs of checkpoints (or the welcome view), menus, drops, settings.

Extending the window (export, comparison, Hub library):

* ``window.menu("&Export")`` returns the top-level menu with that title, creating it
  before Help if needed; add QActions to it.
* ``window.add_dock(dock, area)`` adds a QDockWidget and a toggle for it in View.
* ``window.tab_opened(CheckpointTab)`` fires for every new tab; ``current_tab()`` and
  ``tabs()`` give access to them; ``open_targets([...])`` opens paths or repo ids.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import QByteArray, QSettings, Qt, Signal
from PySide6.QtGui import QAction, QCloseEvent, QDragEnterEvent, QDropEvent, QKeySequence
from PySide6.QtWidgets import (
    QDialog,
    QDockWidget,
    QFileDialog,
    QMainWindow,
    QMenu,
    QMessageBox,
    QStackedWidget,
    QTabWidget,
)

from ckpt_gui.core.tree.text_export import FORMATS, write_text_atomically
from ckpt_gui.qt.check.controller import install_compare
from ckpt_gui.qt.diff.actions import install_compare_scan
from ckpt_gui.qt.drops import targets_from_mime
from ckpt_gui.qt.export.controller import install_exports
from ckpt_gui.qt.hub.hub_dialog import OpenFromHubDialog
from ckpt_gui.qt.hub.library import LibraryDock
from ckpt_gui.qt.inspect.checkpoint_tab import DEMO_TARGET, CheckpointTab
from ckpt_gui.qt.inspect.welcome import WelcomeView
from ckpt_gui.qt.memory import feature as memory_feature
from ckpt_gui.qt.runtime.gui_gc import collect_garbage_on_gui_thread
from ckpt_gui.qt.runtime.workers import active_workers, shutdown_workers

MAX_RECENT = 12
FILE_FILTER = "Checkpoints (*.safetensors *.bin *.pt *.pth *.ckpt *.index.json);;All files (*)"


class MainWindow(QMainWindow):
    """``settings`` holds recent targets and geometry (None: remember nothing)."""

    tab_opened = Signal(object)

    def __init__(self, settings: QSettings | None = None) -> None:
        super().__init__()
        # Reference cycles holding widgets must never be collected on a Worker thread.
        collect_garbage_on_gui_thread()
        self.settings = settings
        self.setWindowTitle("ckpt-gui")
        self.setAcceptDrops(True)
        self.resize(1280, 800)

        self.welcome = WelcomeView()
        self.tab_widget = QTabWidget()
        self.tab_widget.setTabsClosable(True)
        self.tab_widget.setMovable(True)
        self.tab_widget.setDocumentMode(True)
        self.tab_widget.tabCloseRequested.connect(self.close_tab)
        self.tab_widget.currentChanged.connect(self._current_changed)
        self._stack = QStackedWidget()
        self._stack.addWidget(self.welcome)
        self._stack.addWidget(self.tab_widget)
        self.setCentralWidget(self._stack)

        self.welcome.open_requested.connect(lambda target: self.open_targets([target]))
        self.welcome.open_file_requested.connect(self.open_file_dialog)
        self.welcome.open_folder_requested.connect(self.open_folder_dialog)
        self.welcome.open_hub_requested.connect(self.open_hub_dialog)
        self.welcome.demo_requested.connect(lambda: self.open_targets([DEMO_TARGET]))

        self._menus: dict[str, QMenu] = {}
        # Callables (targets, event) -> bool that may take over a drop (e.g. "compare").
        self.drop_handlers: list[Callable[[list[str], QDropEvent], bool]] = []
        self._build_menus()
        # The local Hugging Face cache; scanned in the background when first shown.
        self.library = LibraryDock()
        self.library.open_requested.connect(lambda path: self.open_targets([path]))
        self.add_dock(self.library, Qt.DockWidgetArea.LeftDockWidgetArea)
        self.resizeDocks([self.library], [400], Qt.Orientation.Horizontal)
        # Hidden until asked for (View > Library): the tree needs the width more. The saved
        # dock state brings it back for users who keep it open.
        self.library.hide()
        self.exports = install_exports(self)  # Export menu, Jobs dock, quit guard
        self._restore_geometry()
        self._refresh_recent()
        install_compare_scan(self)
        install_compare(self)
        self.memory = memory_feature.register(self)
        self.statusBar().showMessage("Drop checkpoints, folders or Hub repo ids on the window")

    # -- extension API -----------------------------------------------------------------------
    def menu(self, title: str) -> QMenu:
        """The top-level menu ``title`` (e.g. "&Export"), created before Help if missing."""
        if title not in self._menus:
            menu = QMenu(title, self)
            help_menu = self._menus.get("&Help")
            bar = self.menuBar()
            if help_menu is not None:
                bar.insertMenu(help_menu.menuAction(), menu)
            else:
                bar.addMenu(menu)
            self._menus[title] = menu
        return self._menus[title]

    def add_dock(
        self, dock: QDockWidget, area: Qt.DockWidgetArea = Qt.DockWidgetArea.RightDockWidgetArea
    ) -> None:
        """Add a dock and a View menu entry that shows/hides it."""
        if not dock.objectName():
            dock.setObjectName(dock.windowTitle() or "dock")
        self.addDockWidget(area, dock)
        self.menu("&View").addAction(dock.toggleViewAction())

    # -- tabs --------------------------------------------------------------------------------------
    def tabs(self) -> list[CheckpointTab]:
        count = self.tab_widget.count()
        return [
            w for i in range(count) if isinstance(w := self.tab_widget.widget(i), CheckpointTab)
        ]

    def current_tab(self) -> CheckpointTab | None:
        widget = self.tab_widget.currentWidget()
        return widget if isinstance(widget, CheckpointTab) else None

    def open_targets(self, targets: list[str]) -> list[CheckpointTab]:
        """Open each target in its own tab (an already open one is brought forward)."""
        opened: list[CheckpointTab] = []
        for target in targets:
            existing = next((t for t in self.tabs() if t.target == target), None)
            if existing is not None:
                self.tab_widget.setCurrentWidget(existing)
                continue
            tab = CheckpointTab(target)
            tab.loaded.connect(lambda _cp, tab=tab: self._tab_loaded(tab))
            tab.failed.connect(lambda message, tab=tab: self._tab_failed(tab, message))
            tab.downloaded.connect(lambda _snapshot: self.library.refresh())
            index = self.tab_widget.addTab(tab, tab.title)
            self.tab_widget.setTabToolTip(index, target)
            self.tab_widget.setCurrentIndex(index)
            opened.append(tab)
            self.tab_opened.emit(tab)
        self._update_stack()
        return opened

    def close_tab(self, index: int) -> None:
        widget = self.tab_widget.widget(index)
        self.tab_widget.removeTab(index)
        dispose = getattr(widget, "dispose", None)
        if callable(dispose):  # CheckpointTab, DiffView: stop their background work
            dispose()
        if widget is not None:
            widget.deleteLater()
        self._update_stack()

    def is_idle(self) -> bool:
        """Nothing loading or computing (the screenshot mode waits for this)."""
        busy = self.library.is_busy or any(tab.is_busy for tab in self.tabs())
        return not active_workers() and not busy

    # -- drag and drop ---------------------------------------------------------------------------
    def dragEnterEvent(self, event: QDragEnterEvent) -> None:
        if targets_from_mime(event.mimeData()):
            event.acceptProposedAction()
        else:
            event.ignore()

    def dragMoveEvent(self, event: QDragEnterEvent) -> None:  # type: ignore[override]
        event.acceptProposedAction()

    def dropEvent(self, event: QDropEvent) -> None:
        targets = targets_from_mime(event.mimeData())
        if targets:
            event.acceptProposedAction()
            if not any(handler(targets, event) for handler in self.drop_handlers):
                self.open_targets(targets)
        else:
            event.ignore()

    # -- menus --------------------------------------------------------------------------------------
    def _build_menus(self) -> None:
        file_menu = self.menu("&File")
        self._action(file_menu, "&Open File…", self.open_file_dialog, "Ctrl+O")
        self._action(file_menu, "Open &Folder…", self.open_folder_dialog, "Ctrl+Shift+O")
        self.hub_action = self._action(
            file_menu, "Open from &Hub…", self.open_hub_dialog, "Ctrl+Shift+H"
        )
        self._action(file_menu, "Open &Demo", lambda: self.open_targets([DEMO_TARGET]))
        self.recent_menu = file_menu.addMenu("Open &Recent")
        file_menu.addSeparator()
        save_tree = file_menu.addMenu("&Save Tree As")
        for fmt, label in FORMATS.items():
            self._action(save_tree, f"{label}…", lambda fmt=fmt: self.save_tree_dialog(fmt))
        file_menu.addSeparator()
        self._action(file_menu, "&Reload", self.reload_current, "F5")
        self._action(file_menu, "&Close Tab", self.close_current, "Ctrl+W")
        self._action(file_menu, "&Quit", self.close, "Ctrl+Q")

        edit_menu = self.menu("&Edit")
        self._action(edit_menu, "&Find…", self.focus_filter, "Ctrl+F")
        self._action(edit_menu, "Copy &Name", self._on_tree("copy_name"), "Ctrl+Shift+C")
        self._action(edit_menu, "Copy &Selection", self._on_tree("copy_selection"))

        view_menu = self.menu("&View")
        self.group_action = self._action(view_menu, "&Group Repeated Blocks", self._toggle_group)
        self.group_action.setCheckable(True)
        self._action(view_menu, "&Expand All", self._on_tree_view("expandAll"))
        self._action(view_menu, "&Collapse All", self._on_tree_view("collapseAll"))
        view_menu.addSeparator()

        help_menu = self.menu("&Help")
        self._action(help_menu, "&About ckpt-gui", self._about)

    def _action(
        self,
        menu: QMenu,
        text: str,
        slot: object,
        shortcut: QKeySequence.StandardKey | str | None = None,
    ) -> QAction:
        action = QAction(text, self)
        action.triggered.connect(slot)
        if shortcut is not None:
            action.setShortcut(QKeySequence(shortcut))
        menu.addAction(action)
        return action

    def _on_tree(self, method: str) -> object:
        def run() -> None:
            tab = self.current_tab()
            if tab is not None and tab.tree is not None:
                getattr(tab.tree, method)()

        return run

    def _on_tree_view(self, method: str) -> object:
        def run() -> None:
            tab = self.current_tab()
            if tab is not None and tab.tree is not None:
                getattr(tab.tree.view, method)()

        return run

    # -- actions ------------------------------------------------------------------------------------
    def open_file_dialog(self) -> None:
        files, _ = QFileDialog.getOpenFileNames(self, "Open checkpoint", "", FILE_FILTER)
        self.open_targets(files)

    def open_folder_dialog(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Open model folder")
        if folder:
            self.open_targets([folder])

    def open_hub_dialog(self) -> OpenFromHubDialog:
        """Ask for ``org/name[@rev]`` or a Hub URL; the answer opens in a tab.

        Window-modal but not blocking (``open()``), so callers and tests get the dialog.
        """
        dialog = OpenFromHubDialog(self)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.finished.connect(
            lambda result: (
                self.open_targets([dialog.target()])
                if result == QDialog.DialogCode.Accepted
                else None
            )
        )
        dialog.open()
        return dialog

    def save_tree_dialog(self, fmt: str) -> None:
        tab = self.current_tab()
        if tab is None or tab.tree is None:
            return
        suggested = f"{Path(tab.title).stem or 'tree'}-tree.{fmt}"
        path, _ = QFileDialog.getSaveFileName(
            self, "Save tree", suggested, f"{FORMATS[fmt]} (*.{fmt})"
        )
        if path:
            write_text_atomically(Path(path), tab.tree.export_text(fmt))
            self.statusBar().showMessage(f"Saved {path}", 5000)

    def reload_current(self) -> None:
        tab = self.current_tab()
        if tab is not None:
            tab.reload()

    def close_current(self) -> None:
        if self.tab_widget.count():
            self.close_tab(self.tab_widget.currentIndex())

    def focus_filter(self) -> None:
        tab = self.current_tab()
        if tab is not None and tab.tree is not None:
            tab.tree.filter_edit.setFocus()
            tab.tree.filter_edit.selectAll()

    def _toggle_group(self, checked: bool) -> None:
        tab = self.current_tab()
        if tab is not None and tab.tree is not None:
            tab.tree.set_grouped(checked)

    def _about(self) -> None:
        from ckpt_gui import __version__

        QMessageBox.about(
            self,
            "About ckpt-gui",
            f"<b>ckpt-gui {__version__}</b><br>Inspect, compare and convert PyTorch and "
            "Hugging Face checkpoints without loading the weights.",
        )

    # -- state ----------------------------------------------------------------------------------------
    def _update_stack(self) -> None:
        has_tabs = self.tab_widget.count() > 0
        self._stack.setCurrentIndex(1 if has_tabs else 0)
        if not has_tabs:
            self._refresh_recent()
            self.setWindowTitle("ckpt-gui")

    def _current_changed(self, _index: int) -> None:
        tab = self.current_tab()
        if tab is not None:
            self.setWindowTitle(f"{tab.title} — ckpt-gui")
            grouped = tab.tree is not None and tab.tree.group_box.isChecked()
            self.group_action.setChecked(grouped)

    def _tab_loaded(self, tab: CheckpointTab) -> None:
        if tab.target != DEMO_TARGET:
            self._remember(tab.target)
        if tab.tree is not None:
            tab.tree.group_box.toggled.connect(lambda on, tab=tab: self._group_toggled(tab, on))
        self.statusBar().showMessage(f"Opened {tab.target}", 5000)

    def _group_toggled(self, tab: CheckpointTab, grouped: bool) -> None:
        if tab is self.current_tab():
            self.group_action.setChecked(grouped)

    def _tab_failed(self, tab: CheckpointTab, message: str) -> None:
        self.statusBar().showMessage(message, 10000)

    def _remember(self, target: str) -> None:
        if self.settings is None:
            return
        if not ("/" in target and not os.path.exists(target)):
            target = str(Path(target).resolve())
        recent = [target] + [t for t in self.recent_targets() if t != target]
        self.settings.setValue("recent", recent[:MAX_RECENT])
        self._refresh_recent()

    def recent_targets(self) -> list[str]:
        if self.settings is None:
            return []
        value = self.settings.value("recent", [])
        if isinstance(value, str):
            return [value]
        return [str(v) for v in value] if isinstance(value, list) else []

    def _refresh_recent(self) -> None:
        recent = self.recent_targets()
        self.welcome.set_recent(recent)
        self.recent_menu.clear()
        for target in recent:
            action = self.recent_menu.addAction(target)
            action.triggered.connect(lambda _=False, t=target: self.open_targets([t]))
        self.recent_menu.setEnabled(bool(recent))

    def _restore_geometry(self) -> None:
        if self.settings is not None:
            geometry = self.settings.value("geometry")
            if isinstance(geometry, QByteArray | bytes):
                self.restoreGeometry(QByteArray(geometry))
            state = self.settings.value("dock_state")
            if isinstance(state, QByteArray | bytes):
                self.restoreState(QByteArray(state))

    def closeEvent(self, event: QCloseEvent) -> None:
        if self.settings is not None:
            self.settings.setValue("geometry", self.saveGeometry())
            self.settings.setValue("dock_state", self.saveState())
            self.settings.sync()
        shutdown_workers(3000)
        super().closeEvent(event)
