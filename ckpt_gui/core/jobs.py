"""Background jobs are plain generators that yield Progress.

Every ``yield`` is both a progress point and a cancel point: the caller cancels
by calling ``close()`` on the generator (GeneratorExit is raised at the yield,
so ``finally`` blocks clean up). The Qt layer runs them on a QThread; the CLI
runs them in the foreground with a progress bar.
"""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import dataclass
from typing import TypeVar

T = TypeVar("T")


@dataclass(frozen=True)
class Progress:
    """``done`` out of ``total`` units (bytes where it makes sense), with a short message."""

    done: int
    total: int
    message: str = ""

    @property
    def fraction(self) -> float:
        return self.done / self.total if self.total else 0.0


# A job yields Progress and returns its result (StopIteration.value).
Job = Generator[Progress, None, T]


def run_to_completion(job: Job[T]) -> T:
    """Drive a job without reporting progress; returns what it returns."""
    while True:
        try:
            next(job)
        except StopIteration as stop:
            result: T = stop.value
            return result
