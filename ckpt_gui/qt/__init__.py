"""The only package that imports PySide6.

Importing it first applies ``_guard_none_refcount``: PySide6/shiboken6 6.12 on
Python 3.11 drops one reference to ``None`` each time C++ receives ``None`` from a
Python override (``QAbstractItemModel.data`` returning None for an unused role)
and for some void methods (``QTreeWidgetItem.addChild``). After a few thousand
calls, i.e. seconds of scrolling a tree, ``None``'s count reaches zero and the
interpreter aborts ("none_dealloc: deallocating None"). Python 3.12+ makes None
immortal, which hides the bug; on 3.11 we do the same by giving None a reference
count no session can exhaust. ``Signal.emit`` has the same bug with the bool it
returns: each emit drops a reference to ``True`` or ``False`` ("bool_dealloc" after
about a thousand emits, e.g. a worker's progress signals), so both get the same
guard. tests/qt/test_none_guard.py reproduces both crashes.
"""

from __future__ import annotations

import sys


def _guard_none_refcount() -> None:
    if sys.version_info >= (3, 12) or sys.implementation.name != "cpython":
        return
    import ctypes

    # ob_refcnt is the first field of every CPython object; 2**48 extra references
    # outlast ~10**14 leaked decrefs. None, True and False are never freed anyway.
    for singleton in (None, True, False):
        refcount = ctypes.c_ssize_t.from_address(id(singleton))
        if refcount.value < 1 << 40:
            refcount.value += 1 << 48


_guard_none_refcount()
