"""Application entry: QApplication, icon, arguments, and the headless modes.

``--screenshot OUT.png`` runs offscreen, waits until every background load and
computation has finished (polling the window's idle state, no fixed sleep), then
renders the window and exits. ``--smoke-test`` is the self-test in ckpt_gui/smoke.py.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path

HEADLESS_TIMEOUT_S = float(os.environ.get("CKPT_GUI_HEADLESS_TIMEOUT", "300"))
FONT_DIRS = ("/usr/share/fonts/truetype/dejavu", "/usr/share/fonts/truetype", "/usr/share/fonts")


def run_gui(args: argparse.Namespace) -> int:
    """Entry called by ``ckpt_gui.cli``; returns the process exit code."""
    if args.smoke_test:  # before any QApplication exists: the smoke test runs offscreen
        from ckpt_gui.smoke import run_smoke_test

        return run_smoke_test()
    headless = bool(args.screenshot)
    if headless:
        _prepare_offscreen()

    from PySide6.QtCore import QSettings
    from PySide6.QtWidgets import QApplication

    from ckpt_gui.qt.inspect.checkpoint_tab import DEMO_TARGET
    from ckpt_gui.qt.main_window import MainWindow

    app = QApplication.instance() or QApplication(sys.argv[:1])
    assert isinstance(app, QApplication)
    configure_application(app)
    from ckpt_gui.qt.runtime.workers import shutdown_workers

    # A QThread destroyed while running aborts the process: stop workers on every exit path.
    app.aboutToQuit.connect(shutdown_workers)
    # Headless runs must not change the user's recent list or window geometry.
    window = MainWindow(settings=None if headless else QSettings())
    if args.targets:
        tabs = window.open_targets([str(t) for t in args.targets])
        _compare_or_scan(window, tabs, args)
    elif not args.no_demo:
        window.open_targets([DEMO_TARGET])
    window.show()
    if not headless:
        from ckpt_gui.qt.runtime.process_exit import end_gui_process

        return end_gui_process(app.exec())  # skips the slow interpreter teardown (see there)
    from ckpt_gui.qt.headless import run_headless

    return run_headless(app, window, args.screenshot, HEADLESS_TIMEOUT_S)


def _compare_or_scan(window: object, tabs: Sequence[object], args: argparse.Namespace) -> None:
    """``--compare B`` / ``--scan [DTYPE]`` act on the first target's tab once it loads."""
    compare, scan = getattr(args, "compare", None), getattr(args, "scan", None)
    actions = getattr(window, "compare_scan", None)
    if not tabs or actions is None or not (compare or scan):
        return
    if compare:
        actions.when_loaded(tabs[0], "compare", str(compare))
    if scan:
        actions.when_loaded(tabs[0], "scan", str(scan))


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
