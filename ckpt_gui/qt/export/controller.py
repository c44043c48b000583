"""Wires exports into the main window: Export menu, context menus, Jobs dock, quit guard.

``install_exports(window)`` is called once by the window; it returns the
``ExportController`` (kept as ``window.exports``). Other features open the dialog
with ``window.exports.open_dialog(kind, source=..., subtree=..., renames=...)``.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QEvent, QObject, QPoint, Qt
from PySide6.QtWidgets import QMenu, QMessageBox

from ckpt_gui.qt.export.export_dialog import KINDS, ExportDialog
from ckpt_gui.qt.export.job_queue import ExportJob, JobQueue
from ckpt_gui.qt.export.jobs_dock import JobsDock

if TYPE_CHECKING:
    from ckpt_gui.qt.inspect.checkpoint_tab import CheckpointTab
    from ckpt_gui.qt.main_window import MainWindow

QUIT_WAIT_MS = 60_000  # a cancelled job stops at its next 16 MB; cleanup is one rmtree
CHECKPOINT_KINDS = ("convert", "reshard", "safetensors")


def tab_source(tab: CheckpointTab | None) -> str:
    """The local path a tab's checkpoint was read from ('' when there is none)."""
    if tab is None:
        return ""
    checkpoint = tab.checkpoint
    if checkpoint is not None and checkpoint.root is not None:
        source = Path(checkpoint.source).expanduser()
        return str(source if source.exists() else checkpoint.root)
    return tab.target if Path(tab.target).expanduser().exists() else ""


def config_source(tab: CheckpointTab | None) -> str:
    """For random init: the tab's folder when it holds a config.json."""
    source = tab_source(tab)
    if not source:
        return ""
    path = Path(source)
    folder = path if path.is_dir() else path.parent
    return str(folder) if (folder / "config.json").is_file() else ""


class ExportController(QObject):
    """Owns the job queue, the Jobs dock and the open dialogs of one window."""

    def __init__(self, window: MainWindow) -> None:
        super().__init__(window)
        self.window = window
        self.queue = JobQueue(self)
        self.dock = JobsDock(self.queue, window)
        self.dock.open_in_tab_requested.connect(lambda path: window.open_targets([path]))
        window.add_dock(self.dock, Qt.DockWidgetArea.BottomDockWidgetArea)
        self.dock.hide()  # until the first job
        self.dialogs: list[ExportDialog] = []
        self._build_menu()
        tab_bar = window.tab_widget.tabBar()
        tab_bar.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        tab_bar.customContextMenuRequested.connect(self._tab_context_menu)
        window.tab_opened.connect(self._watch_tab)
        window.installEventFilter(self)

    # -- public ---------------------------------------------------------------------------------
    def open_dialog(
        self,
        kind: str = "convert",
        *,
        source: str | None = None,
        subtree: str | None = None,
        renames: Iterable[Any] = (),
        tab: CheckpointTab | None = None,
    ) -> ExportDialog:
        """Show a (non-modal) export dialog, prefilled from ``tab`` or the current tab."""
        tab = tab if tab is not None else self.window.current_tab()
        if source is None:
            source = config_source(tab) if kind == "random-init" else tab_source(tab)
        base = ""
        adapter = tab.checkpoint.adapter if tab is not None and tab.checkpoint else None
        if kind == "merge-lora" and adapter is not None:
            base = adapter.base_path or ""  # found on this machine (core.adapters.base)
        dialog = ExportDialog(
            kind, source, subtree=subtree, renames=renames, base=base, parent=self.window
        )
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.start_requested.connect(self.start)
        dialog.finished.connect(lambda _result, d=dialog: self._forget(d))
        self.dialogs.append(dialog)
        dialog.show()
        return dialog

    def start(self, dialog: ExportDialog) -> ExportJob | None:
        """Queue the dialog's planned job and show the dock."""
        if dialog.plan is None:
            return None
        job = self.queue.submit(ExportJob(dialog.plan, dialog.export_options()))
        self.show_jobs()
        return job

    def show_jobs(self) -> None:
        self.dock.show()
        self.dock.raise_()

    # -- menus ----------------------------------------------------------------------------------
    def _build_menu(self) -> None:
        menu = self.window.menu("&Export")
        for kind in (*CHECKPOINT_KINDS, "random-init", "merge-lora"):
            action = menu.addAction(f"{KINDS[kind]}…")
            action.triggered.connect(lambda _=False, kind=kind: self.open_dialog(kind))
        menu.addSeparator()
        jobs = menu.addAction("Show &Jobs")
        jobs.triggered.connect(self.show_jobs)

    def _tab_context_menu(self, position: QPoint) -> None:
        tab_bar = self.window.tab_widget.tabBar()
        index = tab_bar.tabAt(position)
        widget = self.window.tab_widget.widget(index) if index >= 0 else None
        tab = widget if widget in self.window.tabs() else None
        if tab is None:
            return
        menu = self.tab_menu(tab)
        menu.exec(tab_bar.mapToGlobal(position))

    def tab_menu(self, tab: CheckpointTab) -> QMenu:
        """The tab's context menu: each export of this checkpoint."""
        menu = QMenu(self.window)
        if tab.checkpoint is not None and tab.checkpoint.adapter is not None:
            action = menu.addAction(f"{KINDS['merge-lora']}…")
            action.triggered.connect(lambda _=False, t=tab: self.open_dialog("merge-lora", tab=t))
        for kind in CHECKPOINT_KINDS:
            action = menu.addAction(f"{KINDS[kind]}…")
            action.triggered.connect(lambda _=False, k=kind, t=tab: self.open_dialog(k, tab=t))
        action = menu.addAction(f"{KINDS['random-init']}…")
        action.triggered.connect(lambda _=False, t=tab: self.open_dialog("random-init", tab=t))
        action.setEnabled(bool(config_source(tab)))
        return menu

    def _watch_tab(self, tab: CheckpointTab) -> None:
        # The tree panel is built when the tab has loaded, again after each reload.
        tab.loaded.connect(lambda _checkpoint, tab=tab: self._hook_tree(tab))

    def _hook_tree(self, tab: CheckpointTab) -> None:
        tree = tab.tree
        if tree is None or getattr(tree, "_export_hooked", False):
            return
        tree._export_hooked = True  # type: ignore[attr-defined]
        tree.context_menu_requested.connect(
            lambda menu, node, tab=tab: self._add_subtree_action(tab, menu, node)
        )

    def _add_subtree_action(self, tab: CheckpointTab, menu: QMenu, node: Any) -> None:
        path = getattr(node, "path", "")
        if not path:
            return
        menu.addSeparator()
        action = menu.addAction("Export this subtree…")
        action.triggered.connect(
            lambda _=False: self.open_dialog("safetensors", subtree=path, tab=tab)
        )

    # -- quitting -------------------------------------------------------------------------------
    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if watched is self.window and event.type() == QEvent.Type.Close:
            if self.queue.needs_confirmation() and not self.confirm_quit():
                event.ignore()
                return True
            self.shutdown()
        return False

    def confirm_quit(self) -> bool:
        """Ask whether to cancel the jobs and quit; False keeps the window open."""
        running = 1 if self.queue.running is not None else 0
        queued = len(self.queue.queued)
        parts = []
        if running:
            parts.append("an export is running")
        if queued:
            parts.append(f"{queued} more {'is' if queued == 1 else 'are'} queued")
        box = QMessageBox(self.window)
        box.setIcon(QMessageBox.Icon.Question)
        box.setWindowTitle("Export jobs")
        box.setText(" and ".join(parts).capitalize() + ".")
        box.setInformativeText("Quitting cancels them; cancelled exports leave no partial output.")
        quit_button = box.addButton("Cancel jobs and quit", QMessageBox.ButtonRole.DestructiveRole)
        keep = box.addButton("Keep running", QMessageBox.ButtonRole.RejectRole)
        box.setDefaultButton(keep)
        box.exec()
        return box.clickedButton() is quit_button

    def shutdown(self) -> None:
        """Cancel every job and wait, so that no partial output is left behind."""
        self.queue.cancel_all()
        self.queue.wait(QUIT_WAIT_MS)
        for dialog in list(self.dialogs):
            dialog.close()

    def _forget(self, dialog: ExportDialog) -> None:
        if dialog in self.dialogs:
            self.dialogs.remove(dialog)


def install_exports(window: MainWindow) -> ExportController:
    return ExportController(window)
