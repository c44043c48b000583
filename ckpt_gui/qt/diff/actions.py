"""The diff feature: comparing a checkpoint with another one (B).

``ckpt_gui.qt.diff.feature.register(shell)`` creates one ``DiffFeature``; it adds:

* *Analyze > Compare With…* and the same tab context-menu entry (B is a file, a
  folder or a Hub repo id);
* a drop handler: one checkpoint dropped while a loaded tab is shown asks
  "Open in New Tab" / "Compare with <tab>" (a non-blocking popup); with Ctrl or
  Alt held it compares at once.

Comparisons open as their own tab (``DiffView``) and colour the compared tab's
tree (``changed`` / ``only_in_a``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from PySide6.QtCore import QObject, Qt
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

from ckpt_gui.qt.diff.diff_view import DiffView
from ckpt_gui.qt.drops import hub_target
from ckpt_gui.qt.inspect.checkpoint_tab import CheckpointTab
from ckpt_gui.qt.inspect.tree_marks import mark_rows

if TYPE_CHECKING:
    from ckpt_gui.qt.shell import Shell

FILE_FILTER = "Checkpoints (*.safetensors *.bin *.pt *.pth *.ckpt *.index.json);;All files (*)"
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


class DiffFeature(QObject):
    """The comparison glue of one window (see the module doc)."""

    def __init__(self, shell: Shell) -> None:
        super().__init__(shell.main_widget())
        # shell -> its contributions -> self -> shell is a reference cycle: collected on the
        # GUI thread only (ckpt_gui.qt.runtime.gui_gc), never on a worker's.
        self.shell = shell
        self.drop_menu: QMenu | None = None  # the last drop prompt (tests trigger its actions)
        menu = shell.menu("&Analyze")
        self.compare_action = self._action(menu, "&Compare With…", self.compare_current, "Ctrl+D")
        shell.add_tab_menu_entries(self._tab_menu_entries)
        shell.add_drop_handler(self._handle_drop)

    # -- public API ----------------------------------------------------------------------
    def compare(self, tab: CheckpointTab, b_target: str) -> DiffView:
        """Open a diff of ``tab``'s checkpoint (A) with ``b_target`` (B) in a new tab."""
        view = DiffView(tab.target, b_target, a=tab.checkpoint)
        view.statuses_ready.connect(lambda statuses, tab=tab: mark_rows(tab, statuses))
        self.shell.add_page(view, view.title, f"A: {tab.target}\nB: {b_target}")
        return view

    def compare_current(self) -> None:
        tab = self.shell.current_tab()
        if tab is None or tab.checkpoint is None:
            self.shell.show_message("Open a checkpoint to compare it")
            return
        target = ask_compare_target(self.shell.main_widget(), tab.title)
        if target:
            self.compare(tab, target)

    def compare_when_loaded(self, tab: CheckpointTab, b_target: str) -> None:
        """Compare with ``b_target`` once ``tab`` has loaded (the command line's ``--compare``)."""
        if tab.checkpoint is not None:
            self.compare(tab, b_target)
        else:
            tab.loaded.connect(
                lambda _cp: self.compare(tab, b_target), Qt.ConnectionType.SingleShotConnection
            )

    def _handle_drop(self, targets: list[str], event: QDropEvent) -> bool:
        tab = self.shell.current_tab()
        if len(targets) != 1 or tab is None or tab.checkpoint is None or targets[0] == tab.target:
            return False
        target = targets[0]
        if event.modifiers() & COMPARE_MODIFIERS:
            self.compare(tab, target)
            return True
        window = self.shell.main_widget()
        menu = QMenu(window)
        menu.addAction("Open in New Tab", lambda: self.shell.open_targets([target]))
        menu.addAction(f"Compare with “{tab.title}”", lambda: self.compare(tab, target))
        menu.addSeparator()
        menu.addAction("Cancel")
        self.drop_menu = menu
        position = window.mapToGlobal(event.position().toPoint())
        menu.popup(position)  # not exec(): a drop must never block the event loop
        return True

    def _tab_menu_entries(self, menu: QMenu, page: QWidget) -> None:
        """Compare With…, for a loaded checkpoint's tab."""
        if not isinstance(page, CheckpointTab) or page.checkpoint is None:
            return
        tab = page

        def compare() -> None:
            target = ask_compare_target(self.shell.main_widget(), tab.title)
            if target:
                self.compare(tab, target)

        menu.addAction("Compare With…", compare)

    def _action(self, menu: QMenu, text: str, slot: object, shortcut: str) -> QAction:
        action = QAction(text, self.shell.main_widget())
        action.triggered.connect(slot)
        action.setShortcut(QKeySequence(shortcut))
        menu.addAction(action)
        return action
