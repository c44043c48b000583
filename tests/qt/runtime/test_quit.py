"""Quitting with nothing running: no wait is entered, and the final collections are skipped.

The 3 s the issue measured were the interpreter's teardown after the window had
closed, its final garbage collections walking what torch, numpy and PySide6 made
(see ckpt_gui/qt/runtime/process_exit.py). These tests check those causes, not the clock.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from ckpt_gui.qt.runtime import process_exit
from ckpt_gui.qt.runtime.workers import Worker, active_workers

REPO_ROOT = Path(__file__).resolve().parents[3]


def test_closing_the_window_with_nothing_running_waits_for_nothing(
    qtbot, window, llama_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    window.open_targets([str(llama_dir)])
    qtbot.waitUntil(
        lambda: window.tabs() and window.is_idle() and not active_workers(), timeout=60_000
    )
    waits: list[object] = []
    original = Worker.wait
    monkeypatch.setattr(Worker, "wait", lambda self, *a: waits.append(self) or original(self, *a))
    window.close()
    assert waits == []


def test_the_final_collections_are_skipped_only_when_no_worker_is_left(
    qtbot, monkeypatch: pytest.MonkeyPatch
) -> None:
    frozen: list[bool] = []
    monkeypatch.setattr(process_exit.gc, "freeze", lambda: frozen.append(True))
    assert process_exit.end_gui_process(3) == 3
    assert frozen == [True]

    release = threading.Event()
    worker = Worker(release.wait, 30)
    worker.start()
    try:
        assert process_exit.end_gui_process(4) == 4  # a worker runs: the usual exit
        assert frozen == [True]
    finally:
        release.set()
        worker.wait()
        qtbot.waitUntil(lambda: not active_workers(), timeout=10_000)


def test_the_gui_entry_freezes_the_collector_and_exits_normally(tmp_path: Path) -> None:
    # The event loop "returns" at once with 7; atexit handlers still run after it.
    script = """
import atexit, gc, sys
from PySide6.QtWidgets import QApplication
QApplication.exec = lambda *a: 7
atexit.register(lambda: print("atexit ran", flush=True))
from ckpt_gui.cli import main
code = main(["--no-demo"])
print("frozen objects:", gc.get_freeze_count() > 0, flush=True)
sys.exit(code)
"""
    env = {
        **os.environ,
        "PYTHONPATH": str(REPO_ROOT),
        "QT_QPA_PLATFORM": "offscreen",
        "HOME": str(tmp_path),  # QSettings of this run stay in the temporary folder
        "XDG_CONFIG_HOME": str(tmp_path / "config"),
        "HF_HUB_CACHE": str(tmp_path / "hf"),
        "HF_HUB_OFFLINE": "1",
    }
    done = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        stdin=subprocess.DEVNULL,
    )
    assert done.returncode == 7, done.stderr
    assert "frozen objects: True" in done.stdout
    assert done.stdout.rstrip().endswith("atexit ran")
