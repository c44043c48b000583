"""PySide6 6.12 on Python 3.11 leaks decrefs of None from data() overrides, and of the bool
``Signal.emit`` returns; the guard in ckpt_gui.qt keeps the process alive (without it, these
subprocesses abort)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

SCRIPT = """
import sys
{guard}
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication
from ckpt_gui.core.model import TensorInfo
from ckpt_gui.core.tree.build import build_tree
from ckpt_gui.qt.models.tree_model import CheckpointTreeModel
app = QApplication([])
model = CheckpointTreeModel(build_tree([TensorInfo("a.b", "F32", (2,), 8, "f")]))
index = model.index(0, 0)
for _ in range(200_000):  # far more than None's normal reference count
    index.data(Qt.ItemDataRole.DecorationRole)  # C++ -> Python data() -> None
print("alive")
"""


EMITS = """
import sys
{guard}
from PySide6.QtCore import QCoreApplication, QObject, Signal
app = QCoreApplication([])
class Sender(QObject):
    fired = Signal(object)
sender = Sender()
for _ in range(20_000):  # far more than True's normal reference count
    sender.fired.emit(None)  # returns a bool whose reference PySide drops
print("alive")
"""


def run(guard: str, script: str = SCRIPT) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO), "QT_QPA_PLATFORM": "offscreen"}
    return subprocess.run(
        [sys.executable, "-c", script.format(guard=guard)],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )


def test_many_none_returns_do_not_crash_the_process() -> None:
    result = run("import ckpt_gui.qt")
    assert result.returncode == 0, result.stderr[-500:]
    assert result.stdout.strip() == "alive"


def test_many_signal_emits_do_not_crash_the_process() -> None:
    result = run("import ckpt_gui.qt", EMITS)
    assert result.returncode == 0, result.stderr[-500:]
    assert result.stdout.strip() == "alive"


def test_without_the_guard_signal_emits_crash_the_process() -> None:
    """The bug the guard covers is real (if PySide fixes it, this fails: drop the guard)."""
    result = run("import PySide6", EMITS)
    assert result.returncode != 0
    assert "bool_dealloc" in result.stderr
