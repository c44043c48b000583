"""Scan every tensor of a checkpoint for NaN, Inf, all-zero tensors and extreme values.

One sequential pass over the data in chunks (``TensorStream``), bounded memory.
"Extreme" means beyond the largest finite value of a target dtype, e.g. a
float32 tensor holding 1e5, which would become Inf when converted to float16.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ckpt_gui.core.dtypes import FLOAT_DTYPES
from ckpt_gui.core.gguf.values import can_dequantize
from ckpt_gui.core.jobs import Job, Progress
from ckpt_gui.core.model import Checkpoint, TensorInfo
from ckpt_gui.core.values.chunks import decode_into
from ckpt_gui.core.values.stream import STREAM_CHUNK_ELEMENTS, TensorStream

# Largest finite value of each target dtype (float16: 65504; bfloat16 ~ float32).
DTYPE_MAX: dict[str, float] = {
    "F16": 65504.0,
    "BF16": 3.3895313892515355e38,
    "F32": 3.4028234663852886e38,
    "F8_E4M3": 448.0,
    "F8_E5M2": 57344.0,
}
DEFAULT_TARGET = "F16"
_DECODABLE = FLOAT_DTYPES | {"F8_E4M3", "F8_E5M2", "F8_E8M0", "F8_E4M3FNUZ", "F8_E5M2FNUZ"}
_INTEGER = frozenset({"BOOL", "U8", "I8", "I16", "U16", "I32", "U32", "I64", "U64"})
# Compute in slices that stay in the CPU cache: several times faster than whole chunks.
_BLOCK = 1 << 16


@dataclass(frozen=True)
class TensorScan:
    """Findings for one tensor; the flags (``problems``) are always exact.

    ``min``/``max`` are over the finite values (None when there are none);
    ``min``, ``max`` and ``zeros`` are None for tensors that are not flagged: the
    quick pass does not compute them (``stats.compute_stats`` does, for one tensor).
    """

    name: str
    dtype: str
    count: int
    nan: int
    inf: int
    zeros: int | None
    min: float | None
    max: float | None
    beyond_target: int

    @property
    def zeros_fraction(self) -> float | None:
        if self.zeros is None:
            return None
        return self.zeros / self.count if self.count else 0.0

    @property
    def all_zero(self) -> bool:
        return self.count > 0 and self.zeros == self.count

    @property
    def problems(self) -> list[str]:
        found = []
        if self.nan:
            found.append("nan")
        if self.inf:
            found.append("inf")
        if self.all_zero:
            found.append("all_zero")
        if self.beyond_target:
            found.append("extreme")
        return found

    @property
    def flagged(self) -> bool:
        return bool(self.problems)

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "dtype": self.dtype,
            "count": self.count,
            "problems": self.problems,
            "nan": self.nan,
            "inf": self.inf,
            "zeros_fraction": self.zeros_fraction,
            "min": self.min,
            "max": self.max,
            "beyond_target": self.beyond_target,
        }


@dataclass(frozen=True)
class ScanReport:
    source: str
    target_dtype: str | None
    tensors: tuple[TensorScan, ...]  # every scanned tensor, in checkpoint order
    skipped: tuple[tuple[str, str], ...] = field(default=())  # (name, why)

    @property
    def flagged(self) -> tuple[TensorScan, ...]:
        return tuple(t for t in self.tensors if t.flagged)

    @property
    def clean(self) -> bool:
        return not self.flagged

    def counts(self) -> dict[str, int]:
        kinds = {"nan": 0, "inf": 0, "all_zero": 0, "extreme": 0}
        for t in self.flagged:
            for problem in t.problems:
                kinds[problem] += 1
        return kinds

    def to_json(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "clean": self.clean,
            "target_dtype": self.target_dtype,
            "scanned": len(self.tensors),
            "scanned_parameters": sum(t.count for t in self.tensors),
            "flagged_counts": self.counts(),
            "tensors": [t.to_json() for t in self.flagged],
            "skipped": [{"name": n, "reason": r} for n, r in self.skipped],
        }


def scan(
    checkpoint: Checkpoint,
    target_dtype: str | None = DEFAULT_TARGET,
    *,
    chunk_elements: int = STREAM_CHUNK_ELEMENTS,
    on_tensor: Callable[[TensorScan], None] | None = None,
) -> Job[ScanReport]:
    """Job: scan every tensor; yields Progress in bytes, returns a ScanReport.

    ``on_tensor`` is called with each tensor's result as soon as it is known
    (from the job's thread), so a view can mark rows while the scan runs.
    Cancel by closing the generator.
    """
    limit = DTYPE_MAX[target_dtype] if target_dtype else math.inf
    readable: list[TensorInfo] = []
    skipped: list[tuple[str, str]] = []
    for tensor in checkpoint.tensors:
        if (
            tensor.dtype not in _DECODABLE
            and tensor.dtype not in _INTEGER
            and not can_dequantize(tensor.dtype)
        ):
            skipped.append((tensor.name, f"values of dtype {tensor.dtype} are not scanned"))
        elif tensor.parameters == 0:
            skipped.append((tensor.name, "empty tensor"))
        else:
            readable.append(tensor)
    total = sum(t.nbytes for t in readable)
    yield Progress(0, total, "scanning")
    results: dict[str, TensorScan] = {}
    recheck: list[TensorInfo] = []
    done = 0
    scratch = np.empty(chunk_elements, dtype=np.float32)
    # Pass 1, every tensor, quick: flags are exact, but min/max/zeros are only known
    # for tensors whose every block took the careful path.
    acc = _ScanAccumulator(limit, quick=True)
    with TensorStream(checkpoint, readable, chunk_elements) as stream:
        for chunk in stream:
            acc.add(decode_into(chunk.raw, chunk.dtype, scratch))
            done += chunk.raw.size
            if chunk.last:
                result = acc.result(chunk.tensor)
                if result.flagged and not acc.exact:
                    recheck.append(chunk.tensor)
                else:
                    results[chunk.tensor.name] = result
                    if on_tensor is not None:
                        on_tensor(result)
                acc.reset()
            yield Progress(done, total, chunk.tensor.name)
    # Pass 2, flagged tensors only (normally a handful): full statistics for the report.
    total += sum(t.nbytes for t in recheck)
    acc = _ScanAccumulator(limit, quick=False)
    with TensorStream(checkpoint, recheck, chunk_elements) as stream:
        for chunk in stream:
            acc.add(decode_into(chunk.raw, chunk.dtype, scratch))
            done += chunk.raw.size
            if chunk.last:
                result = acc.result(chunk.tensor)
                results[chunk.tensor.name] = result
                if on_tensor is not None:
                    on_tensor(result)
                acc.reset()
            yield Progress(done, total, chunk.tensor.name)
    ordered = tuple(results[t.name] for t in checkpoint.tensors if t.name in results)
    return ScanReport(checkpoint.source, target_dtype, ordered, tuple(skipped))


class _ScanAccumulator:
    """Counts for one tensor, block by block.

    ``quick``: a block whose sum of squares (one BLAS dot, the cheapest reduction)
    is finite, non-zero and below ``limit**2`` can hold no NaN, no Inf, no value
    beyond the limit, and is not all zeros; such blocks are only counted. Any
    other block is looked at closely. So flags are exact in quick mode, while
    min/max/zeros cover the whole tensor only when ``exact`` (no block skipped).
    """

    def __init__(self, limit: float, quick: bool) -> None:
        self.limit = limit
        self.limit_squared = limit * limit if math.isfinite(limit) else math.inf
        self.quick = quick
        self.is_zero = np.empty(_BLOCK, dtype=np.bool_)
        self.reset()

    def reset(self) -> None:
        self.count = self.nan = self.inf = self.zeros = self.beyond = self.skipped = 0
        self.min, self.max = math.inf, -math.inf

    @property
    def exact(self) -> bool:
        return self.skipped == 0

    def add(self, values: np.ndarray[Any, Any]) -> None:
        if values.dtype == np.bool_:
            values = values.view(np.uint8)
        quick = self.quick and values.dtype.kind == "f"
        for start in range(0, values.size, _BLOCK):
            block = values[start : start + _BLOCK]
            if quick:
                squares = float(np.dot(block, block))
                if 0.0 < squares < self.limit_squared:
                    self.count += block.size
                    self.skipped += 1
                    continue
            self._add_block(block)

    def _add_block(self, block: np.ndarray[Any, Any]) -> None:
        self.count += block.size
        if block.dtype.kind == "f":
            # count_nonzero on floats is several times slower than a compare into a
            # reused bool buffer followed by a count; == 0 also catches -0.0.
            self.zeros += int(np.count_nonzero(np.equal(block, 0, out=self.is_zero[: block.size])))
        else:
            self.zeros += block.size - int(np.count_nonzero(block))
        low, high = block.min(), block.max()
        if block.dtype.kind == "f" and not (np.isfinite(low) and np.isfinite(high)):
            # NaN propagates through min/max and Inf shows up there: only now look closer.
            nan = np.isnan(block)
            inf = np.isinf(block)
            self.nan += int(np.count_nonzero(nan))
            self.inf += int(np.count_nonzero(inf))
            finite = block[~(nan | inf)]
            if finite.size == 0:
                return
            low, high = finite.min(), finite.max()
        low_f, high_f = float(low), float(high)
        self.min = min(self.min, low_f)
        self.max = max(self.max, high_f)
        if max(-low_f, high_f) > self.limit and block.dtype.kind == "f":
            magnitude = np.abs(block)
            self.beyond += int(np.count_nonzero(magnitude[np.isfinite(magnitude)] > self.limit))

    def result(self, tensor: TensorInfo) -> TensorScan:
        known = self.exact and self.min <= self.max
        return TensorScan(
            name=tensor.name,
            dtype=tensor.dtype,
            count=self.count,
            nan=self.nan,
            inf=self.inf,
            zeros=self.zeros if self.exact else None,
            min=self.min if known else None,
            max=self.max if known else None,
            beyond_target=self.beyond,
        )
