"""Shared helpers: whole-process timing with peak RSS, and the result table."""

from __future__ import annotations

import json
import os
import subprocess
import sys
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


# Started when this module is imported, before the driver grows (see spawner.py).
_SPAWNER = subprocess.Popen(
    [sys.executable, str(Path(__file__).with_name("spawner.py"))],
    stdin=subprocess.PIPE,
    stdout=subprocess.PIPE,
    text=True,
)


def measure(argv: list[str], env: dict[str, str] | None = None, repeat: int = 1) -> Measurement:
    """Run a command as its own process; median wall time and its peak RSS (from wait4)."""
    assert _SPAWNER.stdin is not None and _SPAWNER.stdout is not None
    runs: list[Measurement] = []
    for _ in range(repeat):
        request = {"argv": argv, "env": {**os.environ, "PYTHONPATH": str(ROOT), **(env or {})}}
        _SPAWNER.stdin.write(json.dumps(request) + "\n")
        _SPAWNER.stdin.flush()
        answer = json.loads(_SPAWNER.stdout.readline())
        if answer["exit_code"] not in (0, 1):
            raise RuntimeError(f"{' '.join(argv)} failed: {answer['stderr']}")
        runs.append(Measurement(answer["seconds"], answer["peak_rss_kb"] / 1024))
    runs.sort(key=lambda m: m.seconds)
    return runs[len(runs) // 2]


def python(*args: str) -> list[str]:
    return [sys.executable, *args]


def print_results(results: list[Result]) -> None:
    print()
    header = f"{'benchmark':<44} {'ours s':>8} {'base s':>8} {'speedup':>8} {'target':>7} {'ours MB':>8} {'base MB':>8} {'mem ratio':>9}"
    print(header)
    print("-" * len(header))
    for r in results:
        target = f"{r.target_speedup:.2g}x" if r.target_speedup else "-"
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
