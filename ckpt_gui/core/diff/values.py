"""Compare two checkpoints: structure (instant) and values (a job, tensor by tensor).

Values are streamed from both checkpoints in step, chunk by chunk, each byte
read once. Raw bytes are compared first (cheap); only chunks that differ get
the arithmetic. Per pair: max absolute difference, relative L2 difference
``||a - b|| / ||a||`` and cosine similarity, plus aggregates per module (every
dotted prefix of A's names) so that a tree view can colour its rows.

Precision: differences are computed in float32 (float64 when either side is
F64) in cache-sized blocks; each block's sums come from float32 BLAS dot
products and are accumulated across blocks in float64. The cosine is derived
from ``||a - b||`` rather than from ``a . b``, so that it stays accurate for
nearly identical tensors where ``1 - cos`` is far below float32 resolution.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

from ckpt_gui.core.diff.report import (
    CHANGED,
    EQUAL_VALUES,
    IDENTICAL,
    NOT_COMPARED,
    DiffReport,
    ModuleDiff,
    TensorDiff,
    aggregate_modules,
    cosine_from_norms,
    relative_l2,
)
from ckpt_gui.core.diff.structure import (
    RenamedPrefix,
    StructureDiff,
    TensorPair,
    diff_structure,
    find_prefix_renames,
)
from ckpt_gui.core.dtypes import FLOAT_DTYPES
from ckpt_gui.core.gguf.values import can_dequantize
from ckpt_gui.core.jobs import Job, Progress
from ckpt_gui.core.model import Checkpoint
from ckpt_gui.core.values.chunks import decode_into
from ckpt_gui.core.values.stream import STREAM_CHUNK_ELEMENTS, RawChunk, TensorStream

__all__ = [
    "DiffReport",
    "ModuleDiff",
    "RenamedPrefix",
    "StructureDiff",
    "TensorDiff",
    "TensorPair",
    "diff_structure",
    "diff_values",
    "find_prefix_renames",
]

_DECODABLE = FLOAT_DTYPES | {
    "F8_E4M3",
    "F8_E5M2",
    "F8_E8M0",
    "F8_E4M3FNUZ",
    "F8_E5M2FNUZ",
    "BOOL",
    "U8",
    "I8",
    "I16",
    "U16",
    "I32",
    "U32",
    "I64",
    "U64",
}
_BLOCK = 1 << 16  # elements: keeps a, b and their difference in the CPU cache
_PROBE_BYTES = 4096


def diff_values(
    a: Checkpoint,
    b: Checkpoint,
    structure: StructureDiff | None = None,
    *,
    chunk_elements: int = STREAM_CHUNK_ELEMENTS,
    on_tensor: Callable[[TensorDiff], None] | None = None,
) -> Job[DiffReport]:
    """Job: compare the values of every same-shape pair; yields Progress in bytes read.

    ``on_tensor`` gets each pair's result as soon as it is known (on the job's
    thread). Cancel by closing the generator: both readers stop and close.
    """
    structure = structure or diff_structure(a, b)
    results: dict[str, TensorDiff] = {}
    streamed: list[TensorPair] = []
    for pair in structure.pairs:
        if not pair.same_shape:
            continue
        early = _without_reading(pair)
        if early is not None:
            results[pair.key] = early
            if on_tensor is not None:
                on_tensor(early)
        else:
            streamed.append(pair)
    # A's file order, so that A is read sequentially (B too when laid out alike).
    position = {t.name: i for i, t in enumerate(a.tensors)}
    streamed.sort(key=lambda p: (p.a.file, p.a.offset or 0, position[p.key]))
    total = sum(p.a.nbytes + p.b.nbytes for p in streamed)
    yield Progress(0, total, "comparing")
    done = 0
    scratch_a = np.empty(chunk_elements, dtype=np.float32)
    scratch_b = np.empty(chunk_elements, dtype=np.float32)
    work = np.empty(_BLOCK, dtype=np.float32)
    with (
        TensorStream(a, [p.a for p in streamed], chunk_elements) as stream_a,
        TensorStream(b, [p.b for p in streamed], chunk_elements) as stream_b,
    ):
        acc = _PairAccumulator()
        for chunk_a, chunk_b in zip(stream_a, stream_b, strict=True):
            pair = streamed[chunk_a.index]
            acc.add(pair, chunk_a, chunk_b, scratch_a, scratch_b, work)
            done += chunk_a.raw.size + chunk_b.raw.size
            if chunk_a.last:
                result = acc.result(pair)
                results[pair.key] = result
                if on_tensor is not None:
                    on_tensor(result)
                acc = _PairAccumulator()
            yield Progress(done, total, pair.key)
    ordered = tuple(results[p.key] for p in structure.pairs if p.key in results)
    return DiffReport(structure, ordered, aggregate_modules(ordered))


def _decodable(dtype: str) -> bool:
    """Float dtypes, and GGUF quantized types gguf can dequantize."""
    return dtype in _DECODABLE or can_dequantize(dtype)


def _without_reading(pair: TensorPair) -> TensorDiff | None:
    """Pairs settled from the header alone: empty tensors, undecodable dtypes."""
    if pair.a.parameters == 0:
        return _identical(pair)
    decodable = _decodable(pair.a.dtype) and _decodable(pair.b.dtype)
    if not decodable and not pair.same_dtype:
        note = f"values of {pair.a.dtype} vs {pair.b.dtype} cannot be compared"
        return TensorDiff(
            pair.key,
            pair.b.name,
            pair.a.dtype,
            pair.b.dtype,
            pair.a.parameters,
            NOT_COMPARED,
            None,
            None,
            None,
            note=note,
        )
    return None


def _identical(pair: TensorPair) -> TensorDiff:
    return TensorDiff(
        pair.key,
        pair.b.name,
        pair.a.dtype,
        pair.b.dtype,
        pair.a.parameters,
        IDENTICAL,
        0.0,
        0.0,
        1.0,
    )


class _PairAccumulator:
    def __init__(self) -> None:
        self.bytes_equal = True
        self.sq_diff = self.sq_a = self.sq_b = 0.0
        self.max_abs = 0.0

    def add(
        self,
        pair: TensorPair,
        chunk_a: RawChunk,
        chunk_b: RawChunk,
        scratch_a: np.ndarray[Any, Any],
        scratch_b: np.ndarray[Any, Any],
        work: np.ndarray[Any, Any],
    ) -> None:
        raw_a, raw_b = chunk_a.raw, chunk_b.raw
        dtype_a, dtype_b = chunk_a.dtype, chunk_b.dtype  # float32 for computed GGUF values
        if dtype_a == dtype_b and _bytes_equal(raw_a, raw_b):
            if _decodable(dtype_a):
                values = decode_into(raw_a, dtype_a, scratch_a)
                norm = _sum_squares(values)
                self.sq_a += norm
                self.sq_b += norm
            return
        self.bytes_equal = False
        if not _decodable(dtype_a):
            self.max_abs = math.nan  # packed dtypes: only "bytes differ" is known
            return
        va = decode_into(raw_a, dtype_a, scratch_a)
        vb = decode_into(raw_b, dtype_b, scratch_b)
        if va.dtype == np.float32 and vb.dtype == np.float32:
            self._add_float32(va, vb, work)
        else:
            self._add_wide(va.astype(np.float64), vb.astype(np.float64))

    def _add_float32(
        self, va: np.ndarray[Any, Any], vb: np.ndarray[Any, Any], work: np.ndarray[Any, Any]
    ) -> None:
        sq_diff = sq_a = sq_b = 0.0
        high = low = 0.0
        for start in range(0, va.size, _BLOCK):
            x = va[start : start + _BLOCK]
            y = vb[start : start + _BLOCK]
            d = work[: x.size]
            np.subtract(x, y, out=d)
            high = max(high, float(d.max()))
            low = min(low, float(d.min()))
            sq_diff += float(np.dot(d, d))
            sq_a += float(np.dot(x, x))
            sq_b += float(np.dot(y, y))
        self._merge(sq_diff, sq_a, sq_b, max(high, -low))

    def _add_wide(self, va: np.ndarray[Any, Any], vb: np.ndarray[Any, Any]) -> None:
        d = va - vb
        self._merge(
            float(np.dot(d, d)),
            float(np.dot(va, va)),
            float(np.dot(vb, vb)),
            float(np.max(np.abs(d))) if d.size else 0.0,
        )

    def _merge(self, sq_diff: float, sq_a: float, sq_b: float, max_abs: float) -> None:
        self.sq_diff += sq_diff
        self.sq_a += sq_a
        self.sq_b += sq_b
        # max() would drop a NaN; keep it, it means the values held NaN.
        self.max_abs = max_abs if math.isnan(max_abs) else max(self.max_abs, max_abs)

    def result(self, pair: TensorPair) -> TensorDiff:
        base = (pair.key, pair.b.name, pair.a.dtype, pair.b.dtype, pair.a.parameters)
        if self.bytes_equal and pair.same_dtype:
            return TensorDiff(*base, IDENTICAL, 0.0, 0.0, 1.0, 0.0, self.sq_a)
        if not _decodable(pair.a.dtype):
            return TensorDiff(*base, CHANGED, None, None, None, note="bytes differ")
        finite = all(math.isfinite(v) for v in (self.sq_diff, self.sq_a, self.sq_b, self.max_abs))
        if not finite:
            return TensorDiff(
                *base,
                CHANGED,
                None,
                None,
                None,
                math.nan,
                self.sq_a,
                note="values include NaN or Inf",
            )
        status = EQUAL_VALUES if self.max_abs == 0.0 else CHANGED
        return TensorDiff(
            *base,
            status,
            self.max_abs,
            relative_l2(self.sq_diff, self.sq_a),
            cosine_from_norms(self.sq_diff, self.sq_a, self.sq_b),
            self.sq_diff,
            self.sq_a,
        )


def _bytes_equal(raw_a: np.ndarray[Any, Any], raw_b: np.ndarray[Any, Any]) -> bool:
    if raw_a.size != raw_b.size:
        return False
    # Changed tensors almost always differ in their first bytes: skip the full pass then.
    if raw_a.size > _PROBE_BYTES and not np.array_equal(raw_a[:_PROBE_BYTES], raw_b[:_PROBE_BYTES]):
        return False
    if raw_a.size % 8 == 0:
        # Eight bytes per comparison: the check runs at memory speed.
        return bool(np.array_equal(raw_a.view(np.uint64), raw_b.view(np.uint64)))
    return bool(np.array_equal(raw_a, raw_b))


def _sum_squares(values: np.ndarray[Any, Any]) -> float:
    if values.dtype != np.float32:
        wide = values.astype(np.float64)
        return float(np.dot(wide, wide))
    return sum(
        float(np.dot(values[s : s + _BLOCK], values[s : s + _BLOCK]))
        for s in range(0, values.size, _BLOCK)
    )
