"""The Hub feature: "Open from Hub…" and the Library dock of the local Hugging Face cache.

Registered with the shell by ``register(shell)``: the open action goes to the File
menu and the welcome page, the Library dock to the left (hidden until View >
Library), its scan counts as busy, and a tab that downloaded its weights refreshes it.
"""

from __future__ import annotations

from PySide6.QtCore import QObject, Qt
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QDialog

from ckpt_gui.qt.hub.hub_dialog import OpenFromHubDialog
from ckpt_gui.qt.hub.library import LibraryDock
from ckpt_gui.qt.inspect.checkpoint_tab import CheckpointTab
from ckpt_gui.qt.shell import Shell

LIBRARY_WIDTH = 400


class HubFeature(QObject):
    def __init__(self, shell: Shell) -> None:
        window = shell.main_widget()
        super().__init__(window)
        self.shell = shell
        self.open_action = QAction("Open from &Hub…", window)
        self.open_action.setShortcut(QKeySequence("Ctrl+Shift+H"))
        self.open_action.triggered.connect(lambda _checked=False: self.open_dialog())
        shell.add_open_action(self.open_action)
        # The local Hugging Face cache; scanned in the background when first shown.
        self.library = LibraryDock()
        self.library.open_requested.connect(lambda path: shell.open_targets([path]))
        shell.add_dock(self.library, Qt.DockWidgetArea.LeftDockWidgetArea)
        window.resizeDocks([self.library], [LIBRARY_WIDTH], Qt.Orientation.Horizontal)
        # Hidden until asked for (View > Library): the tree needs the width more. The saved
        # dock state brings it back for users who keep it open.
        self.library.hide()
        shell.add_busy_check(lambda: self.library.is_busy)
        shell.tab_opened.connect(self._watch_tab)

    def open_dialog(self) -> OpenFromHubDialog:
        """Ask for ``org/name[@rev]`` or a Hub URL; the answer opens in a tab.

        Window-modal but not blocking (``open()``), so callers and tests get the dialog.
        """
        dialog = OpenFromHubDialog(self.shell.main_widget())
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.finished.connect(
            lambda result: (
                self.shell.open_targets([dialog.target()])
                if result == QDialog.DialogCode.Accepted
                else None
            )
        )
        dialog.open()
        return dialog

    def _watch_tab(self, tab: CheckpointTab) -> None:
        tab.downloaded.connect(lambda _snapshot: self.library.refresh())


def register(shell: Shell) -> HubFeature:
    return HubFeature(shell)
