"""The cached model description gives the same answers, without importing transformers."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from ckpt_gui.core.check.config_source import resolve_config
from ckpt_gui.core.check.expected import build_expected
from ckpt_gui.core.check.expected_cache import cache_dir, load_expected
from ckpt_gui.core.check.key_matching import make_renamer
from ckpt_gui.core.check.matching import compare
from ckpt_gui.core.targets import open_target
from tests.support.matching_oracle import VARIANTS, build_model, state_dict_of, write_folder

ROOT = Path(__file__).resolve().parents[3]


@pytest.mark.parametrize(
    "architecture",
    ["LlamaForCausalLM", "BertForMaskedLM", "BertModel", "T5ForConditionalGeneration", "ViTModel"],
)
def test_replayed_renaming_equals_transformers(tmp_path: Path, architecture: str) -> None:
    model = build_model(architecture)
    folder = write_folder(tmp_path / "m", model, state_dict_of(model))
    checkpoint = open_target(folder)
    expected = build_expected(resolve_config(architecture, checkpoint))
    assert expected.plain_renamings is not None and expected.conversions
    with_transformers = make_renamer(dataclasses.replace(expected, plain_renamings=None))
    replayed = make_renamer(expected)
    keys = set(state_dict_of(model))
    for variant in VARIANTS.values():
        keys |= set(variant(state_dict_of(model)) or {})
    keys |= {k.replace(".weight", ".weight_g") for k in list(keys)}
    keys |= {k.split(".", 1)[1] for k in list(keys) if "." in k}
    keys |= {"bert." + k for k in list(keys)} | {"model." + k for k in list(keys)}
    assert len(keys) > 100
    for key in sorted(keys):
        assert replayed(key) == with_transformers(key), key


def test_cached_description_round_trips(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CKPT_GUI_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("CKPT_GUI_NO_TEMPLATES", "1")  # this is about the cache
    model = build_model("BertForMaskedLM")
    state = VARIANTS["gamma_beta"](VARIANTS["ddp_prefix"](state_dict_of(model)))
    folder = write_folder(tmp_path / "m", model, state)
    checkpoint = open_target(folder)
    config = resolve_config(None, checkpoint)
    fresh = compare(checkpoint, config, use_cache=False)
    assert not list(cache_dir().glob("*.json")) if cache_dir().exists() else True
    first = compare(checkpoint, config)  # builds and writes the cache
    [entry] = list(cache_dir().glob("*.json"))
    second = compare(checkpoint, config)  # reads it
    assert fresh.to_json() == first.to_json() == second.to_json()
    assert not load_expected(config).conversions  # really came from the cache
    # A damaged entry is rebuilt, not trusted.
    entry.write_text("{broken")
    assert compare(checkpoint, config).to_json() == fresh.to_json()
    assert json.loads(entry.read_text())["architecture"] == "BertForMaskedLM"


def test_warm_check_does_not_import_transformers(tmp_path: Path) -> None:
    model = build_model("LlamaForCausalLM")
    folder = write_folder(
        tmp_path / "m", model, {"module." + k: v for k, v in state_dict_of(model).items()}
    )
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "CKPT_GUI_CACHE_DIR": str(tmp_path / "cache"),
        "CKPT_GUI_NO_TEMPLATES": "1",  # this is about the cache (templates: their own test)
    }
    code = (
        "import sys, json, ckpt_gui.cli as c;"
        "code = c.main(['check', sys.argv[1], '--json']);"
        "print('HEAVY', [m for m in ('torch', 'transformers') if m in sys.modules]);"
        "sys.exit(code)"
    )
    runs = [
        subprocess.run(
            [sys.executable, "-c", code, str(folder)], env=env, capture_output=True, text=True
        )
        for _ in range(2)
    ]
    assert [r.returncode for r in runs] == [1, 1], runs[0].stderr
    assert "'transformers'" in runs[0].stdout.splitlines()[-1]  # cold: built the model
    assert runs[1].stdout.splitlines()[-1] == "HEAVY []"  # warm: cache only
    cold, warm = (json.loads(r.stdout[: r.stdout.rindex("HEAVY")]) for r in runs)
    assert cold == warm and cold["suggestions"][0]["rename"]["old"] == "module."


def test_fallback_renamer_without_transformers_api(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """If transformers' renaming API moves, the built-in fallback still covers the
    legacy gamma/beta names and the base-model prefix."""
    from ckpt_gui.core.check.key_matching import match_keys
    from tests.support.matching_oracle import oracle

    base = build_model("BertModel")
    state = VARIANTS["gamma_beta"](state_dict_of(base))
    folder = write_folder(tmp_path / "m", base, state)
    checkpoint = open_target(folder)
    expected = build_expected(resolve_config("BertForMaskedLM", checkpoint))
    fallback = dataclasses.replace(expected, plain_renamings=None)
    monkeypatch.setitem(sys.modules, "transformers.core_model_loading", None)
    with pytest.raises(ImportError):
        import transformers.core_model_loading  # noqa: F401
    match = match_keys({t.name: t.shape for t in checkpoint.tensors}, fallback)
    truth = oracle(folder, "BertForMaskedLM")
    assert sorted(match.missing) == truth["missing"]
    assert sorted(match.unexpected) == truth["unexpected"]
    assert match.sources["encoder.layer.0.output.LayerNorm.gamma"] == (
        "bert.encoder.layer.0.output.LayerNorm.weight"
    )
