"""The conversion's fast paths against what they replace (gguf's own kernels)."""

from __future__ import annotations

from concurrent.futures import Future

import numpy as np

from ckpt_gui.core.export.gguf_source import BufferPool
from ckpt_gui.core.gguf.values import q8_0_into


def test_q8_0_into_is_gguf_dequantize_bit_for_bit() -> None:
    from gguf import GGMLQuantizationType
    from gguf.quants import dequantize

    rng = np.random.default_rng(0)
    # Random bytes: every int8 code and every f16 scale, NaN, Inf and subnormals included.
    raw = rng.integers(0, 256, size=4096 * 34, dtype=np.uint8)
    expected = dequantize(raw, GGMLQuantizationType.Q8_0).reshape(-1)
    out = np.empty(4096 * 32, dtype=np.float32)
    q8_0_into(raw, out)
    assert np.array_equal(out.view(np.uint32), expected.view(np.uint32))


def test_buffers_are_lent_again_only_once_written() -> None:
    pool = BufferPool(keep=2)
    first = pool.take(1000)
    pending: Future[None] = Future()
    pool.give(first, [pending])
    second = pool.take(500)  # the only idle buffer is still being written: a new one
    assert second.data_ptr() != first.data_ptr()
    pending.set_result(None)
    pool.give(second, [])
    again = pool.take(800)  # the written one fits: reused
    assert again.data_ptr() == first.data_ptr()
    smaller = pool.take(400)
    assert smaller.data_ptr() == second.data_ptr()


def test_idle_buffers_are_bounded_keeping_the_largest() -> None:
    import torch

    pool = BufferPool(keep=1)
    pool.give(torch.empty(100), [])
    pool.give(torch.empty(50), [])  # over the bound: the smallest is let go
    assert [b.numel() for b, _f in pool.idle] == [100]
