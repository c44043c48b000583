"""Run Python's cyclic garbage collector on the GUI thread only.

Left automatic, the collector runs in whichever thread happens to allocate when a
threshold is crossed, often a Worker thread busy with HTTP or file reads. If the
garbage then holds Qt widgets (a closed tab, a dialog and the lambdas connected to
them form reference cycles), their C++ objects are destroyed on that thread and
the process crashes ("Fatal Python error: Segmentation fault ... Garbage-collecting"
in a worker's traceback; seen in tests/qt/hub/test_hub_gui.py before this existed).
So automatic collection is switched off and a GUI-thread timer collects instead,
generation by generation as the automatic collector would (the same approach as
pyqtgraph's ``GarbageCollector``). Reference counting still frees everything that
is not in a cycle at once; only cycles wait for the timer.
"""

from __future__ import annotations

import gc

from PySide6.QtCore import QCoreApplication, QTimer

INTERVAL_MS = 500
_timer: QTimer | None = None


def collect_garbage_on_gui_thread() -> None:
    """Install the timer once per application (call it from the GUI thread)."""
    global _timer
    app = QCoreApplication.instance()
    if app is None or (_timer is not None and _timer.parent() is app):
        return
    gc.disable()
    _timer = QTimer(app)
    _timer.setInterval(INTERVAL_MS)
    _timer.timeout.connect(_collect)
    _timer.start()


def _collect() -> None:
    thresholds = gc.get_threshold()
    counts = gc.get_count()
    for generation in (2, 1, 0):
        if counts[generation] > thresholds[generation]:
            gc.collect(generation)
            return


def settle_long_lived() -> None:
    """Keep what is alive now out of later full collections (``gc.freeze``).

    Called when a tab has loaded: its tree (200,000 nodes for a big flat checkpoint)
    lives as long as the tab, yet every full collection would walk all of it, about
    560 ms of GUI thread per collection on this class of machine, landing in the middle
    of a sort or a filter. Cycles that are garbage at this moment wait for the next
    ``release_long_lived``.
    """
    gc.freeze()


def release_long_lived() -> None:
    """A tab closes or reloads: what it held may be garbage now, so collections see it again."""
    gc.unfreeze()
