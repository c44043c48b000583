"""Fit: what peft reports when it loads the adapter onto the base, told before loading."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from ckpt_gui.core.adapters.fit import fit_adapter
from ckpt_gui.core.check.config_source import resolve_config
from ckpt_gui.core.errors import CheckpointError
from ckpt_gui.core.targets import open_target
from tests.support.peft_fixtures import peft_fit, save_adapter, save_base


def _ours(base: Path | str, adapter: Path):
    return fit_adapter(open_target(adapter), resolve_config(str(base)))


def _assert_same_as_peft(base: Path, adapter: Path) -> None:
    oracle = peft_fit(base, adapter)
    report = _ours(base, adapter)
    assert oracle["error"] is None
    assert {m.key for m in report.mismatched} == oracle["mismatched"]
    assert set(report.missing) == oracle["missing"]
    assert set(report.unexpected) == oracle["unexpected"]
    assert report.clean == (not (oracle["mismatched"] or oracle["missing"] or oracle["unexpected"]))


def test_adapter_fits_its_own_base(rich_pair: tuple[Path, Path]) -> None:
    base, adapter = rich_pair
    _assert_same_as_peft(base, adapter)
    report = _ours(base, adapter)
    assert report.clean
    assert set(report.status_by_key.values()) == {"ok"}


def test_wider_base_mismatches_like_peft(tmp_path: Path, rich_pair: tuple[Path, Path]) -> None:
    _, adapter = rich_pair
    wide = save_base(tmp_path / "wide", hidden_size=48, intermediate_size=40)
    _assert_same_as_peft(wide, adapter)
    report = _ours(wide, adapter)
    assert not report.clean and report.mismatched
    lora_a = next(m for m in report.mismatched if m.key.endswith("q_proj.lora_A.weight"))
    assert lora_a.checkpoint_shape[1] == 32 and lora_a.model_shape[1] == 48


def test_shallower_base_leaves_keys_unexpected(
    tmp_path: Path, lora_pair: tuple[Path, Path]
) -> None:
    _, adapter = lora_pair
    shallow = save_base(tmp_path / "shallow", num_hidden_layers=1)
    _assert_same_as_peft(shallow, adapter)
    report = _ours(shallow, adapter)
    assert report.unexpected and all(".layers.1." in k for k in report.unexpected)
    assert all(report.status_by_key[k] == "unexpected" for k in report.unexpected)


def test_targets_without_weights_are_missing(tmp_path: Path, lora_pair: tuple[Path, Path]) -> None:
    base, adapter = lora_pair
    copy = tmp_path / "more-targets"
    shutil.copytree(adapter, copy)
    config = json.loads((copy / "adapter_config.json").read_text())
    config["target_modules"] = ["q_proj", "v_proj", "k_proj"]
    (copy / "adapter_config.json").write_text(json.dumps(config))
    _assert_same_as_peft(base, copy)
    report = _ours(base, copy)
    assert report.missing and all("k_proj.lora_" in k for k in report.missing)
    assert set(report.ghost_keys) == set(report.missing)


def test_rank_pattern_disagreeing_with_weights(
    tmp_path: Path, lora_pair: tuple[Path, Path]
) -> None:
    base, adapter = lora_pair
    copy = tmp_path / "rank"
    shutil.copytree(adapter, copy)
    config = json.loads((copy / "adapter_config.json").read_text())
    config["rank_pattern"] = {"layers.0.self_attn.v_proj": 2}
    (copy / "adapter_config.json").write_text(json.dumps(config))
    _assert_same_as_peft(base, copy)
    assert {m.key for m in _ours(base, copy).mismatched} == {
        "base_model.model.model.layers.0.self_attn.v_proj.lora_A.weight",
        "base_model.model.model.layers.0.self_attn.v_proj.lora_B.weight",
    }


def test_fan_in_fan_out_gpt2(tmp_path: Path) -> None:
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(0)
    model = GPT2LMHeadModel(
        GPT2Config(vocab_size=64, n_embd=32, n_layer=1, n_head=2, n_positions=16)
    )
    model.save_pretrained(tmp_path / "gpt2")
    adapter = save_adapter(
        tmp_path / "gpt2-lora",
        base_model=model,
        target_modules=["c_attn", "c_fc"],
        fan_in_fan_out=True,
    )
    _assert_same_as_peft(tmp_path / "gpt2", adapter)
    assert _ours(tmp_path / "gpt2", adapter).clean


def test_architecture_name_as_base(lora_pair: tuple[Path, Path]) -> None:
    _, adapter = lora_pair
    # LlamaForCausalLM's defaults (hidden 4096) do not fit a 32-wide adapter.
    report = _ours("LlamaForCausalLM", adapter)
    assert report.mismatched and not report.clean


def test_no_target_in_base_is_said(tmp_path: Path, lora_pair: tuple[Path, Path]) -> None:
    base, adapter = lora_pair
    copy = tmp_path / "none"
    shutil.copytree(adapter, copy)
    config = json.loads((copy / "adapter_config.json").read_text())
    config["target_modules"] = ["nothing_like_this"]
    (copy / "adapter_config.json").write_text(json.dumps(config))
    assert "not found in the base model" in (peft_fit(base, copy)["error"] or "")
    report = _ours(base, copy)
    assert not report.clean
    assert any("match no module" in w for w in report.warnings)


def test_missing_config_is_refused(tmp_path: Path, lora_pair: tuple[Path, Path]) -> None:
    base, adapter = lora_pair
    bare = tmp_path / "bare"
    bare.mkdir()
    shutil.copy(adapter / "adapter_model.safetensors", bare)
    checkpoint = open_target(bare)
    with pytest.raises(
        CheckpointError, match=r"looks like a peft adapter but has no adapter_config\.json"
    ):
        fit_adapter(checkpoint, resolve_config(str(base)))
