"""Export jobs queued and run one at a time on Worker threads.

``JobQueue.submit(ExportJob(...))`` appends a job; jobs run in FIFO order, one at a
time (two exports at once would only compete for the same disk). Each job is a
core generator (``run_plan`` / ``run_random_init``) driven by a ``Worker``; cancel
is ``worker.quit()``: the generator is closed at its next yield and the core
removes its partial folder. A queued job is cancelled by dropping it.

The worker emits every ``Progress``; the queue only records it (cheap) and a timer
publishes ``job_changed`` for jobs that moved, at most ``UPDATE_HZ`` times a second,
so a fast job cannot flood the GUI thread with repaints.
"""

from __future__ import annotations

import enum
import itertools
import time
from collections import deque
from collections.abc import Callable, Generator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, QTimer, Signal

from ckpt_gui.core.export import ExportOptions, ExportPlan, ExportResult, run_plan, run_random_init
from ckpt_gui.core.jobs import Progress
from ckpt_gui.qt.runtime.workers import Worker, describe_error

UPDATE_HZ = 10
RATE_WINDOW_S = 3.0  # throughput is measured over the last few seconds, not since the start

# What a job runs: the plan and options in, a core job generator out.
JobRunner = Callable[[ExportPlan, ExportOptions], Generator[Progress, None, ExportResult]]

KIND_TITLES = {
    "convert": "Convert",
    "reshard": "Re-shard",
    "safetensors": "To safetensors",
    "random-init": "Random init",
}


class JobState(enum.Enum):
    QUEUED = "Queued"
    RUNNING = "Running"
    CANCELLING = "Cancelling"
    DONE = "Done"
    FAILED = "Failed"
    CANCELLED = "Cancelled"

    @property
    def finished(self) -> bool:
        return self in (JobState.DONE, JobState.FAILED, JobState.CANCELLED)


def default_runner(plan: ExportPlan) -> JobRunner:
    return run_random_init if plan.kind == "random-init" else run_plan


def describe_plan(plan: ExportPlan) -> str:
    """'Convert → BF16: llama → llama-bf16' (what the job list shows)."""
    title = KIND_TITLES.get(plan.kind, plan.kind)
    dtype = plan.extra.get("dtype")
    if dtype and plan.kind in ("convert", "random-init"):
        title += f" → {dtype}"
    source = Path(plan.source).name or plan.source
    return f"{title}: {source} → {plan.output.name}"


_ids = itertools.count(1)


@dataclass(eq=False)
class ExportJob:
    """One export: its plan, options, and what happened so far (GUI-thread state)."""

    plan: ExportPlan
    options: ExportOptions
    runner: JobRunner | None = None
    title: str = ""
    id: int = field(default_factory=lambda: next(_ids))
    state: JobState = JobState.QUEUED
    done: int = 0
    total: int = 0
    message: str = ""
    started_at: float | None = None
    finished_at: float | None = None
    result: ExportResult | None = None
    error: str | None = None
    _samples: deque[tuple[float, int]] = field(default_factory=lambda: deque(maxlen=256))

    def __post_init__(self) -> None:
        if not self.title:
            self.title = describe_plan(self.plan)
        if self.runner is None:
            self.runner = default_runner(self.plan)
        self.total = self.plan.bytes_to_write

    @property
    def output(self) -> Path:
        return self.plan.output

    @property
    def fraction(self) -> float:
        if self.state is JobState.DONE:
            return 1.0
        return self.done / self.total if self.total else 0.0

    def record(self, progress: Progress, now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        self.done, self.total, self.message = progress.done, progress.total, progress.message
        self._samples.append((now, progress.done))
        while len(self._samples) > 2 and now - self._samples[0][0] > RATE_WINDOW_S:
            self._samples.popleft()

    def throughput(self) -> float | None:
        """Bytes per second over the last few seconds (None before there is a measurement)."""
        if self.state is JobState.DONE and self.result is not None and self.result.seconds > 0:
            return self.total / self.result.seconds
        if len(self._samples) < 2:
            return None
        (t0, d0), (t1, d1) = self._samples[0], self._samples[-1]
        if t1 - t0 <= 0:
            return None
        return max(0.0, (d1 - d0) / (t1 - t0))

    def eta_seconds(self) -> float | None:
        rate = self.throughput()
        if self.state is not JobState.RUNNING or not rate:
            return None
        return max(0.0, (self.total - self.done) / rate)


class JobQueue(QObject):
    """FIFO of ExportJobs, one running at a time (see the module doc)."""

    job_added = Signal(object)
    job_changed = Signal(object)  # state changes at once, progress at most UPDATE_HZ per second
    job_removed = Signal(object)
    idle = Signal()  # nothing running or queued any more

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.jobs: list[ExportJob] = []
        self._pending: deque[ExportJob] = deque()
        self._running: ExportJob | None = None
        self._worker: Worker | None = None
        self._dirty: set[int] = set()
        self._timer = QTimer(self)
        self._timer.setInterval(1000 // UPDATE_HZ)
        self._timer.timeout.connect(self._publish)

    # -- queries ----------------------------------------------------------------------------
    @property
    def running(self) -> ExportJob | None:
        return self._running

    @property
    def queued(self) -> list[ExportJob]:
        return list(self._pending)

    def has_unfinished(self) -> bool:
        """A job queued or still running (one whose thread ended but whose last signals
        are not delivered yet counts as finished: nothing is left to cancel)."""
        return bool(self._pending) or (self._worker is not None and self._worker.is_running)

    def needs_confirmation(self) -> bool:
        """Quitting would cancel work the user asked for (not one already being cancelled)."""
        running = self._running is not None and self._running.state is JobState.RUNNING
        return bool(self._pending) or (running and self.has_unfinished())

    # -- control ----------------------------------------------------------------------------
    def submit(self, job: ExportJob) -> ExportJob:
        self.jobs.append(job)
        self._pending.append(job)
        self.job_added.emit(job)
        self._start_next()
        return job

    def cancel(self, job: ExportJob) -> None:
        """Drop a queued job, or ask the running one to stop (its core cleans up)."""
        if job in self._pending:
            self._pending.remove(job)
            job.state = JobState.CANCELLED
            job.finished_at = time.monotonic()
            self.job_changed.emit(job)
            if not self.has_unfinished():
                self.idle.emit()
        elif job is self._running and self._worker is not None and not job.state.finished:
            # A job whose verdict arrived (its thread's end is still queued) stays as it is:
            # a finished export shown as cancelled would contradict its output folder.
            job.state = JobState.CANCELLING
            self._worker.quit()
            self.job_changed.emit(job)

    def cancel_all(self) -> None:
        # Queued jobs first, so the running one's end cannot start the next.
        for job in list(self._pending):
            self.cancel(job)
        if self._running is not None:
            self.cancel(self._running)

    def wait(self, timeout_ms: int = 60_000) -> bool:
        """Block until the running job's thread ended (on quit); True if it did."""
        worker = self._worker
        return worker.wait(timeout_ms) if worker is not None else True

    def remove_finished(self) -> None:
        """Forget finished jobs (the dock's Clear button)."""
        for job in [j for j in self.jobs if j.state.finished]:
            self.jobs.remove(job)
            self.job_removed.emit(job)

    # -- running ----------------------------------------------------------------------------
    def _start_next(self) -> None:
        if self._running is not None or not self._pending:
            return
        job = self._pending.popleft()
        assert job.runner is not None
        self._running = job
        job.state = JobState.RUNNING
        job.started_at = time.monotonic()
        job.record(Progress(0, job.total, "starting"), job.started_at)
        worker = Worker(job.runner, job.plan, job.options)
        worker.yielded.connect(lambda progress, job=job: self._on_progress(job, progress))
        worker.returned.connect(lambda result, job=job: self._on_returned(job, result))
        worker.errored.connect(lambda error, job=job: self._on_errored(job, error))
        worker.aborted.connect(lambda job=job: self._on_aborted(job))
        worker.finished.connect(lambda job=job: self._on_finished(job))
        self._worker = worker
        self.job_changed.emit(job)
        self._timer.start()
        worker.start()

    def _on_progress(self, job: ExportJob, progress: Any) -> None:
        if isinstance(progress, Progress):
            job.record(progress)
            self._dirty.add(job.id)

    def _on_returned(self, job: ExportJob, result: Any) -> None:
        job.result = result if isinstance(result, ExportResult) else None
        job.done = job.total
        self._settle(job, JobState.DONE)

    def _on_errored(self, job: ExportJob, error: BaseException) -> None:
        job.error = describe_error(error)
        self._settle(job, JobState.FAILED)

    def _on_aborted(self, job: ExportJob) -> None:
        self._settle(job, JobState.CANCELLED)

    def _settle(self, job: ExportJob, state: JobState) -> None:
        # The verdict arrives before the thread's `finished`; announce it at once so views
        # never show a finished state with the buttons of a running job.
        job.state = state
        self.job_changed.emit(job)

    def _on_finished(self, job: ExportJob) -> None:
        job.finished_at = time.monotonic()
        if not job.state.finished:  # finished without a verdict: treat as cancelled
            job.state = JobState.CANCELLED
        self._dirty.discard(job.id)
        self._running = None
        self._worker = None
        self.job_changed.emit(job)
        if self._pending:
            self._start_next()
        else:
            self._timer.stop()
            self.idle.emit()

    def _publish(self) -> None:
        if not self._dirty:
            return
        dirty, self._dirty = self._dirty, set()
        for job in self.jobs:
            if job.id in dirty:
                self.job_changed.emit(job)
