"""The scan feature: scan every tensor of a checkpoint for NaN, Inf and extreme values.

``register(shell)`` adds *Analyze > Scan All Tensors* (Ctrl+Shift+S) and the same entry
on a loaded checkpoint's tab menu. A scan shows the tab's **Scan** panel under the tree
(``ScanPanel``, created on first use) and colours the rows it flags.
"""

from __future__ import annotations

from PySide6.QtCore import QObject, Qt
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QMenu, QWidget

from ckpt_gui.qt.inspect.checkpoint_tab import CheckpointTab
from ckpt_gui.qt.inspect.tree_marks import mark_rows, select_tensor
from ckpt_gui.qt.scan.scan_panel import ScanPanel
from ckpt_gui.qt.shell import Shell


class ScanFeature(QObject):
    def __init__(self, shell: Shell) -> None:
        window = shell.main_widget()
        super().__init__(window)
        self.shell = shell
        self.scan_action = QAction("&Scan All Tensors", window)
        self.scan_action.setShortcut(QKeySequence("Ctrl+Shift+S"))
        self.scan_action.triggered.connect(self.scan_current)
        shell.menu("&Analyze").addAction(self.scan_action)
        shell.add_tab_menu_entries(self._tab_menu_entries)

    def scan(self, tab: CheckpointTab, target_dtype: str = "") -> ScanPanel | None:
        """Show the tab's Scan panel (created on first use) and start a scan.

        ``target_dtype`` ("F16", "BF16", "F8_E4M3", "F8_E5M2", "none"; "" keeps the
        panel's choice) sets what counts as extreme.
        """
        if tab.checkpoint is None:
            self.shell.show_message("Open the checkpoint before scanning it")
            return None
        panel = tab.findChild(ScanPanel)
        if panel is None:
            panel = ScanPanel(tab.checkpoint)
            panel.statuses_ready.connect(lambda statuses, tab=tab: mark_rows(tab, statuses))
            panel.tensor_activated.connect(lambda name, tab=tab: select_tensor(tab, name))
            tab.add_panel(panel, "Scan")
        tab.show_panel(panel)
        if target_dtype:
            panel.set_target_dtype(None if target_dtype.lower() == "none" else target_dtype)
        panel.start()
        return panel

    def scan_current(self) -> None:
        tab = self.shell.current_tab()
        if tab is not None:
            self.scan(tab)

    def scan_when_loaded(self, tab: CheckpointTab, target_dtype: str = "") -> None:
        """Scan once ``tab`` has loaded (the command line's ``--scan [DTYPE]``)."""
        if tab.checkpoint is not None:
            self.scan(tab, target_dtype)
        else:
            tab.loaded.connect(
                lambda _cp: self.scan(tab, target_dtype), Qt.ConnectionType.SingleShotConnection
            )

    def _tab_menu_entries(self, menu: QMenu, page: QWidget) -> None:
        if isinstance(page, CheckpointTab) and page.checkpoint is not None:
            tab = page
            menu.addAction("Scan All Tensors", lambda: self.scan(tab))


def register(shell: Shell) -> ScanFeature:
    return ScanFeature(shell)
