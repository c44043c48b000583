"""Tensor bytes of pickles, read by our reader, for streams (diff/scan) and exports.

Views into shared storages and half precision included; the oracle is the
tensors torch saved (``.contiguous()``, as safetensors stores them) and, for
exports, safetensors' own loader on the output.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ckpt_gui.core.dtypes import torch_dtype_name
from ckpt_gui.core.export.convert import plan_convert, plan_safetensors, run_plan
from ckpt_gui.core.formats import open_checkpoint
from ckpt_gui.core.jobs import run_to_completion
from ckpt_gui.core.values.stream import TensorStream
from tests.support import pickle_fixtures as fx


def test_stream_gives_each_tensors_row_major_bytes(tmp_path: Path) -> None:
    import torch

    path, oracle = fx.views_checkpoint(tmp_path)
    checkpoint = open_checkpoint(path)
    collected: dict[str, bytearray] = {t.name: bytearray() for t in checkpoint.tensors}
    with TensorStream(checkpoint, checkpoint.tensors, chunk_elements=8) as stream:
        for chunk in stream:
            collected[chunk.tensor.name] += chunk.raw.tobytes()
    for name, expected in oracle.items():
        raw = bytes(collected[name])
        assert len(raw) == expected.numel() * expected.element_size(), name
        if raw:
            got = torch.frombuffer(bytearray(raw), dtype=expected.dtype).reshape(expected.shape)
            assert torch.equal(got, expected), name


def test_export_of_views_and_whole_model_matches_torch(tmp_path: Path) -> None:
    import torch
    from safetensors.torch import load_file

    views, oracle = fx.views_checkpoint(tmp_path, legacy=True)
    out = tmp_path / "views_out"
    result = run_to_completion(run_plan(plan_safetensors(views, out)))
    written = load_file(out / "model.safetensors")
    assert set(written) == set(oracle)
    for name, tensor in written.items():
        assert torch.equal(tensor, oracle[name]), name
    assert any("shares storage" in w for w in result.warnings)

    half, half_oracle = fx.half_module(tmp_path)
    out32 = tmp_path / "half_to_f32"
    run_to_completion(run_plan(plan_convert(half, out32, "F32")))
    converted = load_file(out32 / "model.safetensors")
    for name, tensor in half_oracle.items():
        assert torch_dtype_name(converted[name].dtype) == "F32"
        assert torch.equal(converted[name], tensor.float()), name


def test_stats_of_a_view_agree_with_torch(tmp_path: Path) -> None:
    from ckpt_gui.core.values.stats import compute_stats

    path, oracle = fx.views_checkpoint(tmp_path)
    checkpoint = open_checkpoint(path)
    for name in ("transposed", "corner", "every_other", "half"):
        stats = compute_stats(checkpoint, checkpoint.tensor(name))
        values = oracle[name].double().numpy()
        assert np.isclose(stats.mean, values.mean()), name
        assert stats.min == values.min() and stats.max == values.max(), name
