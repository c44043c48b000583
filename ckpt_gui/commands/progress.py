"""Run a job in the foreground: a progress line on stderr, only when stderr is a terminal."""

from __future__ import annotations

import sys
import time
from typing import TextIO, TypeVar

from ckpt_gui.core.formatting import human_bytes
from ckpt_gui.core.jobs import Job

T = TypeVar("T")
_REFRESH_SECONDS = 0.1


def drive(job: Job[T], label: str, stream: TextIO | None = None) -> T:
    """Run ``job`` to its result; Ctrl-C closes it (its readers stop) and propagates."""
    out = stream if stream is not None else sys.stderr
    show = out.isatty()
    start = last = time.monotonic()
    shown = False
    try:
        while True:
            try:
                progress = next(job)
            except StopIteration as stop:
                result: T = stop.value
                return result
            now = time.monotonic()
            if show and now - last >= _REFRESH_SECONDS:
                last = now
                rate = progress.done / (now - start) if now > start else 0.0
                line = (
                    f"{label} {100 * progress.fraction:5.1f}%  "
                    f"{human_bytes(progress.done)} / {human_bytes(progress.total)}  "
                    f"{human_bytes(int(rate))}/s"
                )
                out.write("\r" + line[:100].ljust(100))
                out.flush()
                shown = True
    finally:
        job.close()
        if shown:
            out.write("\r" + " " * 100 + "\r")
            out.flush()
