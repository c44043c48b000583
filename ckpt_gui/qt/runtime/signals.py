"""``signals_blocked(obj)``: the one way to silence a QObject's signals for a moment.

``blockSignals(True)`` without a matching ``blockSignals(False)`` on every path (an
exception, an early return) leaves a widget deaf for good; the context manager
restores the previous state whatever happens, and nests.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from PySide6.QtCore import QObject


@contextmanager
def signals_blocked(obj: QObject) -> Iterator[QObject]:
    """Block ``obj``'s signals inside the block; restore the previous state after."""
    previous = obj.blockSignals(True)
    try:
        yield obj
    finally:
        obj.blockSignals(previous)
