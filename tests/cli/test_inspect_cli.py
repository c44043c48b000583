from __future__ import annotations

import json
import os
from pathlib import Path

from ckpt_gui.core.formats import open_checkpoint
from tests.support.cli import assert_one_line_error, run_cli


def test_inspect_json_contract(llama_sharded_dir: Path) -> None:
    result = run_cli("inspect", str(llama_sharded_dir), "--json")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    checkpoint = open_checkpoint(llama_sharded_dir)
    for key in (
        "format",
        "files",
        "total_parameters",
        "total_bytes",
        "parameters_by_dtype",
        "tensors",
        "metadata",
        "warnings",
    ):
        assert key in data
    assert data["format"] == "safetensors-sharded"
    assert data["total_parameters"] == checkpoint.total_parameters
    assert data["total_bytes"] == checkpoint.total_bytes
    assert {f["path"] for f in data["files"]} == {f.path for f in checkpoint.files}
    assert all(set(f) >= {"path", "size"} for f in data["files"])
    first = data["tensors"][0]
    assert set(first) >= {"name", "dtype", "shape", "parameters", "nbytes", "file"}
    by_name = {t["name"]: t for t in data["tensors"]}
    for tensor in checkpoint.tensors:
        assert by_name[tensor.name]["shape"] == list(tensor.shape)
        assert by_name[tensor.name]["file"] == tensor.file


def test_inspect_text_shows_summary_and_tree(llama_dir: Path) -> None:
    result = run_cli("inspect", str(llama_dir))
    assert result.returncode == 0, result.stderr
    assert "format      safetensors" in result.stdout
    assert "model/" in result.stdout
    assert "q_proj/" in result.stdout
    assert "weight  F32 [32, 32]" in result.stdout
    shallow = run_cli("inspect", str(llama_dir), "--depth", "1").stdout
    assert "model/" in shallow and "layers/" not in shallow


def test_inspect_errors_are_one_line(tmp_path: Path) -> None:
    assert_one_line_error(
        run_cli("inspect", str(tmp_path / "nope.safetensors")),
        "nope.safetensors: no such file or folder",
    )
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"\x08\x00\x00\x00\x00\x00\x00\x00{broken}")
    assert_one_line_error(
        run_cli("inspect", str(bad), "--json"), "bad.safetensors: header is not valid JSON"
    )


def test_inspect_refuses_hostile_pickle_without_running_it(tmp_path: Path) -> None:
    import torch

    marker = tmp_path / "PWNED"

    class Evil:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    torch.save({"w": Evil()}, tmp_path / "evil.pt")
    result = run_cli("inspect", str(tmp_path / "evil.pt"))
    assert_one_line_error(result, "evil.pt: refuses to load safely: uses posix.system")
    assert not marker.exists()


def test_inspect_on_a_pipe_does_not_hang(tmp_path: Path) -> None:
    fifo = tmp_path / "weights.safetensors"
    os.mkfifo(fifo)
    assert_one_line_error(run_cli("inspect", str(fifo), timeout=30), "not a regular file (a pipe)")


def test_unknown_verb_option_is_a_usage_error(llama_dir: Path) -> None:
    result = run_cli("inspect", str(llama_dir), "--no-such-option")
    assert result.returncode == 2
    assert result.stdout == ""
