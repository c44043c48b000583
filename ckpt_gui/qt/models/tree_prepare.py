"""Run ``tree_rows.prepare_job`` for a tree model: at once, or on a worker thread.

Small trees (``ASYNC_TENSORS`` tensors or fewer), and changes that need only lookups
(clearing a filter once the sort order is known), are prepared at once on the GUI
thread: tests and callers see the new rows as soon as the call returns. Anything else
runs on one ``Worker`` at a time; a newer request cancels the older one, and only the
latest request's answer is applied.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import Any

from ckpt_gui.core.tree.build import ModuleNode
from ckpt_gui.qt.models.tree_rows import (
    OrderCache,
    Prepared,
    TreeIndex,
    ViewSpec,
    needs_work,
    prepare_job,
    run,
)
from ckpt_gui.qt.runtime.workers import Worker

ASYNC_TENSORS = 20_000  # trees with more tensors sort and filter on a worker thread
PAUSE_S = 0.001  # the worker's pause after each step of a job: the GUI thread's turn


def _paced(job: Any) -> Any:
    """Run ``job``, leaving the GIL free for a moment after each of its steps.

    A Python callback on the GUI thread (a timer, a paint's ``data()``) otherwise waits
    up to the interpreter's switch interval (5 ms) for the busy worker each time, and a
    repaint makes hundreds of them.
    """
    while True:
        try:
            next(job)
        except StopIteration as stop:
            return stop.value
        yield
        time.sleep(PAUSE_S)


class Preparations:
    """One model's preparations; ``apply`` receives each answer on the GUI thread."""

    def __init__(self, apply: Callable[[Prepared], None], failed: Callable[[], None]) -> None:
        self._apply = apply
        self._failed = failed
        self._worker: Worker | None = None

    @property
    def busy(self) -> bool:
        return self._worker is not None

    def start(
        self,
        root: ModuleNode,
        index: TreeIndex | None,
        spec: ViewSpec,
        orders: OrderCache,
        now: bool = False,
    ) -> None:
        self.cancel()
        job = prepare_job(root, index, spec, dict(orders))
        if now or root.tensor_count <= ASYNC_TENSORS or not needs_work(index, spec, orders):
            self._apply(run(job))
            return
        worker = self._worker = Worker(_paced, job)
        worker.name = "tree view: sort/filter"
        worker.returned.connect(lambda prepared: self._returned(worker, root, prepared))
        worker.errored.connect(lambda error: self._errored(worker, error))
        worker.start()

    def cancel(self) -> None:
        if self._worker is not None:
            self._worker.quit()
            self._worker = None

    def _returned(self, worker: Worker, root: ModuleNode, prepared: Prepared) -> None:
        if worker is self._worker:
            self._worker = None
            if prepared.root is root:
                self._apply(prepared)

    def _errored(self, worker: Worker, error: BaseException) -> None:
        if worker is self._worker:
            self._worker = None
            print(f"ckpt-gui: sorting/filtering the tree failed: {error!r}", file=sys.stderr)
            self._failed()
