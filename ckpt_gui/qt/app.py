"""Application entry: QApplication, icon, arguments, the headless modes, and the features.

``build_window(settings)`` creates the main window (the shell) and registers every
feature with it, one line each; it returns the window and the ``Features`` (the
objects the features registered, for the command line's ``--compare``/``--scan``,
scripts and tests). A new feature is a package under ``qt/`` with a
``feature.register(shell, ...)`` and one line here (see docs/shell.md).

``--screenshot OUT.png`` runs offscreen, waits until every background load and
computation has finished (polling the window's idle state, no fixed sleep), then
renders the window and exits. (``--smoke-test``, the self-test in ckpt_gui/smoke.py, is
run by ckpt_gui.cli before any of this: it builds its own window here.)
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the CLI imports this module: Qt only once the GUI starts
    from PySide6.QtCore import QSettings

    from ckpt_gui.qt.check.feature import CheckFeature
    from ckpt_gui.qt.diff.actions import DiffFeature
    from ckpt_gui.qt.export.controller import ExportController
    from ckpt_gui.qt.hub.feature import HubFeature
    from ckpt_gui.qt.inspect.checkpoint_tab import CheckpointTab
    from ckpt_gui.qt.main_window import MainWindow
    from ckpt_gui.qt.memory.feature import MemoryFeature
    from ckpt_gui.qt.pickles.feature import PickleRiskFeature
    from ckpt_gui.qt.scan.feature import ScanFeature

HEADLESS_TIMEOUT_S = float(os.environ.get("CKPT_GUI_HEADLESS_TIMEOUT", "300"))
FONT_DIRS = ("/usr/share/fonts/truetype/dejavu", "/usr/share/fonts/truetype", "/usr/share/fonts")


@dataclass(frozen=True)
class Features:
    """What each registered feature returned."""

    hub: HubFeature
    exports: ExportController
    diff: DiffFeature
    scan: ScanFeature
    check: CheckFeature
    pickles: PickleRiskFeature
    memory: MemoryFeature


def build_window(settings: QSettings | None) -> tuple[MainWindow, Features]:
    """The main window with every feature registered (``settings`` None: remember nothing)."""
    from ckpt_gui.qt.check import feature as check
    from ckpt_gui.qt.diff import feature as diff
    from ckpt_gui.qt.export import feature as export
    from ckpt_gui.qt.hub import feature as hub
    from ckpt_gui.qt.main_window import MainWindow
    from ckpt_gui.qt.memory import feature as memory
    from ckpt_gui.qt.pickles import feature as pickles
    from ckpt_gui.qt.scan import feature as scan

    window = MainWindow(settings)
    # Registration order is menu, dock and tab context-menu order.
    hub_feature = hub.register(window)
    exports = export.register(window)
    diff_feature = diff.register(window)
    scan_feature = scan.register(window)
    check_feature = check.register(window, exports=exports)
    pickles_feature = pickles.register(window)
    memory_feature = memory.register(window)
    window.restore_settings()  # the saved dock layout needs every dock
    features = Features(
        hub_feature,
        exports,
        diff_feature,
        scan_feature,
        check_feature,
        pickles_feature,
        memory_feature,
    )
    return window, features


def run_gui(args: argparse.Namespace) -> int:
    """Entry called by ``ckpt_gui.cli``; returns the process exit code."""
    headless = bool(args.screenshot)
    if headless:
        _prepare_offscreen()

    from PySide6.QtCore import QSettings
    from PySide6.QtWidgets import QApplication

    from ckpt_gui.qt.inspect.checkpoint_tab import DEMO_TARGET

    app = QApplication.instance() or QApplication(sys.argv[:1])
    assert isinstance(app, QApplication)
    configure_application(app)
    from ckpt_gui.qt.runtime.workers import shutdown_workers

    # A QThread destroyed while running aborts the process: stop workers on every exit path.
    app.aboutToQuit.connect(shutdown_workers)
    # Headless runs must not change the user's recent list or window geometry.
    window, features = build_window(settings=None if headless else QSettings())
    if args.targets:
        tabs = window.open_targets([str(t) for t in args.targets])
        _compare_or_scan(features, tabs, args)
    elif not args.no_demo:
        window.open_targets([DEMO_TARGET])
    window.show()
    if not headless:
        from ckpt_gui.qt.runtime.process_exit import end_gui_process

        return end_gui_process(app.exec())  # skips the final collections (see there)
    from ckpt_gui.qt.headless import run_headless

    return run_headless(app, window, args.screenshot, HEADLESS_TIMEOUT_S)


def _compare_or_scan(
    features: Features, tabs: Sequence[CheckpointTab], args: argparse.Namespace
) -> None:
    """``--compare B`` / ``--scan [DTYPE]`` act on the first target's tab once it loads."""
    compare, scan = getattr(args, "compare", None), getattr(args, "scan", None)
    if not tabs or not (compare or scan):
        return
    if compare:
        features.diff.compare_when_loaded(tabs[0], str(compare))
    if scan:
        features.scan.scan_when_loaded(tabs[0], str(scan))


def configure_application(app: object) -> None:
    from PySide6.QtGui import QGuiApplication

    from ckpt_gui.resources import application_icon

    assert isinstance(app, QGuiApplication)
    app.setApplicationName("ckpt-gui")
    app.setOrganizationName("ckpt-gui")
    app.setApplicationDisplayName("ckpt-gui")
    # The desktop file name links windows to ckpt-gui.desktop (Wayland docks take the icon there).
    app.setDesktopFileName("ckpt-gui")
    app.setWindowIcon(application_icon())


def _prepare_offscreen() -> None:
    """Offscreen platform, with a font folder so text does not render as boxes."""
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    if "QT_QPA_FONTDIR" not in os.environ:
        for folder in FONT_DIRS:
            if Path(folder).is_dir():
                os.environ["QT_QPA_FONTDIR"] = folder
                break
