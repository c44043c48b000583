"""Drive a job in the foreground, showing its Progress on stderr."""

from __future__ import annotations

import sys
import time
from typing import TextIO, TypeVar

from ckpt_gui.core.formatting import human_bytes
from ckpt_gui.core.jobs import Job

T = TypeVar("T")


def run_with_progress(
    job: Job[T], *, in_bytes: bool = False, stream: TextIO | None = None, always: bool = False
) -> T:
    """Run ``job`` to completion; a one-line progress display on a terminal (or ``always``).

    Ctrl-C closes the job (its cleanup runs) and re-raises KeyboardInterrupt.
    """
    out = stream or sys.stderr
    show = always or out.isatty()
    # A terminal redraws one line; a log file gets a line every few seconds.
    interval = 0.25 if out.isatty() else 2.0
    last = 0.0
    shown = False
    try:
        while True:
            try:
                progress = next(job)
            except StopIteration as stop:
                result: T = stop.value
                return result
            now = time.monotonic()
            if show and (now - last > interval or progress.done == progress.total):
                last = now
                if in_bytes:
                    amount = f"{human_bytes(progress.done)} / {human_bytes(progress.total)}"
                else:
                    amount = f"{progress.done}/{progress.total}"
                percent = f"{100 * progress.fraction:5.1f}%"
                line = f"{percent}  {amount}  {progress.message}"[:100]
                out.write(f"\r{line:<100}" if out.isatty() else f"{line}\n")
                out.flush()
                shown = True
    except BaseException:
        job.close()
        raise
    finally:
        if shown and out.isatty():
            out.write("\n")
            out.flush()
