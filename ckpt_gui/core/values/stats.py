"""Streaming statistics and a histogram of one tensor, in bounded memory."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ckpt_gui.core.model import Checkpoint, TensorInfo
from ckpt_gui.core.values.chunks import iter_chunks

HISTOGRAM_BINS = 64


@dataclass(frozen=True)
class TensorStats:
    count: int
    min: float
    max: float
    mean: float
    std: float
    abs_max: float
    zeros_fraction: float
    nan: int
    inf: int
    histogram_counts: tuple[int, ...] = field(default=())
    histogram_edges: tuple[float, ...] = field(default=())

    def to_json(self) -> dict[str, Any]:
        def clean(x: float) -> float | None:
            return None if math.isnan(x) else x

        return {
            "count": self.count,
            "min": clean(self.min),
            "max": clean(self.max),
            "mean": clean(self.mean),
            "std": clean(self.std),
            "abs_max": clean(self.abs_max),
            "zeros_fraction": self.zeros_fraction,
            "nan": self.nan,
            "inf": self.inf,
        }


class _Accumulator:
    """Min/max/mean/std over finite values (Chan's parallel update), NaN/Inf/zero counts."""

    def __init__(self) -> None:
        self.count = self.finite = self.nan = self.inf = self.zeros = 0
        self.min, self.max = math.inf, -math.inf
        self.mean = self.m2 = 0.0

    def add(self, values: np.ndarray[Any, Any]) -> None:
        if values.dtype == np.bool_:
            values = values.astype(np.uint8)
        if np.iscomplexobj(values):
            values = np.abs(values)
        self.count += values.size
        self.zeros += int(np.count_nonzero(values == 0))
        if values.dtype.kind == "f":
            nan_mask = np.isnan(values)
            inf_mask = np.isinf(values)
            self.nan += int(nan_mask.sum())
            self.inf += int(inf_mask.sum())
            if self.nan or self.inf:
                values = values[~(nan_mask | inf_mask)]
        if values.size == 0:
            return
        as64 = values.astype(np.float64, copy=False)
        n_b = as64.size
        mean_b = float(as64.mean())
        m2_b = float(((as64 - mean_b) ** 2).sum())
        n_a = self.finite
        total = n_a + n_b
        delta = mean_b - self.mean
        self.mean += delta * n_b / total
        self.m2 += m2_b + delta * delta * n_a * n_b / total
        self.finite = total
        self.min = min(self.min, float(as64.min()))
        self.max = max(self.max, float(as64.max()))


def compute_stats(
    checkpoint: Checkpoint,
    tensor: TensorInfo,
    bins: int = HISTOGRAM_BINS,
    should_stop: Callable[[], bool] = lambda: False,
) -> TensorStats:
    """Two passes over the tensor in chunks: moments first, then the histogram."""
    acc = _Accumulator()
    _consume(iter_chunks(checkpoint, tensor), acc.add, should_stop)
    if acc.finite == 0:
        nan = math.nan
        return TensorStats(
            acc.count, nan, nan, nan, nan, nan, _fraction(acc.zeros, acc.count), acc.nan, acc.inf
        )
    low, high = acc.min, acc.max
    if low == high:
        low, high = low - 0.5, high + 0.5
    counts = np.zeros(bins, dtype=np.int64)
    edges = np.linspace(low, high, bins + 1)

    def add_histogram(values: np.ndarray[Any, Any]) -> None:
        if np.iscomplexobj(values):
            values = np.abs(values)
        finite = values[np.isfinite(values)] if values.dtype.kind == "f" else values
        counts[:] += np.histogram(finite, bins=edges)[0]

    _consume(iter_chunks(checkpoint, tensor), add_histogram, should_stop)
    return TensorStats(
        count=acc.count,
        min=acc.min,
        max=acc.max,
        mean=acc.mean,
        std=math.sqrt(acc.m2 / acc.finite),
        abs_max=max(abs(acc.min), abs(acc.max)),
        zeros_fraction=_fraction(acc.zeros, acc.count),
        nan=acc.nan,
        inf=acc.inf,
        histogram_counts=tuple(int(c) for c in counts),
        histogram_edges=tuple(float(e) for e in edges),
    )


class StatsCancelled(Exception):
    """Raised when ``should_stop`` returned True between chunks."""


def _consume(
    chunks: Iterable[np.ndarray[Any, Any]],
    sink: Callable[[np.ndarray[Any, Any]], None],
    should_stop: Callable[[], bool],
) -> None:
    for chunk in chunks:
        if should_stop():
            raise StatsCancelled
        sink(chunk)


def _fraction(part: int, whole: int) -> float:
    return part / whole if whole else 0.0
