"""Random-init export: the model's own init, tied weights, seeds, files as save_pretrained."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from ckpt_gui.core.export import plan_random_init, run_random_init
from ckpt_gui.core.export.random_init import random_init
from ckpt_gui.core.jobs import run_to_completion
from tests.conftest import TINY_LLAMA

INIT_RANGE = 0.05


@pytest.fixture(scope="session")
def llama_config_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from transformers import LlamaConfig

    folder = tmp_path_factory.mktemp("llama_cfg")
    config = LlamaConfig(
        **{**TINY_LLAMA, "tie_word_embeddings": True, "vocab_size": 512, "hidden_size": 64},
        initializer_range=INIT_RANGE,
    )
    config.architectures = ["LlamaForCausalLM"]
    config.save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def qwen_config_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Qwen2 has biases on q/k/v: they must come out as zeros."""
    from transformers import Qwen2Config

    folder = tmp_path_factory.mktemp("qwen_cfg")
    Qwen2Config(**{**TINY_LLAMA, "hidden_size": 64}, initializer_range=INIT_RANGE).save_pretrained(
        folder
    )
    return folder / "config.json"


def shard_bytes(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.glob("*.safetensors"))}


def test_files_match_save_pretrained(tmp_path: Path, llama_config_dir: Path) -> None:
    from transformers import AutoConfig, AutoModelForCausalLM

    ours = tmp_path / "ours"
    run_to_completion(random_init(llama_config_dir, ours, max_shard_size=40_000, seed=1))
    theirs = tmp_path / "theirs"
    config = AutoConfig.from_pretrained(llama_config_dir, trust_remote_code=False)
    AutoModelForCausalLM.from_config(config).save_pretrained(theirs, max_shard_size="40KB")
    assert sorted(p.name for p in ours.iterdir()) == sorted(p.name for p in theirs.iterdir())
    # Same shard split, same index, byte for byte.
    assert (ours / "model.safetensors.index.json").read_bytes() == (
        theirs / "model.safetensors.index.json"
    ).read_bytes()
    for name in ("config.json", "generation_config.json"):
        assert json.loads((ours / name).read_text()) == json.loads((theirs / name).read_text())


def test_loads_with_tied_weights_and_follows_init(tmp_path: Path, llama_config_dir: Path) -> None:
    from transformers import AutoModelForCausalLM

    out = tmp_path / "out"
    run_to_completion(random_init(llama_config_dir, out, seed=0, max_shard_size=50_000))
    model, info = AutoModelForCausalLM.from_pretrained(
        out, output_loading_info=True, trust_remote_code=False
    )
    assert info["missing_keys"] == set() or not info["missing_keys"]
    assert not info["unexpected_keys"] and not info["mismatched_keys"]
    assert model.lm_head.weight.data_ptr() == model.model.embed_tokens.weight.data_ptr()
    for name, value in model.state_dict().items():
        if "norm" in name:
            assert torch.equal(value, torch.ones_like(value)), name
        elif value.numel() >= 4096:
            assert abs(float(value.std()) - INIT_RANGE) < 0.1 * INIT_RANGE, name
            assert abs(float(value.mean())) < 0.1 * INIT_RANGE, name


def test_biases_zero_and_config_file_accepted(tmp_path: Path, qwen_config_file: Path) -> None:
    from safetensors.torch import load_file

    out = tmp_path / "out"
    run_to_completion(random_init(qwen_config_file, out, dtype="BF16"))
    tensors = load_file(out / "model.safetensors")
    biases = [k for k in tensors if k.endswith(".bias")]
    assert biases and all(not tensors[k].any() for k in biases)
    assert all(v.dtype == torch.bfloat16 for v in tensors.values())
    assert json.loads((out / "config.json").read_text())["dtype"] == "bfloat16"


def test_same_seed_same_bytes_whatever_the_sharding(tmp_path: Path, llama_config_dir: Path) -> None:
    from safetensors.torch import load_file

    def tensors(folder: Path) -> dict[str, torch.Tensor]:
        merged: dict[str, torch.Tensor] = {}
        for path in folder.glob("*.safetensors"):
            merged.update(load_file(path))
        return merged

    a, b, c, d = (tmp_path / n for n in "abcd")
    run_to_completion(random_init(llama_config_dir, a, seed=7, max_shard_size=40_000))
    run_to_completion(random_init(llama_config_dir, b, seed=7, max_shard_size=40_000))
    assert shard_bytes(a) == shard_bytes(b)
    # Tiny units (one module at a time) and one big shard: still the same values.
    plan = plan_random_init(llama_config_dir, c, seed=7, unit_budget=1)
    run_to_completion(run_random_init(plan))
    ta, tc = tensors(a), tensors(c)
    assert ta.keys() == tc.keys() and all(torch.equal(ta[k], tc[k]) for k in ta)
    run_to_completion(random_init(llama_config_dir, d, seed=8, max_shard_size=40_000))
    assert shard_bytes(a) != shard_bytes(d)


def test_plan_reports_shards_before_writing(tmp_path: Path, llama_config_dir: Path) -> None:
    plan = plan_random_init(llama_config_dir, tmp_path / "out", dtype="F16", max_shard_size=40_000)
    described = plan.to_json()
    assert described["kind"] == "random-init" and len(described["shards"]) == len(plan.shards) > 1
    assert described["estimated_bytes"] > described["total_size"] > 0
    assert not (tmp_path / "out").exists()
    result = run_to_completion(run_random_init(plan))
    assert result.bytes_written == described["estimated_bytes"]


def test_a_plan_can_run_twice(tmp_path: Path, llama_config_dir: Path) -> None:
    """transformers marks initialised modules; a second run must initialise again."""
    plan = plan_random_init(llama_config_dir, tmp_path / "out", seed=5)
    run_to_completion(run_random_init(plan))
    first = shard_bytes(tmp_path / "out")
    import shutil

    shutil.rmtree(tmp_path / "out")
    run_to_completion(run_random_init(plan))
    assert shard_bytes(tmp_path / "out") == first
