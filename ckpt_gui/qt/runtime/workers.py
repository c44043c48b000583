"""Run a plain function or a core generator job on a background QThread.

Every feature that reads files, imports torch or exports uses this one runner, so
the GUI thread never blocks on I/O. Modelled on superqt's ``thread_worker``:

* ``Worker(func, *args, **kwargs)`` calls ``func(*args, **kwargs)`` on its own thread.
  If the call returns a generator (a ``ckpt_gui.core.jobs`` job yielding ``Progress``),
  the worker drives it there: each yielded value is re-emitted as ``yielded`` and
  the generator's return value becomes ``returned``.
* Signals, always in this order: ``started``, ``yielded``\\*, exactly one of
  ``returned(result)`` / ``errored(exception)`` / ``aborted``, then ``finished``. They
  are delivered on the GUI thread (queued), so slots may touch widgets.
* The signals carry the objects themselves: ``returned`` the function's result,
  ``errored`` the exception it raised (``describe_error(exc)`` is the one line to
  show: a ``CheckpointError`` as ``file: problem``, anything else as
  ``Type: message``). They stay readable as ``worker.result`` / ``worker.exception``.
* Cancel is cooperative: ``quit()`` asks to stop. A generator job is closed at its
  next ``yield`` (``GeneratorExit`` runs its ``finally`` blocks); a plain function may
  poll ``worker.should_stop`` (pass it in, e.g. to ``compute_stats(should_stop=...)``).
  Once stop was asked, the worker reports ``aborted`` instead of a result or error.

Typical use::

    worker = Worker(open_target, path)
    worker.returned.connect(self.show_checkpoint)
    worker.errored.connect(lambda exc: self.show_error(describe_error(exc)))
    worker.start()

Threads are owned in one place, ``THREADS`` (a ``WorkerThreads``): it creates each
worker's QThread, keeps it (and the worker) alive until the OS thread has ended,
joins it, and hands its deletion to the GUI thread. Callers need not hold a
reference; ``active_workers()`` lists the running ones (the screenshot mode waits
until it is empty) and ``shutdown_workers()`` stops and joins them all.
"""

from __future__ import annotations

import inspect
import threading
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject, QThread, Signal
from shiboken6 import Shiboken


def active_workers() -> list[Worker]:
    """Workers started and not yet finished (GUI-thread view)."""
    return THREADS.workers()


def shutdown_workers(timeout_ms: int = 5_000) -> None:
    """Ask every running worker to stop and wait for it (on application exit).

    A job blocked inside a long call (a torch import, say) cannot be interrupted; it
    gets ``timeout_ms`` in total before the process exits anyway.
    """
    THREADS.shutdown(timeout_ms)


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


class WorkerThreads:
    """The one owner of every worker's QThread: starts, joins and retires them.

    A QThread destroyed while it runs aborts the process, and a Qt object destroyed
    on a thread other than its own crashes it; so each thread stays referenced here
    from its start until its OS thread has ended, is joined here, and its C++ half
    (and the worker's) is deleted by the GUI thread's event loop.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._threads: dict[Worker, _Thread] = {}
        self._retired: list[QObject] = []  # deleteLater() pending: keep the wrappers alive

    def start(self, worker: Worker, body: Callable[[], None]) -> None:
        thread = _Thread(body)
        # finished is emitted just before the OS thread ends; release() joins it, so
        # dropping the last reference can never destroy a running QThread. Connected to
        # the worker (a QObject of the GUI thread): delivered there, queued.
        thread.finished.connect(worker._thread_ended)
        with self._lock:
            self._threads[worker] = thread
        thread.start()

    def workers(self) -> list[Worker]:
        with self._lock:
            return list(self._threads)

    def join(self, worker: Worker, msecs: int) -> bool:
        """Block until ``worker``'s thread has ended (True) or ``msecs`` passed (False)."""
        with self._lock:
            thread = self._threads.get(worker)
        return thread.wait(msecs) if thread is not None else True

    def shutdown(self, timeout_ms: int) -> None:
        workers = self.workers()
        for worker in workers:
            worker.quit()
        for worker in workers:
            self.join(worker, timeout_ms)

    def release(self, worker: Worker) -> None:
        """On the GUI thread, once the thread's ``finished`` was delivered."""
        with self._lock:
            thread = self._threads.pop(worker, None)
        if thread is None:
            return
        thread.wait()
        # Worker and thread sit in reference cycles (the thread's body, frames kept by
        # tracebacks) that only the garbage collector frees, on whatever thread it
        # happens to run, a worker's too, and destroying a Qt object there crashes. So
        # their C++ halves are deleted by the GUI thread's event loop, and until that has
        # happened _retired keeps the wrappers reachable (the collector leaves them
        # alone). The Python attributes (result, exception, should_stop) stay readable.
        self._retired[:] = [obj for obj in self._retired if Shiboken.isValid(obj)]
        for obj in (thread, worker):
            self._retired.append(obj)
            obj.deleteLater()


THREADS = WorkerThreads()


class Worker(QObject):
    """A function or generator job running on its own QThread (see the module doc)."""

    started = Signal()
    yielded = Signal(object)
    returned = Signal(object)  # the result
    errored = Signal(object)  # the exception (BaseException)
    aborted = Signal()
    finished = Signal()

    def __init__(self, func: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
        super().__init__()
        self._func = func
        self._args = args
        self._kwargs = kwargs
        self._stop = threading.Event()
        self._body_done = threading.Event()  # the function is done: the thread is ending
        self._started = False
        # What runs, for messages about workers (a test's stray worker, say).
        self.name: str = getattr(func, "__qualname__", None) or type(func).__name__
        self.exception: BaseException | None = None
        self.result: Any = None

    # -- control -----------------------------------------------------------------
    def start(self) -> None:
        """Start the background thread (once)."""
        if self._started:
            raise RuntimeError("a Worker can only be started once")
        self._started = True
        THREADS.start(self, self._run)

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
        """Started, and its function has not yet finished (``finished`` is still to come).

        Once false, its thread is only returning: ``wait()`` ends at once.
        """
        return self._started and not self._body_done.is_set()

    def wait(self, msecs: int = 30_000) -> bool:
        """Block until the thread ended (for tests and shutdown only)."""
        return THREADS.join(self, msecs)

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
                self.errored.emit(exc)
        else:
            if self._stop.is_set():
                self.aborted.emit()
            else:
                self.result = outcome
                self.returned.emit(outcome)
        # Before `finished`: whoever receives it must see is_running false. What is
        # left of the thread is posting that signal and returning.
        self._body_done.set()
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

    def _thread_ended(self) -> None:
        THREADS.release(self)


class _Aborted(Exception):
    """Internal: the job was closed because stop was requested."""


def run_in_background(
    func: Callable[..., Any],
    *args: Any,
    on_returned: Callable[[Any], None] | None = None,
    on_errored: Callable[[BaseException], None] | None = None,
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
