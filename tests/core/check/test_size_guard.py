"""Size estimates before any build, refusals of impossible configs, and the build budget.

Estimates are checked against the model transformers builds from the same tiny
config (its state dict on the meta device); budgets are set tiny in the test so
that the build must be stopped by them, never by the machine's speed.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

import pytest

from ckpt_gui.core.check import size_guard
from ckpt_gui.core.check.config_source import ResolvedConfig
from ckpt_gui.core.check.expected import build_expected
from ckpt_gui.core.check.expected_cache import load_expected
from ckpt_gui.core.check.size_guard import BuildBudget, estimate_size
from ckpt_gui.core.check.size_guard import refuse_absurd as refuse_with
from ckpt_gui.core.check.templates.template import template_size
from ckpt_gui.core.errors import CheckpointError
from tests.conftest import TINY_LLAMA


def estimate_for(values: dict[str, Any], architecture: str | None):
    return estimate_size(values, template_size(values, architecture))


def refuse_absurd(values: dict[str, Any], architecture: str | None, source: str) -> None:
    refuse_with(values, source, template_size(values, architecture))


ABSURD_LLAMA = {
    "architectures": ["LlamaForCausalLM"],
    "model_type": "llama",
    "num_hidden_layers": 1_000_000,
    "hidden_size": 1_000_000_000,
    "intermediate_size": 11008,
    "num_attention_heads": 32,
    "num_key_value_heads": 32,
    "vocab_size": 32000,
}


def built_size(architecture: str, values: dict[str, Any]) -> tuple[int, int]:
    import torch
    import transformers

    cls = getattr(transformers, architecture)
    with torch.device("meta"):
        model = cls(cls.config_class(**values))
    state = model.state_dict()
    return sum(t.numel() for t in state.values()), len(state)


def config_values(architecture: str, values: dict[str, Any]) -> dict[str, Any]:
    import transformers

    model_type = getattr(transformers, architecture).config_class.model_type
    return {**values, "architectures": [architecture], "model_type": model_type}


@pytest.mark.parametrize(
    ("architecture", "values"),
    [
        ("LlamaForCausalLM", TINY_LLAMA),
        (
            "GPT2LMHeadModel",
            {"n_embd": 32, "n_layer": 2, "n_head": 4, "vocab_size": 100, "n_positions": 64},
        ),
        (
            "BertModel",
            {
                "hidden_size": 32,
                "num_hidden_layers": 2,
                "num_attention_heads": 4,
                "intermediate_size": 64,
                "vocab_size": 100,
                "max_position_embeddings": 64,
            },
        ),
    ],
)
def test_template_estimates_are_the_built_model_exactly(
    architecture: str, values: dict[str, Any]
) -> None:
    estimate = estimate_for(config_values(architecture, values), architecture)
    assert estimate.method == "template"
    assert (estimate.parameters, estimate.tensors) == built_size(architecture, values)


@pytest.mark.parametrize(
    ("architecture", "values"),
    [
        ("MixtralForCausalLM", {**TINY_LLAMA, "num_local_experts": 4}),
        ("Qwen2MoeForCausalLM", {**TINY_LLAMA, "num_experts": 4, "moe_intermediate_size": 16}),
        ("T5ForConditionalGeneration", {"d_model": 32, "d_ff": 64, "num_layers": 2, "d_kv": 8}),
    ],
)
def test_formula_estimates_are_within_a_factor_of_three(
    architecture: str, values: dict[str, Any]
) -> None:
    import transformers

    # As config.json holds it: save_pretrained writes every field, defaults included.
    written = getattr(transformers, architecture).config_class(**values).to_dict()
    estimate = estimate_for(written, architecture)
    assert estimate.method == "formula"
    parameters, tensors = built_size(architecture, values)
    assert parameters / 3 <= estimate.parameters <= parameters * 3
    assert tensors / 3 <= estimate.tensors <= tensors * 3


def test_the_issue_config_is_refused_in_words() -> None:
    with pytest.raises(CheckpointError) as caught:
        refuse_absurd(ABSURD_LLAMA, "LlamaForCausalLM", "config.json")
    message = str(caught.value)
    assert "config asks for over 10^24 parameters" in message
    assert "\n" not in message
    # Without a template (unknown architecture) the rough formula refuses it too.
    with pytest.raises(CheckpointError, match="10\\^24 parameters"):
        refuse_absurd({**ABSURD_LLAMA, "architectures": ["Nope"]}, None, "config.json")


def test_too_many_layers_is_refused_by_tensor_count() -> None:
    values = {**ABSURD_LLAMA, "hidden_size": 64, "intermediate_size": 64}
    with pytest.raises(CheckpointError, match="config asks for 9,000,003 tensors"):
        refuse_absurd(values, "LlamaForCausalLM", "config.json")


def test_the_largest_real_models_are_not_refused() -> None:
    llama_405b = {
        **ABSURD_LLAMA,
        "num_hidden_layers": 126,
        "hidden_size": 16384,
        "intermediate_size": 53248,
        "num_attention_heads": 128,
        "num_key_value_heads": 8,
        "vocab_size": 128256,
    }
    refuse_absurd(llama_405b, "LlamaForCausalLM", "llama-405b")
    deepseek_v3 = {
        "model_type": "deepseek_v3",
        "num_hidden_layers": 61,
        "hidden_size": 7168,
        "intermediate_size": 18432,
        "moe_intermediate_size": 2048,
        "n_routed_experts": 256,
        "vocab_size": 129280,
    }
    estimate = estimate_for(deepseek_v3, "DeepseekV3ForCausalLM")
    assert 3 * 10**11 < estimate.parameters < 3 * 10**12  # the real one: 6.7 * 10^11
    refuse_absurd(deepseek_v3, "DeepseekV3ForCausalLM", "deepseek-v3")


def llama_config(**changes: Any) -> ResolvedConfig:
    values = config_values("LlamaForCausalLM", {**TINY_LLAMA, **changes})
    return ResolvedConfig("test config", values, "LlamaForCausalLM", {})


def test_a_build_over_its_time_budget_is_stopped() -> None:
    with pytest.raises(CheckpointError, match="building the model took over 0 s; stopped"):
        build_expected(llama_config(), budget=BuildBudget(seconds=0, objects=10**6))
    assert build_expected(llama_config()).tensors  # the default budget builds it


def test_a_build_over_its_object_budget_is_stopped() -> None:
    with pytest.raises(CheckpointError, match="made over 20 modules and tensors"):
        build_expected(llama_config(), budget=BuildBudget(seconds=60, objects=20))


def test_a_long_build_on_a_worker_thread_ends_within_its_budget(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # 100,000 tiny layers (900,003 tensors) pass the size estimate; only the budget can stop the build.
    monkeypatch.setattr(size_guard, "BUILD_SECONDS", 0.5)
    config = llama_config(num_hidden_layers=100_000, hidden_size=8, intermediate_size=8)
    outcome: list[BaseException | object] = []

    def work() -> None:
        try:
            outcome.append(load_expected(config, use_cache=False))
        except CheckpointError as exc:
            outcome.append(exc)

    worker = threading.Thread(target=work, daemon=True)
    worker.start()
    worker.join(timeout=300)  # a hang guard only: the budget ends it long before
    assert not worker.is_alive()
    (result,) = outcome
    assert isinstance(result, CheckpointError)
    assert "building the model took over 0.5 s" in str(result)


def test_random_init_refuses_before_reading_with_transformers(tmp_path: Path) -> None:
    from ckpt_gui.core.export.random_init import plan_random_init

    config = tmp_path / "config.json"
    config.write_text(json.dumps(ABSURD_LLAMA))
    with pytest.raises(CheckpointError, match="over 10\\^24 parameters"):
        plan_random_init(config, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_random_init_build_has_a_budget(tmp_path: Path) -> None:
    from ckpt_gui.core.export.random_init import plan_random_init

    config = tmp_path / "config.json"
    config.write_text(json.dumps(config_values("LlamaForCausalLM", TINY_LLAMA)))
    with pytest.raises(CheckpointError, match="made over 5 modules"):
        plan_random_init(config, tmp_path / "out", build_budget=BuildBudget(60, 5))
