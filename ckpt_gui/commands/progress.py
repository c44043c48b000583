"""Drive a job in the foreground, showing its Progress on stderr.

The one place the CLI verbs run jobs: a redrawn bar with throughput and ETA on a
terminal, nothing (or, with ``always``, a line every few seconds) elsewhere.
Ctrl-C and SIGTERM close the job, so its cleanup runs (partial output removed,
reader threads stopped), and then propagate as KeyboardInterrupt.
"""

from __future__ import annotations

import signal
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, TextIO, TypeVar

from ckpt_gui.core.formatting import human_bytes
from ckpt_gui.core.jobs import Job, Progress

T = TypeVar("T")
_WIDTH = 100


def drive(
    job: Job[T],
    label: str = "",
    *,
    in_bytes: bool = True,
    stream: TextIO | None = None,
    always: bool = False,
) -> T:
    """Run ``job`` to its result, reporting progress; any interruption closes it."""
    out = stream if stream is not None else sys.stderr
    tty = out.isatty()
    show = tty or always
    # A terminal redraws one line; a log file gets a line every few seconds.
    interval = 0.1 if tty else 2.0
    start = time.monotonic()
    last = 0.0
    shown = False
    try:
        with _sigterm_as_interrupt():
            while True:
                try:
                    progress = next(job)
                except StopIteration as stop:
                    result: T = stop.value
                    return result
                now = time.monotonic()
                if show and (now - last >= interval or progress.done == progress.total):
                    last = now
                    line = render(progress, label, now - start, in_bytes)
                    out.write(f"\r{line:<{_WIDTH}}" if tty else f"{line}\n")
                    out.flush()
                    shown = True
    finally:
        job.close()
        if shown and tty:
            out.write("\r" + " " * _WIDTH + "\r")
            out.flush()


def render(progress: Progress, label: str, elapsed: float, in_bytes: bool) -> str:
    """``label [#####.....]  42%  1.2 GiB / 2.9 GiB  410 MiB/s  ETA 4s  message``."""
    fraction = min(max(progress.fraction, 0.0), 1.0)
    filled = int(20 * fraction)
    bar = f"[{'#' * filled}{'.' * (20 - filled)}]"
    if in_bytes:
        amount = f"{human_bytes(progress.done)} / {human_bytes(progress.total)}"
    else:
        amount = f"{progress.done}/{progress.total}"
    rate = progress.done / elapsed if elapsed > 0 else 0.0
    speed = f"  {human_bytes(int(rate))}/s" if in_bytes and rate else ""
    eta = f"  ETA {(progress.total - progress.done) / rate:.0f}s" if rate and progress.total else ""
    parts = [label, bar, f"{100 * fraction:3.0f}%", amount + speed + eta, progress.message]
    return "  ".join(p for p in parts if p)[:_WIDTH]


@contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    """SIGTERM cancels like Ctrl-C (only possible from the main thread)."""

    def on_term(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    try:
        previous = signal.signal(signal.SIGTERM, on_term)
    except ValueError:  # not the main thread
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
