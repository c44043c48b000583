"""``check ADAPTER --config BASE`` and ``export merge-lora`` as a user runs them."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tests.support.cli import assert_one_line_error, run_cli
from tests.support.fake_hub import folder_files
from tests.support.peft_fixtures import peft_fit, peft_merged_state, save_adapter, save_base

OFFLINE = {"HF_HUB_OFFLINE": "1"}


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("lora-cli")
    base = save_base(root / "base")
    adapter = save_adapter(root / "adapter", base, target_modules=["q_proj", "v_proj", "o_proj"])
    wide = save_base(root / "wide", hidden_size=48, intermediate_size=40)
    return {"root": root, "base": base, "adapter": adapter, "wide": wide}


def test_check_fits_exit_0(pair: dict[str, Path]) -> None:
    result = run_cli("check", str(pair["adapter"]), "--config", str(pair["base"]), env=OFFLINE)
    assert result.returncode == 0, result.stderr
    assert "loads cleanly" in result.stdout and "adapter LORA r=4" in result.stdout


def test_check_default_base_is_the_adapters_own(pair: dict[str, Path]) -> None:
    result = run_cli("check", str(pair["adapter"]), "--json", env=OFFLINE)
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["clean"] and data["config"]["source"] == str(pair["base"])
    assert data["adapter"]["r"] == 4


def test_check_other_base_exit_1_lists_mismatches(pair: dict[str, Path]) -> None:
    result = run_cli(
        "check", str(pair["adapter"]), "--config", str(pair["wide"]), "--json", env=OFFLINE
    )
    assert result.returncode == 1, result.stderr
    data = json.loads(result.stdout)
    oracle = peft_fit(pair["wide"], pair["adapter"])
    assert {m["key"] for m in data["mismatched"]} == oracle["mismatched"]
    assert all(data["status_by_key"][k] == "mismatched" for k in oracle["mismatched"])
    text = run_cli("check", str(pair["adapter"]), "--config", str(pair["wide"]), env=OFFLINE)
    assert "shape mismatches (checkpoint -> model):" in text.stdout
    assert "q_proj.lora_A.weight  [4, 32] -> [4, 48]" in text.stdout


def test_check_base_from_hub_repo(pair: dict[str, Path], hub) -> None:
    hub.add_repo("org/lora-base", folder_files(pair["base"]))
    env = {"HF_ENDPOINT": hub.endpoint, "HF_HUB_CACHE": str(pair["root"] / "no-cache")}
    result = run_cli("check", str(pair["adapter"]), "--config", "org/lora-base", env=env)
    assert result.returncode == 0, result.stdout + result.stderr


def test_adapter_repo_on_the_hub_inspects_as_adapter(pair: dict[str, Path], hub) -> None:
    hub.add_repo("org/lora-adapter", folder_files(pair["adapter"]))
    env = {"HF_ENDPOINT": hub.endpoint, "HF_HUB_CACHE": str(pair["root"] / "no-cache")}
    result = run_cli("inspect", "org/lora-adapter", "--json", env=env)
    assert result.returncode == 0, result.stderr
    adapter = json.loads(result.stdout)["adapter"]
    assert adapter["r"] == 4 and sorted(adapter["target_modules"]) == ["o_proj", "q_proj", "v_proj"]
    assert adapter["adapted_module_count"] == 6


def test_merge_lora_cli(pair: dict[str, Path], tmp_path: Path) -> None:
    import torch
    from safetensors.torch import load_file

    out = tmp_path / "merged"
    result = run_cli(
        "export", "merge-lora", str(pair["base"]), str(pair["adapter"]), str(out), "--json"
    )
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["plan"]["kind"] == "merge-lora" and len(data["plan"]["merged_tensors"]) == 6
    ours = load_file(str(out / "model.safetensors"))
    oracle = peft_merged_state(pair["base"], pair["adapter"])
    for name, value in oracle.items():
        torch.testing.assert_close(ours[name], value, rtol=1e-5, atol=1e-6)


def test_merge_lora_dry_run_writes_nothing(pair: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "merged"
    result = run_cli(
        "export", "merge-lora", str(pair["base"]), str(pair["adapter"]), str(out), "--dry-run"
    )
    assert result.returncode == 0, result.stderr
    assert "merge-lora:" in result.stdout and not out.exists()


def test_errors_are_one_line_and_write_nothing(pair: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "merged"
    wrong = run_cli("export", "merge-lora", str(pair["wide"]), str(pair["adapter"]), str(out))
    assert_one_line_error(wrong, "does not fit the base", "the base needs")
    bare = tmp_path / "bare"
    bare.mkdir()
    shutil.copy(pair["adapter"] / "adapter_model.safetensors", bare)
    missing = run_cli("export", "merge-lora", str(pair["base"]), str(bare), str(out))
    assert_one_line_error(missing, "looks like a peft adapter but has no adapter_config.json")
    check_missing = run_cli("check", str(bare), "--config", str(pair["base"]))
    assert_one_line_error(check_missing, "looks like a peft adapter but has no adapter_config")
    odd = tmp_path / "odd"
    shutil.copytree(pair["adapter"], odd)
    (odd / "adapter_config.json").write_text(json.dumps({"peft_type": "PIXIE_DUST"}))
    unknown = run_cli("export", "merge-lora", str(pair["base"]), str(odd), str(out))
    assert_one_line_error(unknown, "unknown PIXIE_DUST adapter")
    unknown_check = run_cli("check", str(odd), "--config", str(pair["base"]))
    assert_one_line_error(unknown_check, "unknown PIXIE_DUST adapter")
    assert not out.exists()
