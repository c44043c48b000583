"""Convert, reshard and pickle-to-safetensors, checked with transformers and torch."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from ckpt_gui.core.errors import CheckpointError
from ckpt_gui.core.export import (
    ExportOptions,
    plan_convert,
    plan_reshard,
    plan_safetensors,
    run_plan,
)
from ckpt_gui.core.export.convert import convert, reshard, to_safetensors
from ckpt_gui.core.export.renames import RenameRule
from ckpt_gui.core.formats import open_checkpoint
from ckpt_gui.core.jobs import run_to_completion

DTYPES = {"F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16}


def load(folder: Path, **kwargs):
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(folder, trust_remote_code=False, **kwargs)


def safetensors_tensors(folder: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    tensors: dict[str, torch.Tensor] = {}
    for path in sorted(folder.glob("*.safetensors")):
        tensors.update(load_file(path))
    return tensors


def check_index(folder: Path, max_shard_size: int) -> dict:
    """Index complete and consistent; every shard within the limit unless one tensor exceeds it."""
    index = json.loads((folder / "model.safetensors.index.json").read_text())
    assert set(index) == {"metadata", "weight_map"}
    assert set(index["metadata"]) == {"total_parameters", "total_size"}
    tensors = safetensors_tensors(folder)
    assert set(index["weight_map"]) == set(tensors)
    assert index["metadata"]["total_size"] == sum(t.nbytes for t in tensors.values())
    assert index["metadata"]["total_parameters"] == sum(t.numel() for t in tensors.values())
    shards = sorted(set(index["weight_map"].values()))
    count = len(shards)
    assert shards == [f"model-{i:05d}-of-{count:05d}.safetensors" for i in range(1, count + 1)]
    checkpoint = open_checkpoint(folder)
    for shard in shards:
        members = [t for t in checkpoint.tensors if t.file == shard]
        assert len(members) == 1 or sum(t.nbytes for t in members) <= max_shard_size
    return index


@pytest.mark.parametrize("dtype", ["F16", "BF16"])
def test_convert_round_trip_matches_torch(
    tmp_path: Path, llama_sharded_dir: Path, llama_state_dict, dtype: str
) -> None:
    out = tmp_path / "out"
    result = run_to_completion(convert(llama_sharded_dir, out, dtype, max_shard_size=30_000))
    assert result.overflow == {}
    check_index(out, 30_000)
    model = load(out)
    state = model.state_dict()
    for name, value in llama_state_dict.items():
        assert state[name].dtype == DTYPES[dtype]
        assert torch.equal(state[name], value.to(DTYPES[dtype])), name
    config = json.loads((out / "config.json").read_text())
    assert config["dtype"] == {"F16": "float16", "BF16": "bfloat16"}[dtype]
    assert (out / "generation_config.json").read_bytes() == (
        llama_sharded_dir / "generation_config.json"
    ).read_bytes()
    assert open_checkpoint(out).metadata["__metadata__"] == {"format": "pt"}


def test_convert_back_to_fp32_and_keeps_metadata(
    tmp_path: Path, llama_dir: Path, llama_state_dict
) -> None:
    from safetensors.torch import load_file, save_file

    source = tmp_path / "src"
    source.mkdir()
    half = {k: v.to(torch.bfloat16) for k, v in llama_state_dict.items()}
    half["counter"] = torch.arange(5, dtype=torch.int64)
    save_file(half, source / "model.safetensors", metadata={"format": "pt", "origin": "test"})
    out = tmp_path / "out"
    run_to_completion(convert(source, out, "F32"))
    written = load_file(out / "model.safetensors")
    assert written["counter"].dtype == torch.int64 and torch.equal(
        written["counter"], half["counter"]
    )
    for name, value in half.items():
        if name != "counter":
            assert written[name].dtype == torch.float32
            assert torch.equal(written[name], value.float())
    assert open_checkpoint(out).metadata == {"format": "pt", "origin": "test"}


def test_fp16_overflow_counted_per_tensor(tmp_path: Path) -> None:
    from safetensors.torch import load_file, save_file

    source = tmp_path / "src"
    source.mkdir()
    big = torch.zeros(1000)
    big[:7] = 1e6
    big[7] = -1e9
    big[8] = float("inf")  # already Inf: not an overflow
    save_file({"big": big, "fine": torch.ones(10)}, source / "model.safetensors")
    result = run_to_completion(convert(source, tmp_path / "inf", "F16"))
    assert result.overflow == {"big": 8}
    written = load_file(tmp_path / "inf" / "model.safetensors")["big"]
    assert torch.equal(written, big.half())
    assert any("overflowed" in w for w in result.warnings)

    clamped = run_to_completion(
        convert(source, tmp_path / "clamp", "F16", options=ExportOptions(overflow="clamp"))
    )
    assert clamped.overflow == {"big": 8}
    values = load_file(tmp_path / "clamp" / "model.safetensors")["big"]
    assert float(values[0]) == 65504.0 and float(values[7]) == -65504.0

    with pytest.raises(CheckpointError, match="exceed the range of F16"):
        run_to_completion(
            convert(source, tmp_path / "error", "F16", options=ExportOptions(overflow="error"))
        )
    assert not (tmp_path / "error").exists()
    assert {p.name for p in tmp_path.iterdir()} == {"src", "inf", "clamp"}


def test_keep_in_fp32_modules_follow_transformers(tmp_path: Path) -> None:
    from transformers import T5Config, T5ForConditionalGeneration

    torch.manual_seed(0)
    config = T5Config(
        vocab_size=64,
        d_model=16,
        d_kv=4,
        d_ff=32,
        num_layers=1,
        num_heads=2,
        decoder_start_token_id=0,
    )
    source = tmp_path / "t5"
    T5ForConditionalGeneration(config).save_pretrained(source)
    for dtype, torch_dtype in (("F16", torch.float16), ("BF16", torch.bfloat16)):
        out = tmp_path / dtype
        run_to_completion(convert(source, out, dtype))
        ours = safetensors_tensors(out)
        reference = T5ForConditionalGeneration.from_pretrained(
            source, dtype=torch_dtype, trust_remote_code=False
        ).state_dict()
        kept = {k for k, v in ours.items() if v.dtype == torch.float32}
        assert kept == {k for k in ours if reference[k].dtype == torch.float32}
        assert bool(kept) == (dtype == "F16")
        for name, value in ours.items():
            assert torch.equal(value, reference[name]), name


def test_reshard_copies_bytes_and_follows_hub_split(tmp_path: Path, llama_dir: Path) -> None:
    from huggingface_hub import split_torch_state_dict_into_shards

    out = tmp_path / "out"
    plan = plan_reshard(llama_dir, out, 10_000)
    assert all(t.raw_copy for t in plan.tensors)
    run_to_completion(run_plan(plan))
    index = check_index(out, 10_000)
    source = safetensors_tensors(llama_dir)
    written = safetensors_tensors(out)
    assert written.keys() == source.keys()
    assert all(torch.equal(written[k], source[k]) for k in source)
    ordered = {t.name: source[t.name] for t in plan.tensors}
    split = split_torch_state_dict_into_shards(
        ordered, filename_pattern="model{suffix}.safetensors", max_shard_size=10_000
    )
    assert split.tensor_to_filename == index["weight_map"]


def test_reshard_to_one_file_writes_no_index(tmp_path: Path, llama_sharded_dir: Path) -> None:
    out = tmp_path / "one"
    result = run_to_completion(reshard(llama_sharded_dir, out, 10**9))
    assert "model.safetensors" in result.files
    assert not (out / "model.safetensors.index.json").exists()
    model = load(out)
    reference = load(llama_sharded_dir)
    assert all(torch.equal(v, reference.state_dict()[k]) for k, v in model.state_dict().items())


@pytest.mark.parametrize("fixture", ["llama_bin_dir", "llama_bin_sharded_dir"])
def test_pickle_to_safetensors(tmp_path: Path, request, fixture: str, llama_state_dict) -> None:
    source = request.getfixturevalue(fixture)
    out = tmp_path / "out"
    plan = plan_safetensors(source, out, max_shard_size=40_000)
    result = run_to_completion(run_plan(plan))
    written = safetensors_tensors(out)
    assert written.keys() == llama_state_dict.keys()
    assert all(torch.equal(written[k], v) for k, v in llama_state_dict.items())
    assert not any(name.endswith(".bin") for name in result.files)


def test_pickle_with_shared_tensors(tmp_path: Path, llama_state_dict) -> None:
    source = tmp_path / "tied.pt"
    state = dict(llama_state_dict)
    state["lm_head.weight"] = state["model.embed_tokens.weight"]
    torch.save(state, source)
    result = run_to_completion(to_safetensors(source, tmp_path / "out"))
    written = safetensors_tensors(tmp_path / "out")
    assert torch.equal(written["lm_head.weight"], written["model.embed_tokens.weight"])
    assert any("shares storage" in w for w in result.warnings)


def test_renames_strip_and_add_prefix(tmp_path: Path, llama_dir: Path, llama_state_dict) -> None:
    stripped = tmp_path / "stripped"
    run_to_completion(
        convert(llama_dir, stripped, "BF16", renames=[RenameRule.strip_prefix("model")])
    )
    names = set(safetensors_tensors(stripped))
    assert "embed_tokens.weight" in names and "lm_head.weight" in names
    restored = tmp_path / "restored"
    run_to_completion(reshard(stripped, restored, 10**9, renames=[(r"^(?!lm_head)", "model.")]))
    model = load(restored)
    for name, value in llama_state_dict.items():
        assert torch.equal(model.state_dict()[name], value.to(torch.bfloat16))


def test_rename_collision_is_an_error(tmp_path: Path, llama_dir: Path) -> None:
    with pytest.raises(CheckpointError, match="renames map both"):
        plan_convert(llama_dir, tmp_path / "x", "F16", renames=[(r"layers\.\d+", "layers.0")])
    assert not (tmp_path / "x").exists()


def test_subtree_export(tmp_path: Path, llama_dir: Path, llama_state_dict) -> None:
    plan = plan_convert(llama_dir, tmp_path / "layer0", "F16", subtree="model.layers.0")
    run_to_completion(run_plan(plan))
    written = safetensors_tensors(tmp_path / "layer0")
    expected = {k for k in llama_state_dict if k.startswith("model.layers.0.")}
    assert set(written) == expected
    with pytest.raises(CheckpointError, match="no tensors under"):
        plan_convert(llama_dir, tmp_path / "none", "F16", subtree="model.layers.9")
