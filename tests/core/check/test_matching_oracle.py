"""Our comparison agrees with transformers' own output_loading_info, family by family.

Every case writes a real model folder, asks transformers what from_pretrained reports
for it, and checks that ``compare`` reports exactly the same missing, unexpected and
mismatched keys.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.matching_oracle import (
    FAMILIES,
    VARIANTS,
    build_model,
    oracle,
    ours,
    state_dict_of,
    write_folder,
)

_models: dict[str, object] = {}


def model_of(architecture: str, **overrides: object) -> object:
    key = architecture + repr(sorted(overrides.items()))
    if key not in _models:
        _models[key] = build_model(architecture, **overrides)
    return _models[key]


def agree(folder: Path, architecture: str | None, oracle_architecture: str) -> object:
    expected = oracle(folder, oracle_architecture)
    got, report = ours(folder, architecture)
    assert got == expected, f"ours {got}\ntransformers {expected}"
    # The GUI's view: every checkpoint key has a status, ghosts never hide a real key.
    from ckpt_gui.core.check.matching import STATUSES
    from ckpt_gui.core.targets import open_target

    names = {t.name for t in open_target(folder).tensors}
    assert names <= set(report.status_by_key)
    assert set(report.status_by_key.values()) <= set(STATUSES)
    assert set(report.ghost_keys) == set(report.missing)
    assert not set(report.ghost_keys.values()) & names
    assert (report.counts["unexpected"] > 0) == bool(report.unexpected)
    return report


@pytest.mark.parametrize("variant", sorted(VARIANTS))
@pytest.mark.parametrize("architecture", sorted(FAMILIES))
def test_agrees_with_transformers(tmp_path: Path, architecture: str, variant: str) -> None:
    model = model_of(architecture)
    state = VARIANTS[variant](state_dict_of(model))
    if state is None:
        pytest.skip(f"{architecture} has no keys this variant changes")
    folder = write_folder(tmp_path / "ckpt", model, state)
    report = agree(folder, None, architecture)
    if variant == "clean":
        assert report.clean
    else:
        assert variant == "gamma_beta" or not report.clean


@pytest.mark.parametrize(
    ("saved", "loaded"),
    [
        ("BertModel", "BertForMaskedLM"),
        ("BertForMaskedLM", "BertModel"),
        ("LlamaModel", "LlamaForCausalLM"),
        ("LlamaForCausalLM", "LlamaModel"),
        ("GPT2Model", "GPT2LMHeadModel"),
        ("ViTModel", "ViTForImageClassification"),
        ("ViTForImageClassification", "ViTModel"),
        ("T5Model", "T5ForConditionalGeneration"),
        ("RobertaModel", "RobertaForMaskedLM"),
        ("BartModel", "BartForConditionalGeneration"),
        ("BartForConditionalGeneration", "BartForSequenceClassification"),
    ],
)
def test_base_model_prefix_both_directions(tmp_path: Path, saved: str, loaded: str) -> None:
    model = model_of(saved)
    folder = write_folder(tmp_path / "ckpt", model, state_dict_of(model))
    report = agree(folder, loaded, loaded)
    assert report.architecture == loaded
    # Every checkpoint key has a status and no missing key lands on a real key's name.
    assert set(report.status_by_key) >= {t for t in state_dict_of(model)}
    assert not set(report.ghost_keys.values()) & set(state_dict_of(model))


@pytest.mark.parametrize("architecture", ["LlamaForCausalLM", "GPT2LMHeadModel"])
def test_tied_weights(tmp_path: Path, architecture: str) -> None:
    model = model_of(architecture, tie_word_embeddings=True)
    tied = dict(model.all_tied_weights_keys)
    assert tied, "fixture must tie something"
    full = {k: v.detach().clone().contiguous() for k, v in model.state_dict().items()}
    # Saved without the tied target (as save_pretrained does): nothing missing.
    report = agree(write_folder(tmp_path / "a", model, state_dict_of(model)), None, architecture)
    assert report.clean and set(report.tied) == set(tied)
    # Only the target saved: transformers ties the other way round.
    only_target = {k: v for k, v in full.items() if k not in tied.values()}
    agree(write_folder(tmp_path / "b", model, only_target), None, architecture)
    # Both saved: fine too.
    agree(write_folder(tmp_path / "c", model, full), None, architecture)
    # Neither saved: both missing.
    neither = {k: v for k, v in full.items() if k not in tied and k not in tied.values()}
    report = agree(write_folder(tmp_path / "d", model, neither), None, architecture)
    assert report.missing


def test_untied_config_reports_missing_head(tmp_path: Path) -> None:
    tied_model = model_of("LlamaForCausalLM", tie_word_embeddings=True)
    untied = model_of("LlamaForCausalLM")
    folder = write_folder(tmp_path / "ckpt", untied, state_dict_of(tied_model))
    report = agree(folder, None, "LlamaForCausalLM")
    assert report.missing == ("lm_head.weight",)


def test_t5_all_three_ties(tmp_path: Path) -> None:
    model = model_of("T5ForConditionalGeneration", tie_word_embeddings=True)
    full = {k: v.detach().clone().contiguous() for k, v in model.state_dict().items()}
    # Old T5 checkpoints carry only the encoder copy of the shared embedding.
    only_encoder = {
        k: v
        for k, v in full.items()
        if k not in ("shared.weight", "lm_head.weight", "decoder.embed_tokens.weight")
    }
    agree(write_folder(tmp_path / "ckpt", model, only_encoder), None, "T5ForConditionalGeneration")


def test_ignored_and_non_persistent_buffers(tmp_path: Path) -> None:
    """Old checkpoints with inv_freq / position_ids / GPT-2 attn.bias load without complaint."""
    import torch

    llama = model_of("LlamaForCausalLM")
    state = state_dict_of(llama)
    state["model.layers.0.self_attn.rotary_emb.inv_freq"] = torch.zeros(4)
    report = agree(write_folder(tmp_path / "llama", llama, state), None, "LlamaForCausalLM")
    assert report.clean
    assert report.status_by_key["model.layers.0.self_attn.rotary_emb.inv_freq"] == "ignored"

    bert = model_of("BertForMaskedLM")
    state = state_dict_of(bert)
    state["bert.embeddings.position_ids"] = torch.arange(32)[None]
    report = agree(write_folder(tmp_path / "bert", bert, state), None, "BertForMaskedLM")
    assert report.clean

    gpt2 = model_of("GPT2LMHeadModel")
    state = state_dict_of(gpt2)
    state["transformer.h.0.attn.bias"] = torch.ones(1, 1, 32, 32)
    report = agree(write_folder(tmp_path / "gpt2", gpt2, state), None, "GPT2LMHeadModel")
    assert report.clean and report.ignored_unexpected == ("transformer.h.0.attn.bias",)


def test_other_config_values_cause_mismatches(tmp_path: Path) -> None:
    model = model_of("LlamaForCausalLM")
    folder = write_folder(tmp_path / "ckpt", model, state_dict_of(model))
    bigger = model_of("LlamaForCausalLM", vocab_size=80)
    write_folder(tmp_path / "other", bigger, state_dict_of(bigger))
    # The oracle: the same weights with the other config.json.
    (tmp_path / "pair").mkdir()
    (tmp_path / "pair" / "model.safetensors").write_bytes(
        (folder / "model.safetensors").read_bytes()
    )
    (tmp_path / "pair" / "config.json").write_bytes(
        (tmp_path / "other" / "config.json").read_bytes()
    )
    expected = oracle(tmp_path / "pair", "LlamaForCausalLM")

    from ckpt_gui.core.check.config_source import resolve_config
    from ckpt_gui.core.check.matching import compare
    from ckpt_gui.core.targets import open_target

    checkpoint = open_target(folder)
    report = compare(checkpoint, resolve_config(tmp_path / "other" / "config.json", checkpoint))
    got = sorted((m.key, m.checkpoint_shape, m.model_shape) for m in report.mismatched)
    assert got == expected["mismatched"] and got
    assert {m.key for m in report.mismatched} == {"model.embed_tokens.weight", "lm_head.weight"}
    # --set gives the same answer as another config.json.
    same = compare(checkpoint, resolve_config(None, checkpoint, {"vocab_size": 80}))
    assert same.mismatched == report.mismatched


@pytest.mark.parametrize("variant", ["fused", "legacy", "legacy_dropped_expert", "legacy_ddp"])
def test_moe_weight_converters(tmp_path: Path, variant: str) -> None:
    """Mixtral: legacy per-expert weights are fused on load by transformers' converters;
    shapes are compared after conversion (run on meta tensors), as transformers does."""
    import torch
    from transformers import MixtralConfig, MixtralForCausalLM
    from transformers.core_model_loading import revert_weight_conversion

    config = MixtralConfig(
        vocab_size=64,
        hidden_size=32,
        intermediate_size=48,
        num_hidden_layers=1,
        num_attention_heads=4,
        num_key_value_heads=2,
        num_local_experts=2,
        num_experts_per_tok=1,
        tie_word_embeddings=False,
    )
    torch.manual_seed(0)
    model = MixtralForCausalLM(config)
    fused = {k: v.detach().clone().contiguous() for k, v in model.state_dict().items()}
    legacy = {k: v.contiguous() for k, v in revert_weight_conversion(model, fused).items()}
    assert any(".experts.1.w2." in k for k in legacy)
    state = {
        "fused": fused,
        "legacy": legacy,
        "legacy_dropped_expert": {k: v for k, v in legacy.items() if ".experts.1.w2." not in k},
        "legacy_ddp": {"module." + k: v for k, v in legacy.items()},
    }[variant]
    report = agree(write_folder(tmp_path / "ckpt", model, state), None, "MixtralForCausalLM")
    assert report.clean == (variant in ("fused", "legacy"))
    if variant == "legacy_dropped_expert":
        assert [m.checkpoint_shape for m in report.mismatched] == [(1, 32, 48)]
    if variant == "legacy":
        assert all(status == "ok" for status in report.status_by_key.values())
        assert len(report.status_by_key) == len(legacy)
