"""GGUF -> safetensors, checked against transformers' from_pretrained(gguf_file=...)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from ckpt_gui.core.errors import CheckpointError
from ckpt_gui.core.export.engine import ExportOptions
from ckpt_gui.core.export.gguf_source import gguf_to_safetensors, plan_gguf_safetensors
from ckpt_gui.core.jobs import run_to_completion
from tests.support.gguf_fixtures import GGUF_TYPES, oracle_state_dict


def _written(folder: Path) -> dict[str, torch.Tensor]:
    return load_file(folder / "model.safetensors")


@pytest.mark.parametrize("qtype", GGUF_TYPES)
def test_equals_transformers_state_dict(tmp_path: Path, gguf_dir: Path, qtype: str) -> None:
    name = f"tiny-{qtype}.gguf"
    out = tmp_path / "out"
    result = run_to_completion(gguf_to_safetensors(gguf_dir / name, out))
    assert sorted(result.files) == ["config.json", "model.safetensors"]
    oracle = oracle_state_dict(gguf_dir, name)
    ours = _written(out)
    assert set(ours) == set(oracle)
    for key, value in oracle.items():
        assert ours[key].dtype == value.dtype == torch.float32
        assert torch.equal(ours[key], value), key


@pytest.mark.parametrize(
    ("user", "torch_dtype"), [("BF16", torch.bfloat16), ("F16", torch.float16)]
)
def test_dtype_matches_transformers_cast(
    tmp_path: Path, gguf_dir: Path, user: str, torch_dtype: torch.dtype
) -> None:
    out = tmp_path / "out"
    run_to_completion(gguf_to_safetensors(gguf_dir / "tiny-Q8_0.gguf", out, dtype=user))
    oracle = oracle_state_dict(gguf_dir, "tiny-Q8_0.gguf", dtype=torch_dtype)
    ours = _written(out)
    for key, value in oracle.items():
        assert ours[key].dtype == torch_dtype
        assert torch.equal(ours[key], value), key


def test_output_loads_as_the_same_model(tmp_path: Path, gguf_dir: Path) -> None:
    from transformers import AutoModelForCausalLM

    out = tmp_path / "out"
    run_to_completion(gguf_to_safetensors(gguf_dir / "tied-Q8_0.gguf", out))
    assert "lm_head.weight" not in _written(out)  # tied, as save_pretrained leaves it out
    reference = AutoModelForCausalLM.from_pretrained(gguf_dir, gguf_file="tied-Q8_0.gguf")
    loaded, info = AutoModelForCausalLM.from_pretrained(out, output_loading_info=True)
    assert not info["missing_keys"]
    assert not info["unexpected_keys"]
    assert loaded.config.tie_word_embeddings is True
    # The config.json we write loads as the config transformers derives from the file.
    theirs = reference.config.to_diff_dict()
    for recorded in ("quantization_config", "_model_name_or_path"):
        theirs.pop(recorded, None)
    ours = loaded.config.to_diff_dict()
    assert ours.pop("architectures") == ["LlamaForCausalLM"]
    assert ours == theirs
    ids = torch.tensor([[1, 5, 9, 3]])
    with torch.no_grad():
        assert torch.equal(loaded(ids).logits, reference(ids).logits)


def test_sharded_output(tmp_path: Path, gguf_dir: Path) -> None:
    out = tmp_path / "out"
    plan = plan_gguf_safetensors(gguf_dir / "tiny-Q8_0.gguf", out, max_shard_size=100_000)
    assert plan.sharded
    run_to_completion(gguf_to_safetensors(gguf_dir / "tiny-Q8_0.gguf", out, max_shard_size=100_000))
    from transformers import AutoModelForCausalLM

    loaded = AutoModelForCausalLM.from_pretrained(out)
    oracle = oracle_state_dict(gguf_dir, "tiny-Q8_0.gguf")
    for key, value in loaded.state_dict().items():
        assert torch.equal(value, oracle[key]), key


def test_failure_leaves_nothing(tmp_path: Path, gguf_dir: Path) -> None:
    out = tmp_path / "out"
    before = (gguf_dir / "tiny-Q8_0.gguf").read_bytes()
    job = gguf_to_safetensors(
        gguf_dir / "tiny-Q8_0.gguf", out, options=ExportOptions(fail_after_bytes=50_000)
    )
    with pytest.raises(CheckpointError, match="simulated failure"):
        run_to_completion(job)
    assert not out.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == []
    assert (gguf_dir / "tiny-Q8_0.gguf").read_bytes() == before


def test_cancel_leaves_nothing(tmp_path: Path, gguf_dir: Path) -> None:
    out = tmp_path / "out"
    job = gguf_to_safetensors(gguf_dir / "tiny-Q8_0.gguf", out)
    next(job)
    next(job)
    job.close()
    assert not out.exists()
    assert list(tmp_path.iterdir()) == []


def test_not_a_gguf_file(tmp_path: Path, gguf_hf_dir: Path) -> None:
    with pytest.raises(CheckpointError, match="not a GGUF file"):
        plan_gguf_safetensors(gguf_hf_dir, tmp_path / "out")
