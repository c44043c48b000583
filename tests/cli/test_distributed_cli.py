"""``ckpt-gui inspect`` and ``export safetensors`` on distributed checkpoints, as users run them."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from tests.support.cli import assert_one_line_error, run_cli


def test_inspect_json_shows_groups_and_chunks(dcp_dir: Path) -> None:
    done = run_cli("inspect", str(dcp_dir), "--json")
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    assert data["format"] == "dcp"
    assert data["metadata"]["weight_set"] == "model"
    assert data["metadata"]["chunks"]["model.norm.weight"]["count"] == 2
    assert {t["name"] for t in data["tensors"]} >= {"model.embed_tokens.weight", "lm_head.weight"}


def test_export_safetensors_with_config_loads(dcp_dir: Path, tmp_path: Path) -> None:
    from transformers import AutoModelForCausalLM

    out = tmp_path / "hf"
    config = dcp_dir.parent / "checkpoint-config" / "config.json"
    done = run_cli("export", "safetensors", str(dcp_dir), str(out), "--config", str(config), "--json")
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)["result"]
    assert "config.json" in result["files"]
    _, info = AutoModelForCausalLM.from_pretrained(out, output_loading_info=True)
    assert not info["missing_keys"] and not info["unexpected_keys"]


def test_missing_rank_file_is_one_line_and_writes_nothing(dcp_dir: Path, tmp_path: Path) -> None:
    copy = tmp_path / "copy"
    shutil.copytree(dcp_dir, copy)
    (copy / "__0_0.distcp").rename(copy / "__5_0.distcp")
    out = tmp_path / "out"
    done = run_cli("export", "safetensors", str(copy), str(out))
    assert_one_line_error(done, "__0_0.distcp", "missing")
    assert not out.exists()


def test_zero2_module_weights_by_key(zero2_dir: Path) -> None:
    done = run_cli("inspect", str(zero2_dir), "--json", "--key", "module")
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    assert data["format"] == "deepspeed-zero2"
    assert data["metadata"]["weight_set"] == "module"
    assert {t["dtype"] for t in data["tensors"]} == {"BF16"}
    sets = data["metadata"]["weight_sets"]
    assert [s["key"] for s in sets] == ["fp32", "module"]
    # Every set is counted (the tab's weight-set selector shows them all).
    assert [s["tensors"] for s in sets] == [len(data["tensors"])] * 2
    assert sets[1]["parameters"] == data["total_parameters"] == sets[0]["parameters"]


def test_a_step_folder_opens_its_own_tag(zero3_dir: Path) -> None:
    done = run_cli("inspect", str(zero3_dir / "global_step1"), "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["metadata"]["deepspeed"]["tag"] == "global_step1"
