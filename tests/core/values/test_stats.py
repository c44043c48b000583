from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from ckpt_gui.core.formats import open_checkpoint
from ckpt_gui.core.values.chunks import iter_chunks
from ckpt_gui.core.values.stats import compute_stats


@pytest.fixture()
def special_values(tmp_path: Path) -> Path:
    import torch
    from safetensors.torch import save_file

    values = torch.tensor([0.0, 1.0, -3.0, float("nan"), float("inf"), 0.0, 2.0, 4.0])
    save_file(
        {
            "f32": values,
            "bf16": values.to(torch.bfloat16),
            "f16": values.to(torch.float16),
            "i64": torch.arange(10),
            "big": torch.randn(3000, generator=torch.Generator().manual_seed(0)),
            "f8": torch.tensor([1.0, -2.0, 0.5]).to(torch.float8_e4m3fn),
        },
        tmp_path / "special.safetensors",
    )
    torch.save(
        {"f32": values, "big": torch.randn(3000, generator=torch.Generator().manual_seed(0))},
        tmp_path / "special.pt",
    )
    return tmp_path


@pytest.mark.parametrize("name", ["f32", "bf16", "f16"])
def test_stats_of_special_values(special_values: Path, name: str) -> None:
    checkpoint = open_checkpoint(special_values / "special.safetensors")
    stats = compute_stats(checkpoint, checkpoint.tensor(name))
    finite = np.array([0.0, 1.0, -3.0, 0.0, 2.0, 4.0])
    assert stats.count == 8
    assert (stats.nan, stats.inf) == (1, 1)
    assert stats.min == -3.0 and stats.max == 4.0 and stats.abs_max == 4.0
    assert stats.mean == pytest.approx(finite.mean())
    assert stats.std == pytest.approx(finite.std())
    assert stats.zeros_fraction == pytest.approx(2 / 8)
    assert sum(stats.histogram_counts) == 6


def test_chunked_equals_whole(special_values: Path) -> None:
    import torch

    checkpoint = open_checkpoint(special_values / "special.safetensors")
    tensor = checkpoint.tensor("big")
    chunks = list(iter_chunks(checkpoint, tensor, chunk_elements=256))
    assert len(chunks) == 12
    expected = torch.randn(3000, generator=torch.Generator().manual_seed(0)).numpy()
    assert np.array_equal(np.concatenate(chunks), expected)
    stats = compute_stats(checkpoint, tensor)
    assert stats.mean == pytest.approx(float(expected.astype(np.float64).mean()))
    assert stats.std == pytest.approx(float(expected.astype(np.float64).std()))


def test_integer_and_fp8_tensors(special_values: Path) -> None:
    checkpoint = open_checkpoint(special_values / "special.safetensors")
    ints = compute_stats(checkpoint, checkpoint.tensor("i64"))
    assert (ints.min, ints.max, ints.mean) == (0, 9, 4.5)
    f8 = compute_stats(checkpoint, checkpoint.tensor("f8"))
    assert (f8.min, f8.max) == (-2.0, 1.0)


def test_pickle_tensor_stats_match_safetensors(special_values: Path) -> None:
    from_pickle = open_checkpoint(special_values / "special.pt")
    from_st = open_checkpoint(special_values / "special.safetensors")
    a = compute_stats(from_pickle, from_pickle.tensor("big"))
    b = compute_stats(from_st, from_st.tensor("big"))
    assert a == b
