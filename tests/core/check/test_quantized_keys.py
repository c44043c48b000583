"""The check knows what a quantized model stores in place of ``Linear.weight``.

Oracles: transformers itself where it can build the quantized model on this machine
(``FP8Linear`` via ``replace_with_fp8_linear`` on the meta device; compressed-tensors
checkpoints through ``from_pretrained(..., output_loading_info=True)``), and for the
other layouts the checkpoint each layout's documentation describes
(tests/support/quant_fixtures.py), compared with its own config.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from ckpt_gui.core.check.config_source import resolve_config
from ckpt_gui.core.check.expected_cache import load_expected
from ckpt_gui.core.check.matching import compare
from ckpt_gui.core.check.quantized_keys import with_quantized_keys
from ckpt_gui.core.formats import open_checkpoint
from tests.support.quant_fixtures import (
    LAYOUTS,
    QUANT_LLAMA,
    gpt_oss,
    llama,
    write_layout,
    write_mxfp4,
)


@pytest.fixture(scope="module")
def layouts(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("quant_check")
    return {layout: write_layout(layout, base / layout) for layout in LAYOUTS}


@pytest.mark.parametrize("layout", LAYOUTS)
def test_quantized_checkpoint_loads_cleanly_into_its_own_config(
    layouts: dict[str, Path], layout: str
) -> None:
    checkpoint = open_checkpoint(layouts[layout])
    report = compare(checkpoint, resolve_config(None, checkpoint))
    assert report.clean, (report.missing, report.unexpected, report.mismatched)
    assert report.counts["ok"] == len(checkpoint.tensors)


def test_without_its_quantization_config_the_gptq_keys_do_not_load(
    layouts: dict[str, Path],
) -> None:
    checkpoint = open_checkpoint(layouts["gptq"])
    config = json.loads((layouts["gptq"] / "config.json").read_text())
    del config["quantization_config"]
    report = compare(
        checkpoint, resolve_config(None, dataclasses.replace(checkpoint, config=config))
    )
    assert "model.layers.0.self_attn.q_proj.weight" in report.missing
    assert "model.layers.0.self_attn.q_proj.qweight" in report.unexpected


def test_a_missing_gptq_zero_point_is_reported_missing(layouts: dict[str, Path]) -> None:
    checkpoint = open_checkpoint(layouts["gptq"])
    gone = "model.layers.1.mlp.down_proj.qzeros"
    damaged = dataclasses.replace(
        checkpoint, tensors=tuple(t for t in checkpoint.tensors if t.name != gone)
    )
    report = compare(damaged, resolve_config(None, checkpoint))
    assert report.missing == (gone,)
    assert report.unexpected == ()


def test_a_wrong_group_size_in_the_config_is_a_shape_mismatch(layouts: dict[str, Path]) -> None:
    checkpoint = open_checkpoint(layouts["gptq"])
    config = json.loads((layouts["gptq"] / "config.json").read_text())
    config["quantization_config"]["group_size"] = 64
    report = compare(
        checkpoint, resolve_config(None, dataclasses.replace(checkpoint, config=config))
    )
    mismatched = {m.key for m in report.mismatched}
    assert "model.layers.0.self_attn.q_proj.scales" in mismatched
    assert "model.layers.0.self_attn.q_proj.qweight" not in mismatched


@pytest.mark.parametrize("block", [[128, 128], [32, 16], None])
def test_fp8_keys_are_those_of_transformers_fp8_linear(block: list[int] | None) -> None:
    import torch
    from transformers import FineGrainedFP8Config, LlamaConfig, LlamaForCausalLM
    from transformers.integrations.finegrained_fp8 import replace_with_fp8_linear
    from transformers.quantizers.base import get_keys_to_not_convert

    with torch.device("meta"):
        model = LlamaForCausalLM(LlamaConfig(**QUANT_LLAMA))
    quant = FineGrainedFP8Config(weight_block_size=block)
    model = replace_with_fp8_linear(
        model, get_keys_to_not_convert(model), quantization_config=quant, pre_quantized=True
    )
    oracle = {k: tuple(v.shape) for k, v in model.state_dict().items()}

    values = {**QUANT_LLAMA, "architectures": ["LlamaForCausalLM"], "model_type": "llama"}
    values["quantization_config"] = {"quant_method": "fp8", "weight_block_size": block}
    config = resolve_config(None, _config_holder(values))
    expected = with_quantized_keys(load_expected(config), config.values, {})
    assert {k: t.shape for k, t in expected.tensors.items()} == oracle


def test_compressed_tensors_keys_match_transformers_loading_report(
    layouts: dict[str, Path],
) -> None:
    from transformers import AutoModelForCausalLM

    folder = layouts["compressed-pack"]
    checkpoint = open_checkpoint(folder)
    gone = "model.layers.0.self_attn.k_proj.weight_scale"
    damaged = dataclasses.replace(
        checkpoint, tensors=tuple(t for t in checkpoint.tensors if t.name != gone)
    )
    model, info = AutoModelForCausalLM.from_pretrained(folder, output_loading_info=True)
    loaded = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    expected = with_quantized_keys(
        load_expected(resolve_config(None, checkpoint)),
        checkpoint.config or {},
        {t.name: t.shape for t in checkpoint.tensors},
    )
    assert {k: t.shape for k, t in expected.tensors.items()} == loaded
    assert not info["missing_keys"] and not info["unexpected_keys"]
    assert compare(damaged, resolve_config(None, checkpoint)).missing == (gone,)


@pytest.mark.parametrize("layout", ["fp8-block", "fp8-tensor"])
def test_fp8_fixtures_load_in_transformers(layouts: dict[str, Path], layout: str) -> None:
    """Oracle for the hand-written FP8 layouts: transformers loads them (dequantizing on
    CPU) with an empty report, and the weights come back within e4m3 rounding."""
    from transformers import AutoModelForCausalLM

    model, info = AutoModelForCausalLM.from_pretrained(layouts[layout], output_loading_info=True)
    assert not info["missing_keys"] and not info["unexpected_keys"] and not info["mismatched_keys"]
    reference = llama().model.layers[1].mlp.down_proj.weight.float()
    loaded = model.model.layers[1].mlp.down_proj.weight.float()
    assert (loaded - reference).abs().max() <= reference.abs().max() / 8


def test_mxfp4_experts_expect_blocks_and_scales_as_transformers_loads_them(
    tmp_path: Path,
) -> None:
    """Oracle: transformers loads the gpt-oss MXFP4 layout (dequantizing on CPU) with an
    empty loading report, and the values come back within e2m1's rounding."""
    from transformers import AutoModelForCausalLM

    folder = write_mxfp4(tmp_path / "gpt-oss")
    model, info = AutoModelForCausalLM.from_pretrained(folder, output_loading_info=True)
    assert not info["missing_keys"] and not info["unexpected_keys"]
    reference = gpt_oss().model.layers[0].mlp.experts.down_proj.float()
    loaded = model.model.layers[0].mlp.experts.down_proj.float()
    assert (loaded - reference).abs().max() <= reference.abs().max() / 4
    checkpoint = open_checkpoint(folder)
    report = compare(checkpoint, resolve_config(None, checkpoint))
    assert report.clean, (report.missing, report.unexpected, report.mismatched)


def _config_holder(values: dict[str, object]):
    from ckpt_gui.core.model import Checkpoint

    return Checkpoint("config-only", "none", (), (), config=values)
