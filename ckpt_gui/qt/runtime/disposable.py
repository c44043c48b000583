"""Widgets with background work say so by having ``dispose()``.

The window calls it on a page it closes and a tab on its panels before they are
deleted, so that their workers stop and late results are dropped.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable


@runtime_checkable
class Disposable(Protocol):
    def dispose(self) -> None:
        """Stop background work; the widget is about to be deleted."""


def dispose_of(obj: object) -> None:
    """Call ``obj.dispose()`` when it has one."""
    if isinstance(obj, Disposable):
        obj.dispose()
