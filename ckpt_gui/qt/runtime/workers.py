"""Run a plain function or a core generator job on a background QThread.

Every feature that reads files, imports torch or exports uses this one runner, so
the GUI thread never blocks on I/O. Modelled on superqt's ``thread_worker``:

* ``Worker(func, *args, **kwargs)`` calls ``func(*args, **kwargs)`` on its own thread.
  If the call returns a generator (a ``ckpt_gui.core.jobs`` job yielding ``Progress``),
  the worker drives it there: each yielded value is re-emitted as ``yielded`` and
  the generator's return value becomes ``returned``.
* Signals, always in this order: ``started``, ``yielded``\\*, exactly one of
  ``returned(object)`` / ``errored(str)`` / ``aborted``, then ``finished``. They are
  delivered on the GUI thread (queued), so slots may touch widgets.
* ``errored`` carries one readable line (a ``CheckpointError`` as ``file: problem``,
  anything else as ``Type: message``); the exception itself is kept in ``exception``.
* Cancel is cooperative: ``quit()`` asks to stop. A generator job is closed at its
  next ``yield`` (``GeneratorExit`` runs its ``finally`` blocks); a plain function may
  poll ``worker.should_stop`` (pass it in, e.g. to ``compute_stats(should_stop=...)``).
  Once stop was asked, the worker reports ``aborted`` instead of a result or error.

Typical use::

    worker = Worker(open_target, path)
    worker.returned.connect(self.show_checkpoint)
    worker.errored.connect(self.show_error)
    worker.start()

Running workers are kept alive by a module-level registry until their thread ends,
so callers need not hold a reference; ``active_workers()`` lists them (the screenshot
mode waits until it is empty).
"""

from __future__ import annotations

import inspect
import threading
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject, QThread, Signal
from shiboken6 import Shiboken

_ACTIVE: set[Worker] = set()
_ACTIVE_LOCK = threading.Lock()
_RETIRED: list[QObject] = []  # finished workers/threads whose C++ deletion is pending


def active_workers() -> list[Worker]:
    """Workers started and not yet finished (GUI-thread view)."""
    with _ACTIVE_LOCK:
        return list(_ACTIVE)


def shutdown_workers(timeout_ms: int = 5_000) -> None:
    """Ask every running worker to stop and wait for it (on application exit).

    A job blocked inside a long call (a torch import, say) cannot be interrupted; it
    gets ``timeout_ms`` in total before the process exits anyway.
    """
    workers = active_workers()
    for worker in workers:
        worker.quit()
    for worker in workers:
        worker.wait(timeout_ms)


def describe_error(exc: BaseException) -> str:
    """One line for the user: CheckpointErrors already read ``file: problem``."""
    from ckpt_gui.core.errors import CheckpointError

    if isinstance(exc, CheckpointError):
        return str(exc)
    text = " ".join(str(exc).split())[:300]
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


class _Thread(QThread):
    """The QThread whose run() executes the worker's body."""

    def __init__(self, body: Callable[[], None]) -> None:
        super().__init__()
        self._body = body

    def run(self) -> None:
        self._body()


class Worker(QObject):
    """A function or generator job running on its own QThread (see the module doc)."""

    started = Signal()
    yielded = Signal(object)
    returned = Signal(object)
    errored = Signal(str)
    aborted = Signal()
    finished = Signal()

    def __init__(self, func: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
        super().__init__()
        self._func = func
        self._args = args
        self._kwargs = kwargs
        self._stop = threading.Event()
        self._thread: _Thread | None = None
        self._started = False
        self.exception: BaseException | None = None
        self.result: Any = None

    # -- control -----------------------------------------------------------------
    def start(self) -> None:
        """Start the background thread (once)."""
        if self._started:
            raise RuntimeError("a Worker can only be started once")
        self._started = True
        self._thread = _Thread(self._run)
        # finished is emitted by our body last; the thread object is dropped only when
        # the OS thread has really ended, so Qt never destroys a running QThread.
        self._thread.finished.connect(self._release)
        with _ACTIVE_LOCK:
            _ACTIVE.add(self)
        self._thread.start()

    def quit(self) -> None:
        """Ask the job to stop at its next cancel point; returns at once."""
        self._stop.set()

    @property
    def should_stop(self) -> bool:
        """True once ``quit()`` was called; plain functions may poll it."""
        return self._stop.is_set()

    def stop_requested(self) -> bool:
        """Callable form of ``should_stop``, to hand to core functions."""
        return self._stop.is_set()

    @property
    def is_running(self) -> bool:
        return self._thread is not None and not self._thread.isFinished()

    def wait(self, msecs: int = 30_000) -> bool:
        """Block until the thread ended (for tests and shutdown only)."""
        return self._thread.wait(msecs) if self._thread is not None else True

    # -- body (runs on the worker thread) -----------------------------------------
    def _run(self) -> None:
        self.started.emit()
        try:
            outcome = self._func(*self._args, **self._kwargs)
            if inspect.isgenerator(outcome):
                outcome = self._drive(outcome)
        except _Aborted:
            self.aborted.emit()
        except BaseException as exc:
            self.exception = exc
            if self._stop.is_set():
                self.aborted.emit()
            else:
                self.errored.emit(describe_error(exc))
        else:
            if self._stop.is_set():
                self.aborted.emit()
            else:
                self.result = outcome
                self.returned.emit(outcome)
        self.finished.emit()

    def _drive(self, job: Any) -> Any:
        while True:
            if self._stop.is_set():
                job.close()
                raise _Aborted
            try:
                value = next(job)
            except StopIteration as stop:
                return stop.value
            self.yielded.emit(value)

    def _release(self) -> None:
        # QThread.finished is emitted just before the OS thread ends; wait for the end so
        # that dropping the last reference can never destroy a running QThread (abort).
        thread, self._thread = self._thread, None
        if thread is not None:
            thread.wait()
        with _ACTIVE_LOCK:
            _ACTIVE.discard(self)
        # Worker and thread sit in reference cycles (the thread's body, frames kept by
        # tracebacks) that only the garbage collector frees, on whatever thread it happens
        # to run, a worker's too, and destroying a Qt object there crashes. So their C++
        # halves are deleted by the GUI thread's event loop, and until that has happened
        # _RETIRED keeps the wrappers reachable (the collector leaves them alone). The
        # Python attributes (result, exception, should_stop) stay readable.
        _RETIRED[:] = [obj for obj in _RETIRED if Shiboken.isValid(obj)]
        for obj in (thread, self):
            if obj is not None:
                _RETIRED.append(obj)
                obj.deleteLater()


class _Aborted(Exception):
    """Internal: the job was closed because stop was requested."""


def run_in_background(
    func: Callable[..., Any],
    *args: Any,
    on_returned: Callable[[Any], None] | None = None,
    on_errored: Callable[[str], None] | None = None,
    on_yielded: Callable[[Any], None] | None = None,
    on_finished: Callable[[], None] | None = None,
    **kwargs: Any,
) -> Worker:
    """Create, connect and start a Worker in one call; returns it (for ``quit()``)."""
    worker = Worker(func, *args, **kwargs)
    if on_returned is not None:
        worker.returned.connect(on_returned)
    if on_errored is not None:
        worker.errored.connect(on_errored)
    if on_yielded is not None:
        worker.yielded.connect(on_yielded)
    if on_finished is not None:
        worker.finished.connect(on_finished)
    worker.start()
    return worker
