"""Templates give exactly the description a real meta build gives, or step aside."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from fractions import Fraction
from importlib import metadata
from pathlib import Path
from typing import Any

import pytest

from ckpt_gui.core.check.config_source import ResolvedConfig, resolve_config
from ckpt_gui.core.check.expected import build_expected
from ckpt_gui.core.check.matching import compare
from ckpt_gui.core.check.templates import template as template_module
from ckpt_gui.core.check.templates.learn import EXTRA_KEYS, FIELD_TRIALS, Learner, _candidates
from ckpt_gui.core.check.templates.shape import same_description
from ckpt_gui.core.check.templates.template import (
    Formula,
    expand,
    shipped_templates,
    template_for,
    transformers_version,
)
from ckpt_gui.core.targets import open_target
from tests.support.matching_oracle import (
    FAMILIES,
    VARIANTS,
    build_model,
    oracle,
    state_dict_of,
    write_folder,
)

ROOT = Path(__file__).resolve().parents[3]
TINY_LLAMA = dict(FAMILIES["LlamaForCausalLM"][1])
# Templates are shipped per transformers version; with another version installed the
# model is built instead, so these tests have nothing to check (the "no template"
# path has its own tests below).
needs_shipped = pytest.mark.skipif(
    not shipped_templates(),
    reason=f"no shipped templates for transformers {transformers_version()}: "
    "the model is built (make templates ships them)",
)


def test_formula_gives_whole_positive_numbers_only() -> None:
    kv_rows = Formula(Fraction(0), Fraction(1), (("heads", -1), ("hidden", 1), ("kv", 1)))
    assert kv_rows.evaluate({"hidden": 4096, "heads": 32, "kv": 8}) == 1024
    assert kv_rows.evaluate({"hidden": 100, "heads": 3, "kv": 1}) is None  # not whole
    assert kv_rows.evaluate({"hidden": 4096, "heads": 32}) is None  # field missing
    assert kv_rows.evaluate({"hidden": 4096, "heads": 32, "kv": True}) is None  # not an int
    offset = Formula(Fraction(2), Fraction(1), (("positions", 1),))
    assert offset.evaluate({"positions": 1024}) == 1026
    assert Formula.from_json(kv_rows.to_json()) == kv_rows


def test_expand_lists_keys_depth_first() -> None:
    patterns = ["emb", "layers.#.attn", "layers.#.experts.#.w", "layers.#.norm", "head"]
    keys = list(expand(patterns, {"layers": 2, "layers.#.experts": 2}))
    assert [k for _, k in keys] == [
        "emb",
        "layers.0.attn",
        "layers.0.experts.0.w",
        "layers.0.experts.1.w",
        "layers.0.norm",
        "layers.1.attn",
        "layers.1.experts.0.w",
        "layers.1.experts.1.w",
        "layers.1.norm",
        "head",
    ]
    assert [n for n, _ in keys][:3] == [0, 1, 2]


@pytest.fixture(scope="module")
def llama_learner() -> Learner:
    return Learner("LlamaForCausalLM")


@pytest.fixture(scope="module")
def llama_template(llama_learner: Learner) -> Any:
    template = llama_learner.learn({**TINY_LLAMA, "head_dim": 8})
    assert template is not None
    return template


@pytest.mark.parametrize(
    "change",
    [
        {},
        {"num_hidden_layers": 5},
        {"hidden_size": 48, "num_attention_heads": 6, "num_key_value_heads": 2, "head_dim": 8},
        {"vocab_size": 1000, "intermediate_size": 100, "num_key_value_heads": 4},
        {"head_dim": 16, "num_attention_heads": 8},
        {"rms_norm_eps": 1e-5, "bos_token_id": 0, "pad_token_id": 0, "dtype": "bfloat16"},
    ],
)
def test_learned_template_matches_real_builds(
    llama_learner: Learner, llama_template: Any, change: dict[str, Any]
) -> None:
    """Configs the learning never built: the formulas must carry over."""
    values = {**TINY_LLAMA, "head_dim": 8, **change}
    real = llama_learner.describe(values)
    assert real is not None
    from_template = llama_template.instantiate(values)
    assert from_template is not None
    assert same_description(from_template, real)


@pytest.mark.parametrize(
    "change",
    [
        {"tie_word_embeddings": True},  # ties lm_head: other keys
        {"attention_bias": True},  # adds biases
        {"head_dim": None},  # head_dim then follows hidden_size / heads
        {"some_unknown_field": 1},  # never seen: cannot be vouched for
        {"hidden_size": 30, "num_attention_heads": 4, "head_dim": None},  # not whole
    ],
)
def test_template_refuses_what_it_cannot_vouch_for(
    llama_template: Any, change: dict[str, Any]
) -> None:
    assert llama_template.instantiate({**TINY_LLAMA, "head_dim": 8, **change}) is None


def _random_values(template: Any, rng: random.Random) -> dict[str, Any]:
    values = dict(template.base)
    for name, kind in template.free.items():
        if kind == "int":
            values[name] = values[name] * rng.choice([1, 2, 3])
    for name, kind in template.free.items():
        if kind.startswith("layers:"):
            kinds = kind.removeprefix("layers:").split(",")
            values[name] = [rng.choice(kinds) for _ in range(values["num_hidden_layers"])]
        elif rng.random() < 0.5:
            options = (
                FIELD_TRIALS.get(name) or EXTRA_KEYS.get(name) or _candidates(values.get(name))
            )
            if options:
                values[name] = rng.choice(list(options))
    return values


@needs_shipped
def test_shipped_templates_match_real_builds() -> None:
    """Every shipped template, at its base and at random configs of its structure,
    against a real build: the same description, or none (the model is built then)."""
    shipped = shipped_templates()
    rng = random.Random(0)
    served = 0
    for architecture, templates in shipped.items():
        learner = Learner(architecture)
        for template in templates:
            assert template.transformers == metadata.version("transformers")
            assert same_description(
                template.instantiate(template.base), learner.describe(template.base)
            )
            for _ in range(4):
                values = _random_values(template, rng)
                real = learner.describe(values)
                if real is None:
                    continue  # not a valid config (e.g. heads no longer divide)
                from_template = template.instantiate(values)
                # None: a formula did not give a whole number (transformers floors).
                assert from_template is None or same_description(from_template, real), (
                    architecture,
                    values,
                )
                served += from_template is not None
    assert served > 2 * len(shipped)


SAVED_CONFIGS = {
    "LlamaForCausalLM": ("LlamaConfig", TINY_LLAMA),
    "MistralForCausalLM": ("MistralConfig", {**TINY_LLAMA, "sliding_window": 16}),
    "Qwen3ForCausalLM": ("Qwen3Config", {**TINY_LLAMA, "head_dim": 16}),
    "GemmaForCausalLM": ("GemmaConfig", {**TINY_LLAMA, "head_dim": 8}),
    # layer_types spelled out, sliding and full in turn:
    "Gemma2ForCausalLM": ("Gemma2Config", {**TINY_LLAMA, "head_dim": 8, "num_hidden_layers": 3}),
    "Qwen2ForCausalLM": ("Qwen2Config", TINY_LLAMA),
    "GPTNeoXForCausalLM": (
        "GPTNeoXConfig",
        {
            "vocab_size": 64,
            "hidden_size": 32,
            "intermediate_size": 48,
            "num_hidden_layers": 2,
            "num_attention_heads": 4,
        },
    ),
    "BartForConditionalGeneration": FAMILIES["BartForConditionalGeneration"],
    "GPT2LMHeadModel": FAMILIES["GPT2LMHeadModel"],
    "BertForMaskedLM": FAMILIES["BertForMaskedLM"],
    "RobertaForMaskedLM": FAMILIES["RobertaForMaskedLM"],
}


@needs_shipped
@pytest.mark.parametrize("architecture", sorted(SAVED_CONFIGS))
def test_configs_as_saved_are_served_by_templates(architecture: str) -> None:
    """config.json as save_pretrained writes it (every field spelled out) hits a
    template, and the template's answer is the build's."""
    import transformers

    config_name, values = SAVED_CONFIGS[architecture]
    config = getattr(transformers, config_name)(**values)
    config.architectures = [architecture]
    saved = json.loads(config.to_json_string())
    resolved = ResolvedConfig("config.json", saved, architecture)
    from_template = template_for(resolved, None)
    assert from_template is not None
    assert same_description(from_template, build_expected(resolved))


@needs_shipped
def test_hub_era_llama_config_is_served() -> None:
    """A Llama-2 config.json as published (transformers 4 spellings, no head_dim)."""
    values = {
        "architectures": ["LlamaForCausalLM"],
        "bos_token_id": 1,
        "eos_token_id": 2,
        "hidden_act": "silu",
        "hidden_size": 64,
        "initializer_range": 0.02,
        "intermediate_size": 172,
        "max_position_embeddings": 4096,
        "model_type": "llama",
        "num_attention_heads": 8,
        "num_hidden_layers": 3,
        "num_key_value_heads": 8,
        "pad_token_id": 0,
        "pretraining_tp": 1,
        "rms_norm_eps": 1e-05,
        "rope_scaling": None,
        "rope_theta": 10000.0,
        "tie_word_embeddings": False,
        "torch_dtype": "float16",
        "transformers_version": "4.31.0.dev0",
        "use_cache": True,
        "vocab_size": 320,
    }
    resolved = ResolvedConfig("config.json", values, "LlamaForCausalLM")
    from_template = template_for(resolved, None)
    assert from_template is not None
    assert same_description(from_template, build_expected(resolved))


@needs_shipped
def test_template_steps_aside_for_key_mappings_and_when_disabled(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    resolved = ResolvedConfig(
        "config.json", {**TINY_LLAMA, "model_type": "llama"}, "LlamaForCausalLM"
    )
    assert template_for(resolved, None) is not None
    assert template_for(resolved, {"^foo": "bar"}) is None
    monkeypatch.setenv("CKPT_GUI_NO_TEMPLATES", "1")
    assert template_for(resolved, None) is None


@pytest.mark.parametrize("variant", sorted(VARIANTS))
@pytest.mark.parametrize(
    "architecture", ["LlamaForCausalLM", "BertForMaskedLM", "GPT2LMHeadModel", "RobertaForMaskedLM"]
)
def test_comparison_through_template_agrees_with_transformers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, architecture: str, variant: str
) -> None:
    """The whole comparison, served by a template, against output_loading_info."""
    monkeypatch.setenv("CKPT_GUI_CACHE_DIR", str(tmp_path / "cache"))
    model = build_model(architecture)
    state = VARIANTS[variant](state_dict_of(model))
    if state is None:
        pytest.skip("variant does not apply to this family")
    folder = write_folder(tmp_path / "m", model, state)
    checkpoint = open_target(folder)
    config = resolve_config(None, checkpoint)
    if shipped_templates():
        assert template_for(config, None) is not None
    result = compare(checkpoint, config)  # else through the built model: the same answer
    truth = oracle(folder, architecture)
    assert sorted(result.missing) == truth["missing"]
    assert sorted(result.unexpected) == truth["unexpected"]
    assert sorted(m.key for m in result.mismatched) == sorted(k for k, *_ in truth["mismatched"])


@needs_shipped
def test_first_check_imports_neither_torch_nor_transformers(tmp_path: Path) -> None:
    model = build_model("LlamaForCausalLM")
    folder = write_folder(
        tmp_path / "m", model, {"module." + k: v for k, v in state_dict_of(model).items()}
    )
    code = (
        "import sys, ckpt_gui.cli as c;"
        "code = c.main(['check', sys.argv[1], '--json']);"
        "print('HEAVY', [m for m in ('torch', 'transformers') if m in sys.modules]);"
        "sys.exit(code)"
    )
    outputs = []
    for templates in ("", "1"):
        env = {
            **os.environ,
            "PYTHONPATH": str(ROOT),
            "CKPT_GUI_CACHE_DIR": str(tmp_path / f"cache{templates}"),
            "CKPT_GUI_NO_TEMPLATES": templates,
        }
        run = subprocess.run(
            [sys.executable, "-c", code, str(folder)], env=env, capture_output=True, text=True
        )
        assert run.returncode == 1, run.stderr
        outputs.append(run.stdout)
    with_template, built = outputs
    assert with_template.splitlines()[-1] == "HEAVY []"
    assert "'transformers'" in built.splitlines()[-1]
    assert json.loads(with_template[: with_template.rindex("HEAVY")]) == json.loads(
        built[: built.rindex("HEAVY")]
    )


@pytest.fixture
def unshipped_version(monkeypatch: pytest.MonkeyPatch) -> str:
    """A transformers version no template was shipped for (the installed one stays)."""
    version = "5.999.0"
    assert template_module.shipped_file(version) is None
    monkeypatch.setattr(template_module, "transformers_version", lambda: version)
    return version


def test_without_templates_for_the_version_none_is_served(unshipped_version: str) -> None:
    resolved = ResolvedConfig(
        "config.json", {**TINY_LLAMA, "model_type": "llama"}, "LlamaForCausalLM"
    )
    assert shipped_templates() == {}
    assert template_for(resolved, None) is None


def test_without_templates_for_the_version_the_check_still_answers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, unshipped_version: str
) -> None:
    """No shipped template means: build the model. The answer is transformers' own."""
    from ckpt_gui.core.check import expected_cache

    monkeypatch.setenv("CKPT_GUI_CACHE_DIR", str(tmp_path / "cache"))
    builds: list[str] = []
    real_build = expected_cache.build_expected

    def counting_build(config: ResolvedConfig, key_mapping: Any = None) -> Any:
        builds.append(str(config.architecture))
        return real_build(config, key_mapping)

    monkeypatch.setattr(expected_cache, "build_expected", counting_build)
    model = build_model("LlamaForCausalLM")
    state = VARIANTS["dropped_and_extra"](state_dict_of(model))
    assert state is not None
    folder = write_folder(tmp_path / "m", model, state)
    checkpoint = open_target(folder)
    result = compare(checkpoint, resolve_config(None, checkpoint))
    assert builds == ["LlamaForCausalLM"]  # built, not served
    truth = oracle(folder, "LlamaForCausalLM")
    assert truth["missing"] and sorted(result.missing) == truth["missing"]
    assert sorted(result.unexpected) == truth["unexpected"]
    assert sorted(m.key for m in result.mismatched) == sorted(k for k, *_ in truth["mismatched"])


def test_a_version_without_templates_has_no_file() -> None:
    assert template_module.shipped_file(None) is None
    installed = transformers_version()
    shipped = template_module.shipped_file(installed)
    assert (shipped is not None) == bool(shipped_templates())
