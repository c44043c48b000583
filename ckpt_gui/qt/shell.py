"""The main window's interface for features: what a feature may ask of the window.

A feature (export, diff, check, Hub, pickle risk, ...) is one package under ``qt/``
with a ``feature.py`` whose ``register(shell, ...)`` wires it in and returns the
feature object. ``ckpt_gui.qt.app.build_window`` calls every ``register``; the main
window (``ckpt_gui.qt.main_window.MainWindow``, which implements ``Shell``) imports
no feature, and features never import the main window: they get a ``Shell``.

What the shell offers:

* menus (``menu(title)``), docks (``add_dock``), ways to open things
  (``add_open_action``: the File menu and a button on the welcome page);
* the checkpoint tabs (``tabs``, ``current_tab``, ``open_targets``, the signals
  ``tab_opened(CheckpointTab)`` and ``current_tab_changed(CheckpointTab | None)``)
  and other pages in the tab widget (``add_page``, ``close_page``, e.g. a diff);
* contributions that the shell combines into one thing: entries of a tab's context
  menu (``add_tab_menu_entries``: the shell owns the one handler and builds one
  menu from every feature's entries), drop handlers (``add_drop_handler``), busy
  checks for ``is_idle`` (``add_busy_check``) and closing (``add_close_guard``
  may keep the window open, ``add_shutdown_hook`` stops work when it closes);
* ``show_message`` (the status bar) and ``main_widget`` (the parent for dialogs,
  menus and the feature's own QObjects).

Features that need each other get a typed service object at registration
(``ckpt_gui.qt.services``), never an attribute of the window.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Protocol

from PySide6.QtCore import Qt, SignalInstance
from PySide6.QtGui import QAction, QDropEvent
from PySide6.QtWidgets import QDockWidget, QMainWindow, QMenu, QWidget

from ckpt_gui.qt.inspect.checkpoint_tab import CheckpointTab

TabMenuEntries = Callable[[QMenu, QWidget], None]
"""Adds a feature's entries for the tab page (a CheckpointTab or another page) to the menu.

Called each time the menu opens, in registration order; the shell puts a separator
between two features' entries and "Close Tab" last.
"""

DropHandler = Callable[[list[str], QDropEvent], bool]
"""Given the dropped targets; True takes the drop over (otherwise they open as tabs)."""

BusyCheck = Callable[[], bool]
"""True while the feature loads or computes something (the window is then not idle)."""

CloseGuard = Callable[[], bool]
"""Asked before the window closes; False keeps it open (e.g. the user kept a job running)."""

ShutdownHook = Callable[[], None]
"""Called once the window closes for good: stop and wait for the feature's work."""


class Shell(Protocol):
    """The main window as features see it (implemented by ``MainWindow``)."""

    @property
    def tab_opened(self) -> SignalInstance:
        """Emitted with each new ``CheckpointTab``."""

    @property
    def current_tab_changed(self) -> SignalInstance:
        """Emitted with the current ``CheckpointTab`` (None for another page or none)."""

    def main_widget(self) -> QMainWindow:
        """The window itself: parent for the feature's dialogs, menus and QObjects."""

    def menu(self, title: str) -> QMenu:
        """The top-level menu ``title`` (e.g. "&Export"), created before Help if missing."""

    def add_open_action(self, action: QAction) -> None:
        """Add a way to open checkpoints to the File menu and the welcome page."""

    def add_dock(
        self, dock: QDockWidget, area: Qt.DockWidgetArea = Qt.DockWidgetArea.RightDockWidgetArea
    ) -> None:
        """Add a dock and a View menu entry that shows or hides it."""

    def tabs(self) -> list[CheckpointTab]:
        """The open checkpoint tabs, in tab order."""

    def current_tab(self) -> CheckpointTab | None:
        """The checkpoint tab shown (None when another page or no tab is shown)."""

    def open_targets(self, targets: Sequence[str]) -> list[CheckpointTab]:
        """Open paths or Hub repo ids in tabs; returns the new tabs."""

    def add_page(self, page: QWidget, title: str, tooltip: str = "") -> None:
        """Show a page that is not a checkpoint (e.g. a diff) as a new current tab."""

    def close_page(self, page: QWidget) -> None:
        """Close the tab showing ``page`` (its ``dispose()`` stops its work first)."""

    def add_tab_menu_entries(self, entries: TabMenuEntries) -> None:
        """Contribute entries to every tab's context menu."""

    def add_drop_handler(self, handler: DropHandler) -> None:
        """Offer to take over drops on the window (asked in registration order)."""

    def add_busy_check(self, check: BusyCheck) -> None:
        """Count the feature's background work in the window's idle state."""

    def add_close_guard(self, guard: CloseGuard) -> None:
        """Ask ``guard`` before the window closes."""

    def add_shutdown_hook(self, hook: ShutdownHook) -> None:
        """Call ``hook`` when the window closes."""

    def show_message(self, text: str, timeout_ms: int = 5000) -> None:
        """Show ``text`` in the status bar for ``timeout_ms`` (0: until replaced)."""
