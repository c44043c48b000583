"""The CLI verbs against the fake Hub, as a user runs them (subprocess, HF_ENDPOINT set)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.fake_hub import FakeHub

REPO_ROOT = Path(__file__).resolve().parents[2]


def run_cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ckpt_gui", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
    )


@pytest.fixture
def cli_env(hub: FakeHub, tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "HUGGING"))}
    env.update(
        PYTHONPATH=str(REPO_ROOT),
        HF_ENDPOINT=hub.endpoint,
        HF_HOME=str(tmp_path / "hf-home"),  # no stored login
        HF_HUB_CACHE=str(tmp_path / "hf-cache"),
        HF_HUB_DISABLE_TELEMETRY="1",
    )
    return env


def test_inspect_json_of_a_repo_id(cli_env: dict[str, str], hub: FakeHub) -> None:
    result = run_cli("inspect", "org/tiny-sharded", "--json", env=cli_env)
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["source"] == "org/tiny-sharded"
    assert data["format"] == "safetensors-sharded"
    assert data["metadata"]["hub"]["commit"] == hub.repos["org/tiny-sharded"].refs["main"]
    assert data["config"]["model_type"] == "llama"
    assert len(data["tensors"]) == 21
    assert all(t["offset"] is not None for t in data["tensors"])


def test_gated_repo_is_one_line_on_stderr(cli_env: dict[str, str]) -> None:
    result = run_cli("inspect", "org/gated", env=cli_env)
    assert result.returncode == 2
    assert result.stdout == ""
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("ckpt-gui: error: org/gated/model.safetensors: gated repo:")
    assert "hf auth login" in line


def test_download_then_offline_inspect_and_library(cli_env: dict[str, str]) -> None:
    downloaded = run_cli("download", "org/tiny", "--json", env=cli_env)
    assert downloaded.returncode == 0, downloaded.stderr
    report = json.loads(downloaded.stdout)
    assert report["files"] == ["config.json", "generation_config.json", "model.safetensors"]
    assert (Path(report["snapshot"]) / "model.safetensors").is_file()
    assert "3 files" in downloaded.stderr

    offline = {**cli_env, "HF_HUB_OFFLINE": "1"}
    inspected = run_cli("inspect", "org/tiny", "--json", env=offline)
    assert inspected.returncode == 0, inspected.stderr
    assert json.loads(inspected.stdout)["metadata"]["hub"]["opened_from"] == "cache"
    missing = run_cli("inspect", "org/tiny-sharded", env=offline)
    assert missing.returncode == 2
    assert "HF_HUB_OFFLINE is set" in missing.stderr

    library = run_cli("library", "--json", env=cli_env)
    assert library.returncode == 0, library.stderr
    (model,) = json.loads(library.stdout)["models"]
    assert model["repo_id"] == "org/tiny"
    assert model["revisions"][0]["refs"] == ["main"]
    assert model["has_weights"] is True
    text = run_cli("library", "--filter", "nothing-matches", env=cli_env)
    assert text.returncode == 0 and "no cached models" in text.stdout


def test_remote_safetensors_inspection_never_imports_torch(cli_env: dict[str, str]) -> None:
    code = (
        "import sys; from ckpt_gui.core.targets import open_target;"
        "c = open_target('org/tiny-sharded'); assert c.tensors;"
        "print(sorted(m for m in ('torch', 'transformers') if m in sys.modules))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], env=cli_env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_check_against_a_hub_config_and_a_hub_checkpoint(
    cli_env: dict[str, str], llama_dir: Path, hub: FakeHub
) -> None:
    """CONFIG and TARGET may both be repo ids; only config.json and headers travel."""
    local = run_cli("check", str(llama_dir), "--config", "org/tiny", "--json", env=cli_env)
    assert local.returncode == 0, local.stderr
    assert json.loads(local.stdout)["missing"] == []
    remote = run_cli(
        "check", "org/tiny-sharded", "--config", "org/tiny@main", "--json", env=cli_env
    )
    assert remote.returncode == 0, remote.stderr
    report = json.loads(remote.stdout)
    assert report["architecture"] == "LlamaForCausalLM"
    assert (report["missing"], report["unexpected"], report["mismatched"]) == ([], [], [])
    gated = run_cli("check", str(llama_dir), "--config", "org/gated", env=cli_env)
    assert gated.returncode == 2 and "gated repo" in gated.stderr


def test_inspect_a_gguf_repo_reads_headers_only(
    cli_env: dict[str, str], hub: FakeHub, gguf_dir: Path
) -> None:
    from ckpt_gui.core.formats import open_checkpoint

    url = f"{hub.endpoint}/org/tiny-gguf/blob/main/tiny-Q4_K.gguf"
    result = run_cli("inspect", url, "--json", env=cli_env)
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    local = open_checkpoint(gguf_dir / "tiny-Q4_K.gguf")
    assert data["format"] == "gguf"
    assert [(t["name"], t["dtype"], tuple(t["shape"])) for t in data["tensors"]] == [
        (t.name, t.dtype, t.shape) for t in local.tensors
    ]
    assert data["config"]["architectures"] == ["LlamaForCausalLM"]
    # The header (one 100 kB range), not the 1.6 MB of quantized blocks.
    assert data["metadata"]["hub"]["bytes_received"] <= 100_000 + 4096
