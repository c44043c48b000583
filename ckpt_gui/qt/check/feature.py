"""The check feature: compare a checkpoint with a config (its own, a file, a Hub repo).

``register(shell, exports)`` adds the Compare menu and a ``CompareController`` to
every tab the shell opens; "Export with this fix" asks ``exports`` (the export
feature's ``ExportService``) for the dialog.
"""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import QObject
from PySide6.QtGui import QAction, QKeySequence

from ckpt_gui.qt.check.controller import CompareController, controller_for
from ckpt_gui.qt.check.view_model import ConfigChoice
from ckpt_gui.qt.inspect.checkpoint_tab import CheckpointTab
from ckpt_gui.qt.runtime.signals import signals_blocked
from ckpt_gui.qt.services import ExportService
from ckpt_gui.qt.shell import Shell


class CheckFeature(QObject):
    """The Compare menu's actions (``compare``, ``own``, ``problems``) and the controllers."""

    def __init__(self, shell: Shell, exports: ExportService) -> None:
        window = shell.main_widget()
        super().__init__(window)
        self.shell = shell
        self.exports = exports
        menu = shell.menu("&Compare")
        self.compare_action = QAction("Compare with &Config…", window)
        self.compare_action.setShortcut(QKeySequence("Ctrl+K"))
        self.compare_action.triggered.connect(self._on_current(lambda c: c.open_picker()))
        menu.addAction(self.compare_action)
        self.own_action = QAction("Compare with Its &Own config.json", window)
        self.own_action.triggered.connect(
            self._on_current(lambda c: c.compare(ConfigChoice("own")))
        )
        menu.addAction(self.own_action)
        menu.addSeparator()
        self.problems_action = QAction("Show Only &Problems", window)
        self.problems_action.setCheckable(True)
        self.problems_action.setShortcut(QKeySequence("Ctrl+Shift+P"))
        self.problems_action.toggled.connect(
            lambda on: self._on_current(lambda c: c.set_problems_only(on))()
        )
        menu.addAction(self.problems_action)
        shell.tab_opened.connect(self._attach)
        shell.current_tab_changed.connect(lambda _tab: self._sync_problems_action())

    def controller(self, tab: CheckpointTab | None) -> CompareController | None:
        """The comparison of ``tab`` (None for no tab)."""
        return controller_for(tab) if tab is not None else None

    def _on_current(self, call: Callable[[CompareController], object]) -> Callable[[], None]:
        def run() -> None:
            controller = self.controller(self.shell.current_tab())
            if controller is not None:
                call(controller)

        return run

    def _attach(self, tab: CheckpointTab) -> None:
        controller = CompareController(tab, self.exports)
        controller.problems_only_changed.connect(lambda _on: self._sync_problems_action())

    def _sync_problems_action(self) -> None:
        # The menu item mirrors the current tab's "Show only problems" box.
        controller = self.controller(self.shell.current_tab())
        checked = controller is not None and controller.bar.problems_only.isChecked()
        with signals_blocked(self.problems_action):
            self.problems_action.setChecked(checked)


def register(shell: Shell, exports: ExportService) -> CheckFeature:
    return CheckFeature(shell, exports)
