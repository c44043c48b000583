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


def test_tag_option_on_inspect_scan_diff_and_export(zero2_two_tags_dir: Path, tmp_path: Path) -> None:
    import torch
    from safetensors.torch import load_file

    from tests.support.distributed_fixtures import zero_oracle

    folder = str(zero2_two_tags_dir)
    done = run_cli("inspect", folder, "--json")
    assert done.returncode == 0, done.stderr
    facts = json.loads(done.stdout)["metadata"]["deepspeed"]
    assert (facts["tag"], facts["latest"], facts["tags"]) == (
        "global_step2", "global_step2", ["global_step1", "global_step2"]
    )
    done = run_cli("inspect", folder, "--tag", "global_step1", "--depth", "1")
    assert done.returncode == 0, done.stderr
    assert "tag         global_step1 (latest names global_step2); also global_step2 (--tag)" in done.stdout
    done = run_cli("inspect", folder, "--tag", "global_step1", "--json")
    assert json.loads(done.stdout)["metadata"]["deepspeed"]["tag"] == "global_step1"

    assert run_cli("scan", folder, "--tag", "global_step1").returncode == 0
    same = run_cli("diff", folder, folder, "--tag", "global_step1", "--json")
    assert same.returncode == 0, same.stderr
    other = run_cli("diff", folder, folder, "--tag", "global_step1", "--tag-b", "global_step2", "--json")
    assert other.returncode == 1, other.stderr
    assert json.loads(other.stdout)["different"]

    out = tmp_path / "hf"
    done = run_cli("export", "safetensors", folder, str(out), "--tag", "global_step1")
    assert done.returncode == 0, done.stderr
    oracle = torch.load(zero_oracle(zero2_two_tags_dir, tmp_path / "o.pt", "global_step1"), weights_only=True)
    written = load_file(out / "model.safetensors")
    assert written.keys() == oracle.keys()
    assert all(torch.equal(written[k], oracle[k]) for k in oracle)


def test_tag_errors_are_one_line(zero2_two_tags_dir: Path, dcp_dir: Path, tmp_path: Path) -> None:
    done = run_cli("inspect", str(zero2_two_tags_dir), "--tag", "global_step9")
    assert_one_line_error(done, "checkpoint", "no tag 'global_step9' (have global_step1, global_step2)")
    done = run_cli("export", "safetensors", str(dcp_dir), str(tmp_path / "o"), "--tag", "global_step1")
    assert_one_line_error(done, "--tag chooses a DeepSpeed tag")
    assert not (tmp_path / "o").exists()
