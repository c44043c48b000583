"""``ckpt-gui export ...`` as a user runs it: exit codes, JSON, errors on one line."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[2]


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run(
        [sys.executable, "-m", "ckpt_gui", "export", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )


def test_convert_json_and_quiet_stderr(tmp_path: Path, llama_sharded_dir: Path) -> None:
    out = tmp_path / "out"
    done = cli(
        "convert",
        str(llama_sharded_dir),
        str(out),
        "--dtype",
        "bf16",
        "--max-shard-size",
        "30KB",
        "--json",
    )
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""  # no progress bar when stderr is not a terminal
    report = json.loads(done.stdout)
    assert report["result"]["overflow_values"] == 0
    assert report["plan"]["max_shard_size"] == 30_000
    assert set(report["result"]["files"]) >= {"config.json", "model.safetensors.index.json"}


def test_dry_run_writes_nothing(tmp_path: Path, llama_dir: Path) -> None:
    done = cli(
        "reshard", str(llama_dir), str(tmp_path / "out"), "--max-shard-size", "20KB", "--dry-run"
    )
    assert done.returncode == 0, done.stderr
    assert "model-00001-of-" in done.stdout
    assert list(tmp_path.iterdir()) == []


def test_overflow_exits_1_and_errors_exit_2(tmp_path: Path) -> None:
    from safetensors.torch import save_file

    source = tmp_path / "src.safetensors"
    save_file({"w": torch.tensor([1.0, 1e6])}, source)
    done = cli("convert", str(source), str(tmp_path / "half"), "--dtype", "fp16")
    assert done.returncode == 1, done.stderr
    assert "overflowed" in done.stdout
    again = cli("convert", str(source), str(tmp_path / "half"), "--dtype", "fp16")
    assert again.returncode == 2
    assert (
        again.stderr.strip()
        == f"ckpt-gui: error: {tmp_path / 'half'}: already exists (pass --overwrite to replace it)"
    )
    refused = cli(
        "convert",
        str(source),
        str(tmp_path / "strict"),
        "--dtype",
        "fp16",
        "--on-overflow",
        "error",
    )
    assert refused.returncode == 2 and "exceed the range of F16" in refused.stderr
    assert not (tmp_path / "strict").exists()


def test_safetensors_and_renames(tmp_path: Path, llama_bin_dir: Path, llama_state_dict) -> None:
    from safetensors.torch import load_file

    out = tmp_path / "out"
    done = cli(
        "safetensors",
        str(llama_bin_dir),
        str(out),
        "--strip-prefix",
        "model",
        "--add-prefix",
        "base",
        "--rename",
        r"\.weight$=.w",
    )
    assert done.returncode == 0, done.stderr
    written = load_file(out / "model.safetensors")
    assert torch.equal(
        written["base.embed_tokens.w"], llama_state_dict["model.embed_tokens.weight"]
    )
    assert "base.lm_head.w" in written
    assert (out / "config.json").is_file()


def test_random_init_cli(tmp_path: Path, llama_dir: Path) -> None:
    out = tmp_path / "out"
    done = cli(
        "random-init", str(llama_dir / "config.json"), str(out), "--dtype", "fp16", "--seed", "3"
    )
    assert done.returncode == 0, done.stderr
    assert (out / "model.safetensors").is_file() and (out / "config.json").is_file()
    bad = cli("random-init", str(tmp_path / "missing.json"), str(tmp_path / "x"))
    assert bad.returncode == 2 and "no such file" in bad.stderr


def test_a_command_line_run_ends_through_normal_interpreter_exit(
    tmp_path: Path, llama_dir: Path
) -> None:
    """``sys.exit(main())`` with the real argv: atexit handlers run (os._exit would skip
    them) and the exit code is the verb's."""
    script = (
        "import atexit, sys\n"
        "atexit.register(lambda: print('atexit ran', file=sys.stderr))\n"
        "from ckpt_gui.cli import main\n"
        f"sys.argv = ['ckpt-gui', 'export', 'convert', {str(llama_dir)!r}, "
        f"{str(tmp_path / 'out')!r}, '--dtype', 'bf16', '--json']\n"
        "sys.exit(main())\n"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=300
    )
    assert done.returncode == 0, done.stderr
    assert done.stderr == "atexit ran\n"
    assert json.loads(done.stdout)["result"]["files"]
    # Committed before the interpreter went down.
    from safetensors.torch import load_file

    assert (
        load_file(tmp_path / "out" / "model.safetensors").keys()
        == load_file(llama_dir / "model.safetensors").keys()
    )
