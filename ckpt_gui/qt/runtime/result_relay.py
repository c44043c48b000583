"""Hand per-item results from a worker thread to the GUI thread, in throttled batches.

Core jobs report each tensor through a callback that runs on the worker thread
(``diff_values(on_tensor=...)``, ``scan(on_tensor=...)``). Emitting one queued
signal per tensor would flood the GUI thread for 100,000 small tensors, so
``push`` collects results and emits ``batch(list)`` at most every ``interval_s``;
the GUI calls ``flush()`` when the job ends to get the remainder at once.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from PySide6.QtCore import QObject, Signal

DEFAULT_INTERVAL_S = 0.1


class ResultRelay(QObject):
    """Create on the GUI thread; ``push`` from any thread; connect ``batch``."""

    batch = Signal(list)

    def __init__(self, interval_s: float = DEFAULT_INTERVAL_S, parent: QObject | None = None):
        super().__init__(parent)
        self._interval = interval_s
        self._lock = threading.Lock()
        self._pending: list[Any] = []
        self._last_emit = 0.0

    def push(self, item: Any) -> None:
        """Called on the worker thread: queue ``item``; emit a batch when one is due."""
        now = time.monotonic()
        with self._lock:
            self._pending.append(item)
            if now - self._last_emit < self._interval:
                return
            items, self._pending = self._pending, []
            self._last_emit = now
        # Emitted from the worker thread: Qt queues it to the relay's (GUI) thread.
        self.batch.emit(items)

    def flush(self) -> None:
        """Emit what is left (call on the GUI thread once the job has ended)."""
        with self._lock:
            items, self._pending = self._pending, []
        if items:
            self.batch.emit(items)
