"""``signals_blocked``: the one way to silence a QObject, restored on every path."""

from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtCore import QObject

import ckpt_gui
from ckpt_gui.qt.runtime.signals import signals_blocked


def test_blocks_inside_and_restores_after_even_on_error(qtbot) -> None:
    obj = QObject()
    seen: list[str] = []
    obj.objectNameChanged.connect(seen.append)
    with signals_blocked(obj):
        assert obj.signalsBlocked()
        obj.setObjectName("quiet")
    assert not obj.signalsBlocked()
    with pytest.raises(RuntimeError), signals_blocked(obj):
        raise RuntimeError("boom")
    assert not obj.signalsBlocked()
    obj.setObjectName("heard")
    assert seen == ["heard"]


def test_nested_blocks_keep_the_outer_one(qtbot) -> None:
    obj = QObject()
    with signals_blocked(obj):
        with signals_blocked(obj):
            pass
        assert obj.signalsBlocked()  # the inner block restored "blocked", not "unblocked"
    assert not obj.signalsBlocked()


def test_no_module_calls_block_signals_directly() -> None:
    root = Path(ckpt_gui.__file__).parent
    allowed = root / "qt" / "runtime" / "signals.py"
    callers = [
        str(path.relative_to(root))
        for path in root.rglob("*.py")
        if path != allowed and ".blockSignals(" in path.read_text(encoding="utf-8")
    ]
    assert callers == []
