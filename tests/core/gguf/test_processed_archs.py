"""Architectures whose tensors transformers processes on load, against transformers itself.

Each GGUF is written at test time (``tests/support/gguf_arch_fixtures.py``); the
oracle is ``from_pretrained(dir, gguf_file=...)``, which must load every key of the
model (else the comparison would prove nothing).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from ckpt_gui.core.export.gguf_source import gguf_to_safetensors
from ckpt_gui.core.formats import open_checkpoint
from ckpt_gui.core.jobs import run_to_completion
from ckpt_gui.core.values.chunks import iter_chunks
from tests.support.gguf_arch_fixtures import ARCHS, write_arch_gguf

CASES = [(arch, qtype) for arch in ARCHS for qtype in ("F32", "Q8_0")]


@pytest.fixture(scope="module")
def arch_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("gguf_archs")
    for arch, qtype in CASES:
        write_arch_gguf(arch, folder / f"{arch}-{qtype}.gguf", qtype)
    return folder


def _oracle(folder: Path, name: str) -> dict[str, torch.Tensor]:
    from transformers import AutoModelForCausalLM

    model, info = AutoModelForCausalLM.from_pretrained(
        folder, gguf_file=name, output_loading_info=True
    )
    assert not info["missing_keys"], info["missing_keys"]  # the fixture is complete
    assert not info["mismatched_keys"]
    state = dict(model.state_dict())
    if model.config.tie_word_embeddings:
        state.pop("lm_head.weight", None)  # save_pretrained leaves tied weights out
    return state


@pytest.mark.parametrize(("arch", "qtype"), CASES)
def test_export_equals_transformers(tmp_path: Path, arch_dir: Path, arch: str, qtype: str) -> None:
    name = f"{arch}-{qtype}.gguf"
    out = tmp_path / "out"
    run_to_completion(gguf_to_safetensors(arch_dir / name, out))
    ours = load_file(out / "model.safetensors")
    oracle = _oracle(arch_dir, name)
    assert set(ours) == set(oracle)
    for key, value in oracle.items():
        assert ours[key].dtype == value.dtype == torch.float32, key
        assert torch.equal(ours[key], value), key


@pytest.mark.parametrize("arch", list(ARCHS))
def test_listing_and_values_match_transformers(arch_dir: Path, arch: str) -> None:
    """Names and shapes as transformers holds them; statistics read the same values."""
    from ckpt_gui.core.check.gguf_names import with_hf_names

    name = f"{arch}-Q8_0.gguf"
    checkpoint = with_hf_names(open_checkpoint(arch_dir / name))
    oracle = _oracle(arch_dir, name)
    listed = {t.name: t for t in checkpoint.tensors if t.name in oracle}
    assert {k: v.shape for k, v in listed.items()} == {k: tuple(v.shape) for k, v in oracle.items()}
    for key, tensor in listed.items():
        values = np.concatenate(
            [np.asarray(c, dtype=np.float32) for c in iter_chunks(checkpoint, tensor)]
        )
        assert np.array_equal(values, oracle[key].numpy().reshape(-1)), key
