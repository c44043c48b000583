"""The main window: the shell that holds checkpoint tabs, menus, drops and settings.

It implements ``ckpt_gui.qt.shell.Shell``, the interface features are given; it
imports no feature. ``ckpt_gui.qt.app.build_window`` creates it and registers the
features (export, diff, scan, check, Hub, pickle risk) through that interface.
Of its own it offers what inspecting needs: opening files, folders, the demo and
recent targets, saving the tree as text, finding, copying, grouping and the tabs.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path

from PySide6.QtCore import QByteArray, QPoint, QSettings, Qt, Signal
from PySide6.QtGui import QAction, QCloseEvent, QDragEnterEvent, QDropEvent, QKeySequence
from PySide6.QtWidgets import (
    QDockWidget,
    QFileDialog,
    QMainWindow,
    QMenu,
    QMessageBox,
    QStackedWidget,
    QTabWidget,
    QWidget,
)

from ckpt_gui.core.tree.text_export import FORMATS, write_text_atomically
from ckpt_gui.qt.drops import targets_from_mime
from ckpt_gui.qt.inspect.checkpoint_tab import DEMO_TARGET, CheckpointTab
from ckpt_gui.qt.inspect.tree_panel import TreePanel
from ckpt_gui.qt.inspect.welcome import WelcomeView
from ckpt_gui.qt.runtime.disposable import dispose_of
from ckpt_gui.qt.runtime.gui_gc import (
    collect_garbage_on_gui_thread,
    release_long_lived,
    settle_long_lived,
)
from ckpt_gui.qt.runtime.workers import active_workers, shutdown_workers
from ckpt_gui.qt.shell import BusyCheck, CloseGuard, DropHandler, ShutdownHook, TabMenuEntries

MAX_RECENT = 12
FILE_FILTER = "Checkpoints (*.safetensors *.bin *.pt *.pth *.ckpt *.index.json);;All files (*)"


class MainWindow(QMainWindow):
    """``settings`` holds recent targets and geometry (None: remember nothing)."""

    tab_opened = Signal(object)  # CheckpointTab
    current_tab_changed = Signal(object)  # CheckpointTab | None

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
        self.welcome.demo_requested.connect(lambda: self.open_targets([DEMO_TARGET]))

        self._menus: dict[str, QMenu] = {}
        # What features contributed (see ckpt_gui.qt.shell), in registration order.
        self._tab_menu_entries: list[TabMenuEntries] = []
        self._drop_handlers: list[DropHandler] = []
        self._busy_checks: list[BusyCheck] = []
        self._close_guards: list[CloseGuard] = []
        self._shutdown_hooks: list[ShutdownHook] = []
        self._build_menus()
        # The one context-menu handler of the tab bar: a menu from every feature's entries.
        tab_bar = self.tab_widget.tabBar()
        tab_bar.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        tab_bar.customContextMenuRequested.connect(self._tab_context_menu)
        self._refresh_recent()
        self.statusBar().showMessage("Drop checkpoints, folders or Hub repo ids on the window")

    def restore_settings(self) -> None:
        """Geometry and dock layout as last saved: call once every feature's docks exist."""
        self._restore_geometry()

    # -- the Shell interface (ckpt_gui.qt.shell) ------------------------------------------------
    def main_widget(self) -> QMainWindow:
        return self

    def add_open_action(self, action: QAction) -> None:
        self.menu("&File").insertAction(self._demo_action, action)
        self.welcome.add_open_button(action.text().replace("&", ""), action.trigger)

    def add_tab_menu_entries(self, entries: TabMenuEntries) -> None:
        self._tab_menu_entries.append(entries)

    def add_drop_handler(self, handler: DropHandler) -> None:
        self._drop_handlers.append(handler)

    def add_busy_check(self, check: BusyCheck) -> None:
        self._busy_checks.append(check)

    def add_close_guard(self, guard: CloseGuard) -> None:
        self._close_guards.append(guard)

    def add_shutdown_hook(self, hook: ShutdownHook) -> None:
        self._shutdown_hooks.append(hook)

    def show_message(self, text: str, timeout_ms: int = 5000) -> None:
        self.statusBar().showMessage(text, timeout_ms)

    def add_page(self, page: QWidget, title: str, tooltip: str = "") -> None:
        index = self.tab_widget.addTab(page, title)
        if tooltip:
            self.tab_widget.setTabToolTip(index, tooltip)
        self.tab_widget.setCurrentIndex(index)
        self._update_stack()

    def close_page(self, page: QWidget) -> None:
        index = self.tab_widget.indexOf(page)
        if index >= 0:
            self.close_tab(index)

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

    def open_targets(self, targets: Sequence[str]) -> list[CheckpointTab]:
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
        dispose_of(widget)  # CheckpointTab, DiffView: stop their background work
        release_long_lived()
        if widget is not None:
            widget.deleteLater()
        self._update_stack()

    def is_idle(self) -> bool:
        """Nothing loading or computing (the screenshot mode waits for this)."""
        busy = any(check() for check in self._busy_checks) or any(t.is_busy for t in self.tabs())
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
            if not any(handler(targets, event) for handler in self._drop_handlers):
                self.open_targets(targets)
        else:
            event.ignore()

    # -- menus --------------------------------------------------------------------------------------
    def _build_menus(self) -> None:
        file_menu = self.menu("&File")
        self._action(file_menu, "&Open File…", self.open_file_dialog, "Ctrl+O")
        self._action(file_menu, "Open &Folder…", self.open_folder_dialog, "Ctrl+Shift+O")
        # Features' open actions (Open from Hub…) go before this one (add_open_action).
        self._demo_action = self._action(
            file_menu, "Open &Demo", lambda: self.open_targets([DEMO_TARGET])
        )
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
        self._action(edit_menu, "Copy &Name", self._on_tree(TreePanel.copy_name), "Ctrl+Shift+C")
        self._action(edit_menu, "Copy &Selection", self._on_tree(TreePanel.copy_selection))

        view_menu = self.menu("&View")
        self.group_action = self._action(view_menu, "&Group Repeated Blocks", self._toggle_group)
        self.group_action.setCheckable(True)
        self._action(view_menu, "&Expand All", self._on_tree(lambda t: t.view.expandAll()))
        self._action(view_menu, "&Collapse All", self._on_tree(lambda t: t.view.collapseAll()))
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

    def _on_tree(self, call: Callable[[TreePanel], object]) -> Callable[[], None]:
        """A slot that applies ``call`` to the current tab's tree (when there is one)."""

        def run() -> None:
            tab = self.current_tab()
            if tab is not None and tab.tree is not None:
                call(tab.tree)

        return run

    # -- actions ------------------------------------------------------------------------------------
    def open_file_dialog(self) -> None:
        files, _ = QFileDialog.getOpenFileNames(self, "Open checkpoint", "", FILE_FILTER)
        self.open_targets(files)

    def open_folder_dialog(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Open model folder")
        if folder:
            self.open_targets([folder])

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
        self.current_tab_changed.emit(tab)
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
        settle_long_lived()  # the tab's tree lives as long as the tab

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

    def tab_menu(self, index: int) -> QMenu | None:
        """The context menu of tab ``index``: every feature's entries, then Close Tab."""
        page = self.tab_widget.widget(index) if index >= 0 else None
        if page is None:
            return None
        menu = QMenu(self)
        for entries in self._tab_menu_entries:
            entries(menu, page)
            menu.addSeparator()  # between features; Qt hides doubled and trailing ones
        menu.addAction("Close Tab", lambda: self.close_page(page))
        return menu

    def _tab_context_menu(self, position: QPoint) -> None:
        bar = self.tab_widget.tabBar()
        menu = self.tab_menu(bar.tabAt(position))
        if menu is not None:
            menu.exec(bar.mapToGlobal(position))
            menu.deleteLater()

    def closeEvent(self, event: QCloseEvent) -> None:
        if not all(guard() for guard in self._close_guards):
            event.ignore()
            return
        for hook in self._shutdown_hooks:
            hook()
        if self.settings is not None:
            self.settings.setValue("geometry", self.saveGeometry())
            self.settings.setValue("dock_state", self.saveState())
            self.settings.sync()
        shutdown_workers(3000)
        super().closeEvent(event)
