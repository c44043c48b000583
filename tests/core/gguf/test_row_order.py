"""llama.cpp's q/k row permutation, undone while streaming, checked against transformers."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from ckpt_gui.core.formats import open_checkpoint
from ckpt_gui.core.gguf.values import row_order
from ckpt_gui.core.values.chunks import decode
from ckpt_gui.core.values.stream import TensorStream
from tests.support.gguf_fixtures import llama_cpp_permute, oracle_state_dict


@pytest.mark.parametrize(("rows", "heads"), [(64, 4), (32, 2), (48, 3)])
def test_row_order_inverts_llama_cpp_permute(rows: int, heads: int) -> None:
    weights = np.arange(rows * 5, dtype=np.float32).reshape(rows, 5)
    stored = llama_cpp_permute(weights, heads, heads)
    np.testing.assert_array_equal(stored[row_order(rows, heads)], weights)


@pytest.mark.parametrize("chunk_elements", [8, 24, 32, 96])
def test_chunks_that_split_rows(gguf_dir: Path, chunk_elements: int) -> None:
    """Chunks smaller than a row, or ending mid-row, still come out in transformers' order."""
    checkpoint = open_checkpoint(gguf_dir / "tiny-F32.gguf")
    oracle = oracle_state_dict(gguf_dir, "tiny-F32.gguf")
    wanted = [t for t in checkpoint.tensors if "q_proj" in t.name or "k_proj" in t.name]
    assert len(wanted) == 4
    pieces: dict[str, list[np.ndarray]] = {t.name: [] for t in wanted}
    with TensorStream(checkpoint, wanted, chunk_elements, prefetch=False) as stream:
        for chunk in stream:
            pieces[chunk.tensor.name].append(decode(chunk.raw.tobytes(), "F32").copy())
    for name, parts in pieces.items():
        np.testing.assert_array_equal(
            np.concatenate(parts), oracle[name].numpy().reshape(-1), err_msg=name
        )
