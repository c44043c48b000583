"""Which Qt workers are still running (the check that fails a test whose worker outlives it)."""

from __future__ import annotations


def workers_still_running() -> list[str]:
    """Names of the workers whose function is still running, after delivering the rest.

    A worker whose function has returned is only ending its thread: it is joined (at
    once) and its last queued signals are delivered, which takes it out of
    ``active_workers()``. What remains has outlived whatever started it.
    """
    from PySide6.QtCore import QCoreApplication

    from ckpt_gui.qt.runtime.workers import active_workers

    app = QCoreApplication.instance()
    for _ in range(1000):  # each round delivers what the previous one posted
        ended = [w for w in active_workers() if not w.is_running]
        if app is None or not ended:
            break
        for worker in ended:
            worker.wait(60_000)
        app.processEvents()
    return sorted(worker.name for worker in active_workers() if worker.is_running)
