"""Quantized checkpoints count the model's parameters, as the Hub's rules do.

Oracles: the float model's own ``numel`` (106,816: what huggingface.js
``parse-safetensors-metadata`` aims at: packed integers times their packing factor,
bookkeeping not counted) and, for the stored elements, the figures issue 15 reported
for the same layouts (GPTQ 45,920; FP8 blocks 106,830; bitsandbytes nf4 72,426).
"""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path

import pytest

from ckpt_gui.core.formats import open_checkpoint
from ckpt_gui.core.tree.build import build_tree
from tests.support.quant_fixtures import (
    LAYOUTS,
    LLAMA_PARAMETERS,
    gpt_oss,
    llama,
    write_layout,
    write_mxfp4,
)

STORED_BEFORE = {"gptq": 45_920, "fp8-block": 106_830, "bnb-nf4": 72_426}
QUANTIZED_MODULES = {"compressed-pack": 12, "compressed-fp8": 12}  # down_proj ignored


@pytest.fixture(scope="module")
def layouts(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("quant")
    return {layout: write_layout(layout, base / layout) for layout in LAYOUTS}


def test_the_fixture_model_is_the_issues_llama() -> None:
    assert sum(p.numel() for p in llama().parameters()) == LLAMA_PARAMETERS


@pytest.mark.parametrize("layout", LAYOUTS)
def test_total_parameters_is_the_models_count(layouts: dict[str, Path], layout: str) -> None:
    checkpoint = open_checkpoint(layouts[layout])
    assert checkpoint.total_parameters == LLAMA_PARAMETERS
    assert checkpoint.all_warnings == ()
    stored = sum(math.prod(t.shape) for t in checkpoint.tensors)
    if layout in STORED_BEFORE:
        assert stored == STORED_BEFORE[layout]
    # Bytes are what the file holds, unchanged by the counting.
    data = (layouts[layout] / "model.safetensors").stat().st_size
    assert checkpoint.total_bytes <= data and data - checkpoint.total_bytes < 20_000
    assert checkpoint.to_json()["total_parameters"] == LLAMA_PARAMETERS


@pytest.mark.parametrize("layout", LAYOUTS)
def test_each_quantized_module_has_its_facts_and_bookkeeping(
    layouts: dict[str, Path], layout: str
) -> None:
    checkpoint = open_checkpoint(layouts[layout])
    quant = checkpoint.quantization
    assert quant is not None
    assert len(quant.modules) == QUANTIZED_MODULES.get(layout, 14)
    q_proj = quant.modules["model.layers.0.self_attn.q_proj"]
    assert q_proj.parameters == 64 * 64
    assert q_proj.bits == (
        8 if layout in ("bnb-int8", "fp8-block", "fp8-tensor", "compressed-fp8") else 4
    )
    if layout in ("gptq", "awq", "compressed-pack"):
        assert q_proj.group_size == 32
    if layout == "fp8-block":
        assert q_proj.block_size == (128, 128)
    assert q_proj.bookkeeping
    for name in q_proj.bookkeeping:
        assert quant.parameters[name] == 0
        assert name.startswith("model.layers.0.self_attn.q_proj.")
    assert "lm_head" not in {m.split(".")[0] for m in quant.modules}


def test_tree_counts_bookkeeping_as_no_parameters(layouts: dict[str, Path]) -> None:
    checkpoint = open_checkpoint(layouts["gptq"])
    root = build_tree(checkpoint.tensors, checkpoint.quantization)
    assert root.parameters == LLAMA_PARAMETERS
    q_proj = root.find("model.layers.0.self_attn.q_proj")
    assert q_proj is not None and q_proj.quant is not None
    assert q_proj.quant.describe() == "gptq 4-bit group 32"
    assert q_proj.parameters == 64 * 64
    roles = {c.name: c.bookkeeping for c in q_proj.children}
    assert roles == {"qweight": False, "qzeros": True, "scales": True, "g_idx": True}
    assert root.nbytes == checkpoint.total_bytes


def test_parameters_by_dtype_follow_the_hub(layouts: dict[str, Path]) -> None:
    """The Hub reports packed weights under their container dtype, times the factor."""
    by_dtype = open_checkpoint(layouts["gptq"]).parameters_by_dtype
    assert by_dtype == {"I32": 73_728, "BF16": 33_088}


def test_config_under_text_config_is_read(layouts: dict[str, Path], tmp_path: Path) -> None:
    folder = layouts["gptq"]
    config = json.loads((folder / "config.json").read_text())
    nested = {"model_type": "llava", "text_config": {**config}}
    checkpoint = dataclasses.replace(open_checkpoint(folder), config=nested)
    assert checkpoint.total_parameters == LLAMA_PARAMETERS
    assert checkpoint.all_warnings == ()


def test_no_config_recognises_the_layout_with_a_warning(layouts: dict[str, Path]) -> None:
    checkpoint = open_checkpoint(layouts["gptq"] / "model.safetensors")
    bare = dataclasses.replace(checkpoint, config=None)
    assert bare.total_parameters == LLAMA_PARAMETERS
    assert any("declares no quantization" in w for w in bare.all_warnings)


def test_wrong_bits_in_config_is_a_warning(layouts: dict[str, Path]) -> None:
    checkpoint = open_checkpoint(layouts["gptq"])
    config = dict(checkpoint.config or {})
    config["quantization_config"] = {**config["quantization_config"], "bits": 8}
    lying = dataclasses.replace(checkpoint, config=config)
    assert any("shapes imply 4-bit but the config says 8-bit" in w for w in lying.all_warnings)


def test_missing_bookkeeping_is_a_warning(layouts: dict[str, Path]) -> None:
    checkpoint = open_checkpoint(layouts["gptq"])
    gone = "model.layers.1.mlp.up_proj.qzeros"
    damaged = dataclasses.replace(
        checkpoint, tensors=tuple(t for t in checkpoint.tensors if t.name != gone)
    )
    assert any(
        "qweight without qzeros" in w and "model.layers.1.mlp.up_proj" in w
        for w in damaged.all_warnings
    )


def test_wrong_block_scales_are_a_warning(layouts: dict[str, Path]) -> None:
    checkpoint = open_checkpoint(layouts["fp8-block"])
    config = dict(checkpoint.config or {})
    config["quantization_config"] = {**config["quantization_config"], "weight_block_size": [32, 32]}
    odd = dataclasses.replace(checkpoint, config=config)
    assert any("block scales are [1, 1]" in w for w in odd.all_warnings)


def test_unknown_method_is_a_warning_not_a_silent_count(layouts: dict[str, Path]) -> None:
    checkpoint = open_checkpoint(layouts["fp8-block"])
    config = {**dict(checkpoint.config or {}), "quantization_config": {"quant_method": "hqq"}}
    odd = dataclasses.replace(checkpoint, config=config)
    assert any("'hqq' is not understood" in w for w in odd.all_warnings)


def test_declared_but_absent_layout_is_a_warning(llama_dir: Path) -> None:
    checkpoint = open_checkpoint(llama_dir)
    config = {
        **dict(checkpoint.config or {}),
        "quantization_config": {"quant_method": "gptq", "bits": 4},
    }
    claimed = dataclasses.replace(checkpoint, config=config)
    assert claimed.total_parameters == sum(t.parameters for t in checkpoint.tensors)
    assert any("no tensor has its layout" in w for w in claimed.all_warnings)


def test_plain_checkpoint_is_untouched(llama_dir: Path) -> None:
    checkpoint = open_checkpoint(llama_dir)
    assert checkpoint.quantization is None
    assert checkpoint.total_parameters == sum(t.parameters for t in checkpoint.tensors)


def test_mxfp4_blocks_count_two_values_per_byte_and_scales_none(tmp_path: Path) -> None:
    model = gpt_oss()
    checkpoint = open_checkpoint(write_mxfp4(tmp_path / "gpt-oss"))
    assert checkpoint.total_parameters == sum(p.numel() for p in model.parameters())
    assert checkpoint.all_warnings == ()
    quant = checkpoint.quantization
    assert quant is not None
    experts = quant.modules["model.layers.0.mlp.experts"]
    assert experts.bits == 4 and experts.group_size == 32
    assert sorted(experts.bookkeeping) == [
        "model.layers.0.mlp.experts.down_proj_scales",
        "model.layers.0.mlp.experts.gate_up_proj_scales",
    ]
    assert len(quant.modules) == 2


HOSTILE_CONFIGS = [
    {"quantization_config": ["gptq"]},
    {"quantization_config": {"quant_method": 5}},
    {"quantization_config": {"quant_method": "gptq", "bits": "4", "group_size": "32"}},
    {"quantization_config": {"quant_method": "gptq", "bits": -4, "group_size": 0}},
    {"quantization_config": {"quant_method": "gptq", "bits": 64, "group_size": -1}},
    {"quantization_config": {"quant_method": "fp8", "weight_block_size": [0, -1]}},
    {"quantization_config": {"quant_method": "fp8", "weight_block_size": "128"}},
    {"quantization_config": {"quant_method": "compressed-tensors", "config_groups": "x"}},
    {
        "quantization_config": {
            "quant_method": "compressed-tensors",
            "config_groups": {"g": {"targets": ["re:("], "weights": {"num_bits": 0}}},
            "ignore": [None, "re:(a+)+$", "re:["],
        }
    },
    {"quantization_config": {"quant_method": "gptq", "modules_to_not_convert": ["(a+)+$", "["]}},
    {"text_config": "llama"},
]


@pytest.mark.parametrize("config", HOSTILE_CONFIGS)
def test_hostile_configs_never_crash(layouts: dict[str, Path], config: dict) -> None:
    from ckpt_gui.core.check.config_source import resolve_config
    from ckpt_gui.core.check.expected_cache import load_expected
    from ckpt_gui.core.check.quantized_keys import with_quantized_keys

    checkpoint = open_checkpoint(layouts["gptq"])
    values = {**dict(checkpoint.config or {}), **config}
    if "quantization_config" not in config:
        values.pop("quantization_config")
    odd = dataclasses.replace(checkpoint, config=values)
    assert odd.total_parameters > 0
    odd.to_json()
    build_tree(odd.tensors, odd.quantization)
    built = load_expected(resolve_config(None, checkpoint))  # built: knows its Linear modules
    assert built.linear_modules
    with_quantized_keys(built, values, {t.name: t.shape for t in odd.tensors})
