"""``ckpt-gui check`` as a user runs it: exit codes, JSON fields, one-line errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

from tests.support.matching_oracle import build_model, state_dict_of, write_folder  # noqa: E402


def check(*args: str | Path) -> subprocess.CompletedProcess[str]:
    # Offline: a repo id as CONFIG must never reach the network from a test.
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "HF_HUB_OFFLINE": "1",
        "HF_HUB_CACHE": str(ROOT / ".no-hf-cache"),
    }
    return subprocess.run(
        [sys.executable, "-m", "ckpt_gui", "check", *map(str, args)],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.fixture(scope="module")
def folders(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("cli")
    model = build_model("LlamaForCausalLM")
    state = state_dict_of(model)
    broken = {"module." + k: v for k, v in state.items()}
    return {
        "clean": write_folder(root / "clean", model, state),
        "ddp": write_folder(root / "ddp", model, broken),
    }


def test_clean_checkpoint_exits_0(folders: dict[str, Path]) -> None:
    result = check(folders["clean"], "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["architecture"] == "LlamaForCausalLM"
    assert report["missing"] == report["unexpected"] == report["mismatched"] == []
    assert report["clean"] is True


def test_findings_exit_1_with_all_fields(folders: dict[str, Path]) -> None:
    result = check(folders["ddp"], "--config", folders["clean"] / "config.json", "--json")
    assert result.returncode == 1, result.stderr
    report = json.loads(result.stdout)
    for field in (
        "architecture",
        "missing",
        "unexpected",
        "mismatched",
        "dtype_differences",
        "suggestions",
    ):
        assert field in report
    assert "model.norm.weight" in report["missing"]
    assert "module.model.norm.weight" in report["unexpected"]
    [suggestion] = report["suggestions"]
    assert suggestion["rename"]["kind"] == "strip_prefix"
    assert suggestion["rename"]["old"] == "module."
    assert "DDP" in suggestion["text"]


def test_set_override_gives_mismatches(folders: dict[str, Path]) -> None:
    result = check(folders["clean"], "--set", "vocab_size=80", "--json")
    assert result.returncode == 1
    mismatched = {m["key"]: m for m in json.loads(result.stdout)["mismatched"]}
    assert mismatched["lm_head.weight"]["checkpoint_shape"] == [64, 32]
    assert mismatched["lm_head.weight"]["model_shape"] == [80, 32]


def test_text_output(folders: dict[str, Path]) -> None:
    """In-process (the subprocess runs above already cover the entry point)."""
    from ckpt_gui.commands.check_cmd import render_text
    from ckpt_gui.core.check.config_source import resolve_config
    from ckpt_gui.core.check.matching import compare
    from ckpt_gui.core.targets import open_target

    checkpoint = open_target(folders["ddp"])
    text = render_text(compare(checkpoint, resolve_config(folders["clean"], checkpoint)))
    assert "does NOT load cleanly" in text
    assert "strip the prefix 'module.'" in text
    assert "model.layers.0.mlp.up_proj.weight" in text


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--config", "NotAnArchitecture"], "not a model architecture"),
        (
            ["--config", "org/repo"],
            "org/repo:config.json: HF_HUB_OFFLINE is set, and it is not in the local cache",
        ),
        (["--set", "novalue"], "key=value"),
    ],
)
def test_errors_exit_2_with_one_line(
    folders: dict[str, Path], args: list[str], message: str
) -> None:
    result = check(folders["clean"], *args)
    assert result.returncode == 2
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("ckpt-gui: error: ")
    assert message in lines[0]


def test_missing_target_exits_2(tmp_path: Path) -> None:
    result = check(tmp_path / "nope", "--config", "LlamaForCausalLM")
    assert result.returncode == 2
    assert "no such file or folder" in result.stderr
