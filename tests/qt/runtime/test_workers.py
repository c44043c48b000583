"""The generic background runner: signals, order, threads, errors, cancellation."""

from __future__ import annotations

import threading

import pytest

from ckpt_gui.core.errors import CheckpointError
from ckpt_gui.core.jobs import Progress
from ckpt_gui.qt.runtime.workers import (
    Worker,
    active_workers,
    describe_error,
    run_in_background,
)


def test_plain_function_returns_on_a_worker_thread(qtbot) -> None:
    seen: dict[str, object] = {}

    def work(a: int, b: int) -> int:
        seen["thread"] = threading.current_thread()
        return a + b

    worker = Worker(work, 2, b=3)
    returned: list[object] = []
    worker.returned.connect(returned.append)
    with qtbot.waitSignals(
        [worker.started, worker.returned, worker.finished], order="strict", timeout=30_000
    ):
        worker.start()
    assert returned == [5]
    assert seen["thread"] is not threading.main_thread()
    assert worker.result == 5
    qtbot.waitUntil(lambda: worker not in active_workers(), timeout=30_000)


def test_generator_job_yields_progress_then_returns(qtbot) -> None:
    def job():
        for i in range(3):
            yield Progress(i + 1, 3, f"step {i}")
        return "done"

    worker = Worker(job)
    events: list[tuple[str, object]] = []
    worker.started.connect(lambda: events.append(("started", None)))
    worker.yielded.connect(lambda p: events.append(("yielded", p.done)))
    worker.returned.connect(lambda r: events.append(("returned", r)))
    worker.finished.connect(lambda: events.append(("finished", None)))
    with qtbot.waitSignal(worker.finished, timeout=30_000):
        worker.start()
    assert events == [
        ("started", None),
        ("yielded", 1),
        ("yielded", 2),
        ("yielded", 3),
        ("returned", "done"),
        ("finished", None),
    ]


def test_errored_carries_the_exception_and_describes_it_in_one_line(qtbot) -> None:
    raised = CheckpointError("model.safetensors", "header is not valid JSON")

    def fail() -> None:
        raise raised

    worker = Worker(fail)
    returned: list[object] = []
    errored: list[BaseException] = []
    worker.returned.connect(returned.append)
    worker.errored.connect(errored.append)
    with qtbot.waitSignals([worker.errored, worker.finished], order="strict", timeout=30_000):
        worker.start()
    assert errored == [raised] and errored[0] is raised  # the object itself, not a string
    assert describe_error(errored[0]) == "model.safetensors: header is not valid JSON"
    assert worker.exception is raised
    assert returned == []


def test_returned_carries_the_result_object(qtbot) -> None:
    result = {"tensors": [1, 2, 3]}
    worker = Worker(lambda: result)
    returned: list[object] = []
    worker.returned.connect(returned.append)
    with qtbot.waitSignal(worker.finished, timeout=30_000):
        worker.start()
    assert len(returned) == 1 and returned[0] is result


def test_unexpected_error_names_its_type(qtbot) -> None:
    errors: list[BaseException] = []
    # Callbacks are connected before the thread starts, so no signal can be missed.
    worker = run_in_background(lambda: {}["missing"], on_errored=errors.append)
    qtbot.waitUntil(lambda: worker not in active_workers(), timeout=30_000)
    assert [type(e) for e in errors] == [KeyError]
    assert describe_error(errors[0]) == "KeyError: 'missing'"


def test_quit_closes_a_generator_job_at_its_next_yield(qtbot) -> None:
    gate = threading.Event()
    cleaned = threading.Event()
    steps: list[int] = []

    def job():
        try:
            for i in range(1000):
                steps.append(i)
                yield Progress(i, 1000)
                gate.wait(5)
        finally:
            cleaned.set()
        return "never"

    worker = Worker(job)
    returned: list[object] = []
    worker.returned.connect(returned.append)
    worker.start()
    qtbot.waitUntil(lambda: len(steps) >= 1, timeout=30_000)
    with qtbot.waitSignals([worker.aborted, worker.finished], order="strict", timeout=30_000):
        worker.quit()
        gate.set()
    assert cleaned.is_set()
    assert returned == []
    assert len(steps) < 1000


def test_plain_function_polls_should_stop_and_reports_aborted(qtbot) -> None:
    started = threading.Event()

    def long_task() -> str:
        started.set()
        while not worker.should_stop:
            threading.Event().wait(0.01)
        return "stopped early"

    worker = Worker(long_task)
    errored: list[str] = []
    returned: list[object] = []
    worker.errored.connect(errored.append)
    worker.returned.connect(returned.append)
    worker.start()
    assert started.wait(30)
    with qtbot.waitSignals([worker.aborted, worker.finished], order="strict", timeout=30_000):
        worker.quit()
    assert errored == [] and returned == []


def test_a_worker_starts_only_once(qtbot) -> None:
    worker = Worker(lambda: None)
    with qtbot.waitSignal(worker.finished, timeout=30_000):
        worker.start()
    with pytest.raises(RuntimeError):
        worker.start()


def test_a_worker_still_running_is_reported_and_an_ended_one_is_not(qtbot) -> None:
    """What the autouse check in tests/qt/conftest.py fails a test for."""
    from tests.support.qt_workers import workers_still_running

    release = threading.Event()

    def held() -> None:
        release.wait(60)

    quick = Worker(lambda: 1)
    with qtbot.waitSignal(quick.returned, timeout=30_000):
        quick.start()
    stray = Worker(held)
    with qtbot.waitSignal(stray.started, timeout=30_000):
        stray.start()
    assert workers_still_running() == [held.__qualname__]  # the quick one is not a stray
    release.set()
    assert stray.wait(30_000)
    assert workers_still_running() == []
    assert active_workers() == []
