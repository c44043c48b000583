"""The export feature: Export menu, tab and tree context-menu entries, Jobs dock, quit guard.

``ckpt_gui.qt.export.feature.register(shell)`` creates one ``ExportController``.
Other features get it as their ``ExportService`` (``export_with_renames``); the
app and tests may call ``open_dialog(kind, source=..., subtree=..., renames=...)``.
"""

from __future__ import annotations

import weakref
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QObject, Qt
from PySide6.QtWidgets import QMenu, QMessageBox, QWidget

from ckpt_gui.core.formats.distributed.checkpoint import tag_choice
from ckpt_gui.core.tree.build import ModuleNode
from ckpt_gui.qt.export.bridge import export_rename
from ckpt_gui.qt.export.export_dialog import KINDS, ExportDialog
from ckpt_gui.qt.export.job_queue import ExportJob, JobQueue
from ckpt_gui.qt.export.jobs_dock import JobsDock
from ckpt_gui.qt.inspect.checkpoint_tab import CheckpointTab
from ckpt_gui.qt.inspect.tree_panel import TreePanel

if TYPE_CHECKING:
    from ckpt_gui.qt.shell import Shell

QUIT_WAIT_MS = 60_000  # a cancelled job stops at its next 16 MB; cleanup is one rmtree
CHECKPOINT_KINDS = ("convert", "reshard", "safetensors")
GGUF_KIND = "gguf-safetensors"


def is_gguf_tab(tab: CheckpointTab | None) -> bool:
    checkpoint = tab.checkpoint if tab is not None else None
    return checkpoint is not None and checkpoint.format == "gguf"


def tab_source(tab: CheckpointTab | None) -> str:
    """The local path a tab's checkpoint was read from ('' when there is none)."""
    if tab is None:
        return ""
    checkpoint = tab.checkpoint
    if checkpoint is not None and checkpoint.root is not None:
        source = Path(checkpoint.source).expanduser()
        return str(source if source.exists() else checkpoint.root)
    return tab.target if Path(tab.target).expanduser().exists() else ""


def tab_tag(tab: CheckpointTab | None) -> str | None:
    """The DeepSpeed tag a tab shows when it was opened on the folder holding the tags."""
    checkpoint = tab.checkpoint if tab is not None else None
    choice = tag_choice(checkpoint) if checkpoint is not None else None
    return choice.tag if choice is not None and not choice.step_folder else None


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

    def __init__(self, shell: Shell) -> None:
        super().__init__(shell.main_widget())
        self.shell = shell
        self.queue = JobQueue(self)
        self.dock = JobsDock(self.queue, shell.main_widget())
        self.dock.open_in_tab_requested.connect(lambda path: shell.open_targets([path]))
        shell.add_dock(self.dock, Qt.DockWidgetArea.BottomDockWidgetArea)
        self.dock.hide()  # until the first job
        self.dialogs: list[ExportDialog] = []
        # Tree panels given the subtree entry (a reload builds a new one); weak: they die
        # with their tab.
        self._hooked_trees: weakref.WeakSet[TreePanel] = weakref.WeakSet()
        self._build_menu()
        shell.add_tab_menu_entries(self._tab_menu_entries)
        shell.tab_opened.connect(self._watch_tab)
        shell.add_close_guard(self._may_close)
        shell.add_shutdown_hook(self.shutdown)

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
        tab = tab if tab is not None else self.shell.current_tab()
        if kind in CHECKPOINT_KINDS and is_gguf_tab(tab):
            kind = GGUF_KIND  # a GGUF file's only export: dequantize it to safetensors
        if source is None:
            source = config_source(tab) if kind == "random-init" else tab_source(tab)
        base = ""
        adapter = tab.checkpoint.adapter if tab is not None and tab.checkpoint else None
        if kind == "merge-lora" and adapter is not None:
            base = adapter.base_path or ""  # found on this machine (core.adapters.base)
        parent = self.shell.main_widget()
        dialog = ExportDialog(
            kind, source, subtree=subtree, renames=renames, base=base, tag=tab_tag(tab),
            weights_key=tab.weights_key if tab is not None else None, parent=parent,
        )
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.start_requested.connect(self.start)
        dialog.finished.connect(lambda _result, d=dialog: self._forget(d))
        self.dialogs.append(dialog)
        dialog.show()
        return dialog

    def export_with_renames(self, tab: CheckpointTab, renames: Iterable[object]) -> ExportDialog:
        """``ExportService``: "Convert to safetensors" of ``tab`` with ``renames`` filled in.

        A re-save that copies tensor bytes untouched; any dtype change is one combo away.
        """
        rules = [export_rename(item) for item in renames]
        return self.open_dialog("safetensors", tab=tab, renames=rules)

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
        menu = self.shell.menu("&Export")
        for kind in (*CHECKPOINT_KINDS, GGUF_KIND, "random-init", "merge-lora"):
            action = menu.addAction(f"{KINDS[kind]}…")
            action.triggered.connect(lambda _=False, kind=kind: self.open_dialog(kind))
        menu.addSeparator()
        jobs = menu.addAction("Show &Jobs")
        jobs.triggered.connect(self.show_jobs)

    def _tab_menu_entries(self, menu: QMenu, page: QWidget) -> None:
        if isinstance(page, CheckpointTab):
            self.add_tab_entries(menu, page)

    def add_tab_entries(self, menu: QMenu, tab: CheckpointTab) -> None:
        """The tab's context-menu entries: each export of this checkpoint."""
        if is_gguf_tab(tab):
            action = menu.addAction(f"{KINDS[GGUF_KIND]}…")
            action.triggered.connect(lambda _=False, t=tab: self.open_dialog(GGUF_KIND, tab=t))
            return
        if tab.checkpoint is not None and tab.checkpoint.adapter is not None:
            action = menu.addAction(f"{KINDS['merge-lora']}…")
            action.triggered.connect(lambda _=False, t=tab: self.open_dialog("merge-lora", tab=t))
        for kind in CHECKPOINT_KINDS:
            action = menu.addAction(f"{KINDS[kind]}…")
            action.triggered.connect(lambda _=False, k=kind, t=tab: self.open_dialog(k, tab=t))
        action = menu.addAction(f"{KINDS['random-init']}…")
        action.triggered.connect(lambda _=False, t=tab: self.open_dialog("random-init", tab=t))
        action.setEnabled(bool(config_source(tab)))

    def _watch_tab(self, tab: CheckpointTab) -> None:
        # The tree panel is built when the tab has loaded, again after each reload.
        tab.loaded.connect(lambda _checkpoint, tab=tab: self._hook_tree(tab))

    def _hook_tree(self, tab: CheckpointTab) -> None:
        tree = tab.tree
        if tree is None or tree in self._hooked_trees:
            return
        self._hooked_trees.add(tree)
        tree.context_menu_requested.connect(
            lambda menu, node, tab=tab: self._add_subtree_action(tab, menu, node)
        )

    def _add_subtree_action(self, tab: CheckpointTab, menu: QMenu, node: ModuleNode | None) -> None:
        path = node.path if node is not None else ""  # None: right-click below the rows
        if not path or is_gguf_tab(tab):  # GGUF exports are whole-model conversions
            return
        menu.addSeparator()
        action = menu.addAction("Export this subtree…")
        action.triggered.connect(
            lambda _=False: self.open_dialog("safetensors", subtree=path, tab=tab)
        )

    # -- quitting -------------------------------------------------------------------------------
    def _may_close(self) -> bool:
        return not self.queue.needs_confirmation() or self.confirm_quit()

    def confirm_quit(self) -> bool:
        """Ask whether to cancel the jobs and quit; False keeps the window open."""
        running = 1 if self.queue.running is not None else 0
        queued = len(self.queue.queued)
        parts = []
        if running:
            parts.append("an export is running")
        if queued:
            parts.append(f"{queued} more {'is' if queued == 1 else 'are'} queued")
        box = QMessageBox(self.shell.main_widget())
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
