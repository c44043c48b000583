"""The article's workflow on a whole-model pickle, from the command line, checked by transformers.

``torch.save({'model': model})`` of a transformers model: inspect it, check it
without --config (its embedded config), export it to safetensors with a
config.json that ``from_pretrained`` loads cleanly, and build fresh weights
from its config (random-init), never running the pickle.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.support import pickle_fixtures as fx
from tests.support.cli import assert_one_line_error, run_cli


@pytest.fixture(scope="module")
def whole(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    folder = tmp_path_factory.mktemp("whole")
    return fx.whole_model(folder)


def test_inspect_json_lists_weight_sets_classes_and_contents(whole) -> None:  # type: ignore[no-untyped-def]
    path, model, oracle = whole
    result = run_cli("inspect", str(path), "--json")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert [t["name"] for t in data["tensors"]] == list(oracle)
    assert data["metadata"]["weight_sets"][0]["key"] == "model"
    assert data["metadata"]["weight_sets"][0]["class"].endswith("BertForSequenceClassification")
    assert data["metadata"]["pickle_contents"]["epoch"] == 4
    assert data["config"]["model_type"] == "bert"
    assert data["config"]["hidden_size"] == model.config.hidden_size
    assert {g["group"] for g in data["pickle_globals"]} == {"class", "data"}


def test_inspect_text_shows_module_classes(whole) -> None:  # type: ignore[no-untyped-def]
    path, _, _ = whole
    result = run_cli("inspect", str(path), "--depth", "3")
    assert result.returncode == 0, result.stderr
    assert "weight set  model" in result.stdout
    assert "(BertSelfAttention)" not in result.stdout  # deeper than 3
    assert "(BertModel)" in result.stdout and "(BertEncoder)" in result.stdout


def test_key_picks_a_weight_set(tmp_path: Path) -> None:
    import torch

    path = tmp_path / "two.pt"
    model, ema = torch.nn.Linear(3, 2), torch.nn.Linear(3, 4)
    torch.save({"model": model, "ema": ema}, path)
    default = json.loads(run_cli("inspect", str(path), "--json").stdout)
    assert default["tensors"][0]["shape"] == [2, 3]
    chosen = run_cli("inspect", str(path), "--json", "--key", "ema")
    assert json.loads(chosen.stdout)["tensors"][0]["shape"] == [4, 3]
    assert_one_line_error(run_cli("inspect", str(path), "--key", "opt"), "no weight set at key")


def test_check_without_config_uses_the_embedded_one(whole) -> None:  # type: ignore[no-untyped-def]
    path, _, _ = whole
    result = run_cli("check", str(path), "--json")
    data = json.loads(result.stdout)
    assert data["architecture"] == "BertForSequenceClassification", result.stderr
    assert not data["missing"] and not data["unexpected"] and not data["mismatched"]


def test_export_writes_config_json_that_from_pretrained_loads(whole, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    import torch
    from transformers import AutoModelForSequenceClassification

    path, _, oracle = whole
    out = tmp_path / "out"
    result = run_cli("export", "safetensors", str(path), str(out))
    assert result.returncode == 0, result.stderr
    assert (out / "config.json").is_file()
    loaded, info = AutoModelForSequenceClassification.from_pretrained(out, output_loading_info=True)
    assert not info["missing_keys"] and not info["unexpected_keys"]
    assert not info["mismatched_keys"]
    state = loaded.state_dict()
    assert all(torch.equal(state[k], v) for k, v in oracle.items())


def test_export_convert_to_bf16_keeps_the_config(whole, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from transformers import AutoConfig

    path, _, _ = whole
    out = tmp_path / "bf16"
    assert run_cli("export", "convert", str(path), str(out), "--dtype", "bf16").returncode == 0
    assert AutoConfig.from_pretrained(out).dtype in ("bfloat16", __import__("torch").bfloat16)


def test_random_init_from_the_pickle(whole, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from transformers import AutoModelForSequenceClassification

    path, _, oracle = whole
    out = tmp_path / "fresh"
    result = run_cli("export", "random-init", str(path), str(out))
    assert result.returncode == 0, result.stderr
    fresh, info = AutoModelForSequenceClassification.from_pretrained(out, output_loading_info=True)
    assert not info["missing_keys"] and not info["unexpected_keys"]
    assert {k: tuple(v.shape) for k, v in fresh.state_dict().items()} == {
        k: tuple(v.shape) for k, v in oracle.items()
    }


def test_pickle_risk_json_groups(whole) -> None:  # type: ignore[no-untyped-def]
    path, _, _ = whole
    result = run_cli("pickle-risk", str(path), "--json")
    assert result.returncode == 1  # the weights-only loader refuses the classes
    data = json.loads(result.stdout)
    assert data["dangerous"] is False and data["groups"]["code"] == []
    assert data["groups"]["class"] and "not dangerous" in data["verdict"]
