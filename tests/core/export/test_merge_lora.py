"""merge-lora against peft's merge_and_unload on the same base and adapter."""

from __future__ import annotations

import json
import shutil
import warnings
from pathlib import Path

import pytest

from ckpt_gui.core.errors import CheckpointError
from ckpt_gui.core.export.engine import ExportOptions
from ckpt_gui.core.export.merge_lora import plan_merge_lora, run_merge_lora
from ckpt_gui.core.jobs import run_to_completion
from tests.support.peft_fixtures import peft_merged_state, save_adapter, save_base

FAST = ExportOptions(fsync=False)


@pytest.fixture(scope="module")
def rich(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("merge-rich")
    base = save_base(root / "base")
    (base / "generation_config.json").write_text('{"max_length": 20}')
    adapter = save_adapter(
        root / "adapter",
        base,
        target_modules=["q_proj", "v_proj", "down_proj", "embed_tokens"],
        use_dora=True,
        rank_pattern={"layers.1.self_attn.q_proj": 2},
        alpha_pattern={"v_proj": 3},
        modules_to_save=["lm_head"],
    )
    return base, adapter


def _merge(base: Path, adapter: Path, out: Path, **kwargs: object):
    plan = plan_merge_lora(base, adapter, out, **kwargs)  # type: ignore[arg-type]
    return plan, run_to_completion(run_merge_lora(plan, FAST))


def _written(folder: Path) -> dict:
    from safetensors.torch import load_file

    state: dict = {}
    for shard in sorted(folder.glob("*.safetensors")):
        state.update(load_file(str(shard)))
    return state


def _assert_matches_peft(ours: dict, oracle: dict, **tolerance: float) -> None:
    import torch

    assert set(ours) == set(oracle)
    for name, value in oracle.items():
        assert ours[name].dtype == value.dtype, name
        torch.testing.assert_close(ours[name], value, **tolerance, msg=name)


def test_merge_equals_peft_and_loads_cleanly(tmp_path: Path, rich: tuple[Path, Path]) -> None:
    import torch
    from safetensors.torch import load_file
    from transformers import AutoModelForCausalLM

    base, adapter = rich
    plan, result = _merge(base, adapter, tmp_path / "merged")
    ours = _written(tmp_path / "merged")
    _assert_matches_peft(ours, peft_merged_state(base, adapter), rtol=1e-5, atol=1e-6)
    # The merge changed what the adapter adapts and nothing else.
    original = load_file(str(base / "model.safetensors"))
    changed = {k for k in original if not torch.equal(original[k], ours[k])}
    assert changed == set(plan.extra["merged_tensors"])
    assert "lm_head.weight" in changed and "model.embed_tokens.weight" in changed
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        _, info = AutoModelForCausalLM.from_pretrained(
            tmp_path / "merged", output_loading_info=True
        )
    assert not (info["missing_keys"] or info["unexpected_keys"] or info["mismatched_keys"])
    assert json.loads((tmp_path / "merged" / "config.json").read_text()) == json.loads(
        (base / "config.json").read_text()
    )
    assert (tmp_path / "merged" / "generation_config.json").is_file()
    assert "adapter_config.json" not in result.files


def test_bf16_base_within_bf16_rounding(tmp_path: Path) -> None:
    import torch

    base = save_base(tmp_path / "base", dtype=torch.bfloat16)
    adapter = save_adapter(
        tmp_path / "adapter", base, target_modules=["q_proj", "o_proj", "up_proj"]
    )
    _merge(base, adapter, tmp_path / "merged")
    oracle = peft_merged_state(base, adapter, dtype=torch.bfloat16)
    # peft adds the delta in bf16, we add in fp32 and round once: one bf16 step apart at most.
    _assert_matches_peft(_written(tmp_path / "merged"), oracle, rtol=1.6e-2, atol=1e-2)


def test_dtype_option_and_sharded_output(tmp_path: Path, rich: tuple[Path, Path]) -> None:
    import torch

    base, adapter = rich
    plan, _ = _merge(base, adapter, tmp_path / "merged", dtype="BF16", max_shard_size=20_000)
    assert plan.sharded and (tmp_path / "merged" / "model.safetensors.index.json").is_file()
    oracle = {k: v.to(torch.bfloat16) for k, v in peft_merged_state(base, adapter).items()}
    _assert_matches_peft(_written(tmp_path / "merged"), oracle, rtol=0, atol=0)
    assert json.loads((tmp_path / "merged" / "config.json").read_text())["dtype"] == "bfloat16"


def test_gpt2_fan_in_fan_out(tmp_path: Path) -> None:
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(0)
    model = GPT2LMHeadModel(
        GPT2Config(vocab_size=64, n_embd=32, n_layer=1, n_head=2, n_positions=16)
    )
    model.save_pretrained(tmp_path / "gpt2")
    adapter = save_adapter(
        tmp_path / "lora", base_model=model, target_modules=["c_attn", "c_fc"], fan_in_fan_out=True
    )
    _merge(tmp_path / "gpt2", adapter, tmp_path / "merged")
    ours = _written(tmp_path / "merged")
    oracle = peft_merged_state(tmp_path / "gpt2", adapter)
    # save_pretrained leaves the tied lm_head out; so do we (it is not in the base files).
    oracle.pop("lm_head.weight")
    _assert_matches_peft(ours, oracle, rtol=1e-5, atol=1e-6)


def test_pickled_base(tmp_path: Path) -> None:
    import torch

    from tests.support.peft_fixtures import tiny_base

    model = tiny_base()
    folder = tmp_path / "bin-base"
    folder.mkdir()
    torch.save(model.state_dict(), folder / "pytorch_model.bin")
    model.config.save_pretrained(folder)
    adapter = save_adapter(tmp_path / "adapter", base_model=tiny_base())
    _merge(folder, adapter, tmp_path / "merged")
    safetensors_base = save_base(tmp_path / "st-base")
    _assert_matches_peft(
        _written(tmp_path / "merged"),
        peft_merged_state(safetensors_base, adapter),
        rtol=1e-5,
        atol=1e-6,
    )


def test_cancelled_merge_leaves_nothing(tmp_path: Path, rich: tuple[Path, Path]) -> None:
    base, adapter = rich
    plan = plan_merge_lora(base, adapter, tmp_path / "merged", max_shard_size=20_000)
    job = run_merge_lora(plan, FAST)
    next(job)
    next(job)
    job.close()
    assert list(tmp_path.iterdir()) == []


def test_failure_mid_way_leaves_nothing(tmp_path: Path, rich: tuple[Path, Path]) -> None:
    base, adapter = rich
    plan = plan_merge_lora(base, adapter, tmp_path / "merged", max_shard_size=20_000)
    with pytest.raises(CheckpointError, match="simulated failure"):
        run_to_completion(run_merge_lora(plan, ExportOptions(fsync=False, fail_after_bytes=30_000)))
    assert list(tmp_path.iterdir()) == []


def test_adapter_for_another_base_writes_nothing(tmp_path: Path, rich: tuple[Path, Path]) -> None:
    _, adapter = rich
    wide = save_base(tmp_path / "wide", hidden_size=48, intermediate_size=40)
    with pytest.raises(CheckpointError, match="does not fit the base") as caught:
        plan_merge_lora(wide, adapter, tmp_path / "merged")
    assert "the base needs" in str(caught.value) and "\n" not in str(caught.value)
    assert not (tmp_path / "merged").exists()


def test_missing_config_and_unknown_type_write_nothing(
    tmp_path: Path, rich: tuple[Path, Path]
) -> None:
    base, adapter = rich
    bare = tmp_path / "bare"
    bare.mkdir()
    shutil.copy(adapter / "adapter_model.safetensors", bare)
    with pytest.raises(CheckpointError, match=r"no adapter_config\.json"):
        plan_merge_lora(base, bare, tmp_path / "out")
    odd = tmp_path / "odd"
    shutil.copytree(adapter, odd)
    (odd / "adapter_config.json").write_text(json.dumps({"peft_type": "IA3"}))
    with pytest.raises(CheckpointError, match="is a peft IA3 adapter; only LoRA"):
        plan_merge_lora(base, odd, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_output_inside_adapter_is_refused(rich: tuple[Path, Path]) -> None:
    base, adapter = rich
    with pytest.raises(CheckpointError, match="is the source"):
        plan_merge_lora(base, adapter, adapter)
