"""Shared helpers: whole-process timing with peak RSS, and the result table."""

from __future__ import annotations

import os
import resource
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


@dataclass
class Measurement:
    seconds: float
    peak_rss_mb: float


@dataclass
class Result:
    name: str
    ours: Measurement
    baseline: Measurement
    target_speedup: float | None = None
    note: str = ""

    @property
    def speedup(self) -> float:
        return self.baseline.seconds / self.ours.seconds


def measure(argv: list[str], env: dict[str, str] | None = None, repeat: int = 1) -> Measurement:
    """Run a command as its own process; median wall time and its peak RSS (from wait4)."""
    runs: list[Measurement] = []
    for _ in range(repeat):
        start = time.perf_counter()
        proc = subprocess.Popen(
            argv,
            env={**os.environ, "PYTHONPATH": str(ROOT), **(env or {})},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        _, status, usage = os.wait4(proc.pid, 0)
        elapsed = time.perf_counter() - start
        stderr = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
        if status != 0 and os.waitstatus_to_exitcode(status) not in (0, 1):
            raise RuntimeError(f"{' '.join(argv)} failed: {stderr[-2000:]}")
        runs.append(Measurement(elapsed, usage.ru_maxrss / 1024))
    runs.sort(key=lambda m: m.seconds)
    return runs[len(runs) // 2]


def python(*args: str) -> list[str]:
    return [sys.executable, *args]


def drop_page_cache_hint() -> None:
    """Best effort: we cannot drop caches unprivileged everywhere; runs are warm for both sides."""
    resource.getrusage(resource.RUSAGE_SELF)


def print_results(results: list[Result]) -> None:
    print()
    header = f"{'benchmark':<44} {'ours s':>8} {'base s':>8} {'speedup':>8} {'target':>7} {'ours MB':>8} {'base MB':>8} {'mem ratio':>9}"
    print(header)
    print("-" * len(header))
    for r in results:
        target = f"{r.target_speedup:.0f}x" if r.target_speedup else "-"
        mem_ratio = r.baseline.peak_rss_mb / r.ours.peak_rss_mb if r.ours.peak_rss_mb else 0
        status = (
            ""
            if not r.target_speedup
            else ("  ok" if r.speedup >= r.target_speedup else "  BELOW TARGET")
        )
        print(
            f"{r.name:<44} {r.ours.seconds:>8.2f} {r.baseline.seconds:>8.2f} {r.speedup:>7.1f}x {target:>7} "
            f"{r.ours.peak_rss_mb:>8.0f} {r.baseline.peak_rss_mb:>8.0f} {mem_ratio:>8.1f}x{status}"
        )
        if r.note:
            print(f"    {r.note}")
