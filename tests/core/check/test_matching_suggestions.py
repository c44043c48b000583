"""Suggested renames are right: applying them makes transformers load the checkpoint cleanly."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.matching_oracle import build_model, oracle, ours, state_dict_of, write_folder

CLEAN = {"missing": [], "unexpected": [], "mismatched": []}


def renamed(state: dict, rename) -> dict:
    return {rename(k): v for k, v in state.items()}


CASES = {
    "ddp": ("LlamaForCausalLM", lambda k: "module." + k, ["strip_prefix"]),
    "compile": ("BertForMaskedLM", lambda k: "_orig_mod." + k, ["strip_prefix"]),
    "ddp_compile": ("GPT2LMHeadModel", lambda k: "module._orig_mod." + k, ["strip_prefix"]),
    "lightning": ("BertForMaskedLM", lambda k: "model." + k, ["strip_prefix"]),
    "other_prefix": (
        "LlamaForCausalLM",
        lambda k: k.replace("model.", "backbone.", 1),
        ["strip_prefix"],  # transformers then adds the base prefix 'model.' itself
    ),
    "inner_rename": (
        "LlamaForCausalLM",
        lambda k: k.replace(".self_attn.", ".attention."),
        ["regex"],
    ),
    "prefix_then_inner": (
        "ViTForImageClassification",
        lambda k: "module." + k.replace(".attention.", ".attn."),
        ["strip_prefix", "regex"],
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_suggestion_makes_transformers_load_cleanly(tmp_path: Path, case: str) -> None:
    architecture, damage, kinds = CASES[case]
    model = build_model(architecture)
    original = state_dict_of(model)
    broken = renamed(original, damage)
    folder = write_folder(tmp_path / "broken", model, broken)
    got, report = ours(folder, None)
    assert got == oracle(folder, architecture)
    assert not report.clean
    assert [s.rename.kind for s in report.suggestions] == kinds, report.suggestions
    fixed = broken
    for rename in report.renames():
        fixed = renamed(fixed, rename.apply)
    assert len(fixed) == len(original)
    fixed_folder = write_folder(tmp_path / "fixed", model, fixed)
    assert oracle(fixed_folder, architecture) == CLEAN
    assert sum(s.resolves for s in report.suggestions) == len(got["missing"]) + len(
        got["unexpected"]
    )


def test_base_prefix_under_a_lightning_prefix_needs_no_fix(tmp_path: Path) -> None:
    """``model.model.x`` loads into Llama as is: transformers strips its base prefix."""
    model = build_model("LlamaForCausalLM")
    folder = write_folder(
        tmp_path / "ckpt", model, renamed(state_dict_of(model), lambda k: "model." + k)
    )
    got, report = ours(folder, None)
    assert got == oracle(folder, "LlamaForCausalLM") == CLEAN
    assert report.clean and report.renamed["model.lm_head.weight"] == "lm_head.weight"


def test_replace_prefix_when_the_model_has_no_such_base(tmp_path: Path) -> None:
    model = build_model("GPT2LMHeadModel")
    state = renamed(state_dict_of(model), lambda k: k.replace("transformer.", "gpt.", 1))
    folder = write_folder(tmp_path / "ckpt", model, state)
    got, report = ours(folder, None)
    assert got == oracle(folder, "GPT2LMHeadModel")
    [suggestion] = report.suggestions
    assert (suggestion.rename.kind, suggestion.rename.old) in {
        ("strip_prefix", "gpt."),
        ("replace_prefix", "gpt."),
    }
    fixed = write_folder(tmp_path / "fixed", model, renamed(state, suggestion.rename.apply))
    assert oracle(fixed, "GPT2LMHeadModel") == CLEAN


def test_no_suggestion_for_unrelated_problems(tmp_path: Path) -> None:
    import torch

    model = build_model("LlamaForCausalLM")
    state = state_dict_of(model)
    state.pop("model.norm.weight")
    state["vision_tower.proj.weight"] = torch.zeros(2, 2)
    _, report = ours(write_folder(tmp_path / "ckpt", model, state), None)
    assert report.missing == ("model.norm.weight",)
    assert report.suggestions == ()


def test_ghost_rows_follow_the_checkpoint_naming(tmp_path: Path) -> None:
    """A BertModel checkpoint saved with the 'bert.' prefix, loaded as BertModel."""
    model = build_model("BertForMaskedLM")
    state = {k: v for k, v in state_dict_of(model).items() if k.startswith("bert.")}
    state.pop("bert.encoder.layer.0.output.dense.weight")
    base = build_model("BertModel")
    folder = write_folder(tmp_path / "ckpt", base, state)
    got, report = ours(folder, "BertModel")
    assert got == oracle(folder, "BertModel")
    assert "encoder.layer.0.output.dense.weight" in report.missing
    ghost = report.ghost_keys["encoder.layer.0.output.dense.weight"]
    assert ghost == "bert.encoder.layer.0.output.dense.weight"
    assert report.status_by_key[ghost] == "missing"
    assert report.status_by_key["bert.encoder.layer.0.output.dense.bias"] == "ok"
    assert report.renamed["bert.encoder.layer.0.output.dense.bias"] == (
        "encoder.layer.0.output.dense.bias"
    )


def test_no_suggestion_from_a_coincidence_of_shapes(tmp_path: Path) -> None:
    """RobertaModel into RobertaForMaskedLM: pooler.dense and lm_head.dense have the same
    shapes, but moving one onto the other is no fix."""
    base = build_model("RobertaModel")
    folder = write_folder(tmp_path / "ckpt", base, state_dict_of(base))
    got, report = ours(folder, "RobertaForMaskedLM")
    assert got == oracle(folder, "RobertaForMaskedLM")
    assert "pooler.dense.weight" in report.unexpected
    assert report.suggestions == ()


@pytest.mark.parametrize(
    ("saved", "loaded"),
    [("RobertaModel", "RobertaForMaskedLM"), ("BartModel", "BartForConditionalGeneration")],
)
def test_ddp_base_checkpoint_into_head_model_needs_one_strip(
    tmp_path: Path, saved: str, loaded: str
) -> None:
    """transformers adds the base-model prefix itself: only 'module.' has to go."""
    base = build_model(saved)
    state = renamed(state_dict_of(base), lambda k: "module." + k)
    folder = write_folder(tmp_path / "ckpt", base, state)
    got, report = ours(folder, loaded)
    assert got == oracle(folder, loaded)
    assert [(s.rename.kind, s.rename.old) for s in report.suggestions] == [
        ("strip_prefix", "module.")
    ]
    fixed = write_folder(tmp_path / "fixed", base, renamed(state, report.renames()[0].apply))
    assert oracle(fixed, loaded) == oracle(
        write_folder(tmp_path / "plain", base, state_dict_of(base)), loaded
    )


def test_config_override_for_a_resized_vocabulary(tmp_path: Path) -> None:
    """Embeddings resized after adding a token: the fix is the config, not the keys."""
    model = build_model("LlamaForCausalLM")
    resized = build_model("LlamaForCausalLM", vocab_size=65)
    folder = write_folder(tmp_path / "ckpt", model, state_dict_of(resized))
    got, report = ours(folder, None)
    assert got == oracle(folder, "LlamaForCausalLM")
    [suggestion] = report.suggestions
    assert suggestion.config_override == {"vocab_size": 65}
    assert suggestion.rename is None and "--set vocab_size=65" in suggestion.text

    from ckpt_gui.core.check.config_source import resolve_config
    from ckpt_gui.core.check.matching import compare
    from ckpt_gui.core.targets import open_target

    checkpoint = open_target(folder)
    fixed = compare(checkpoint, resolve_config(None, checkpoint, suggestion.config_override))
    assert fixed.clean


def test_no_config_override_when_ambiguous(tmp_path: Path) -> None:
    """hidden_size changes many dimensions at once: no single field is named."""
    model = build_model("LlamaForCausalLM")
    wider = build_model("LlamaForCausalLM", hidden_size=40, num_attention_heads=4)
    folder = write_folder(tmp_path / "ckpt", model, state_dict_of(wider))
    got, report = ours(folder, None)
    assert got == oracle(folder, "LlamaForCausalLM")
    assert report.mismatched and report.suggestions == ()
