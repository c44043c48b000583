"""Screenshot mode: wait for the window to be idle, then render it."""

from __future__ import annotations

import sys
import time
from typing import Any

from ckpt_gui.core.tree.build import ModuleNode
from ckpt_gui.qt.inspect.details import AUTO_STATS_ELEMENTS
from ckpt_gui.qt.main_window import MainWindow

POLL_MS = 50


def run_headless(app: Any, window: MainWindow, screenshot: str | None, timeout_s: float) -> int:
    """0 when every tab loaded (and the PNG was written), 2 otherwise."""
    from PySide6.QtCore import QTimer

    deadline = time.monotonic() + timeout_s
    state: dict[str, Any] = {"phase": "loading", "code": 2}

    def finish(code: int) -> None:
        state["code"] = code
        timer.stop()
        window.close()
        app.quit()

    def poll() -> None:
        if time.monotonic() > deadline:
            print(f"ckpt-gui: error: still loading after {timeout_s:.0f} s", file=sys.stderr)
            finish(2)
            return
        if not window.is_idle():
            return
        if state["phase"] == "loading":
            # Show something worth seeing in the details panel, then wait again.
            state["phase"] = "details"
            _select_representative_tensor(window)
            return
        errors = [tab.error for tab in window.tabs() if tab.error]
        for error in errors:
            print(f"ckpt-gui: error: {error}", file=sys.stderr)
        code = 0 if not errors else 2
        if screenshot:
            app.processEvents()
            if not window.grab().save(screenshot, "PNG"):
                print(f"ckpt-gui: error: {screenshot}: could not write the image", file=sys.stderr)
                code = 2
        finish(code)

    timer = QTimer()
    timer.setInterval(POLL_MS)
    timer.timeout.connect(poll)
    timer.start()
    app.exec()
    code: int = state["code"]
    return code


def _select_representative_tensor(window: MainWindow) -> None:
    """A 2-D weight in the first repeated block (small enough for automatic stats)."""
    tab = window.current_tab()
    if tab is None or tab.tree is None:
        return
    best: ModuleNode | None = None
    for node in tab.tree.model.root.walk():
        tensor = node.tensor
        if tensor is None or tensor.parameters > AUTO_STATS_ELEMENTS:
            continue
        if len(tensor.shape) == 2 and ".0." in f".{node.path}.":
            best = node
            break
        if best is None:
            best = node
    if best is not None:
        tab.tree.select_node(best)
