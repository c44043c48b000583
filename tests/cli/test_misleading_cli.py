"""``inspect`` says so, in text and in ``--json``, when a checkpoint would mislead."""

from __future__ import annotations

import json
import shutil
import struct
from pathlib import Path

import pytest

from tests.support.cli import assert_one_line_error, run_cli


@pytest.fixture
def leftover_folder(tmp_path: Path, llama_sharded_dir: Path) -> Path:
    folder = tmp_path / "model"
    shutil.copytree(llama_sharded_dir, folder)
    shutil.copy(sorted(folder.glob("model-*.safetensors"))[0], folder / "model.safetensors")
    return folder


def test_a_leftover_shard_is_a_warning_in_text_and_json(leftover_folder: Path) -> None:
    text = run_cli("inspect", str(leftover_folder))
    assert text.returncode == 0, text.stderr
    assert "warning     model.safetensors is beside the index but not in it" in text.stdout
    listing = json.loads(run_cli("inspect", str(leftover_folder), "--json").stdout)
    assert any(w.startswith("model.safetensors is beside the index") for w in listing["warnings"])
    index = json.loads((leftover_folder / "model.safetensors.index.json").read_text())
    assert [t["name"] for t in listing["tensors"]] == list(index["weight_map"])


def _header_file(path: Path, text: str, data_size: int) -> Path:
    raw = text.encode()
    raw += b" " * (-len(raw) % 8)
    path.write_bytes(struct.pack("<Q", len(raw)) + raw + b"\0" * data_size)
    return path


@pytest.mark.parametrize("as_json", [False, True])
def test_a_repeated_name_and_a_sub_byte_misfit_are_one_line_errors(
    tmp_path: Path, as_json: bool
) -> None:
    entry = '{"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}'
    twice = _header_file(tmp_path / "twice.safetensors", f'{{"w": {entry}, "w": {entry}}}', 4)
    misfit = _header_file(
        tmp_path / "fp4.safetensors",
        '{"w": {"dtype": "F4", "shape": [3], "data_offsets": [0, 2]}}',
        2,
    )
    flag = ["--json"] if as_json else []
    assert_one_line_error(
        run_cli("inspect", str(twice), *flag), str(twice), "tensor name 'w' appears twice"
    )
    assert_one_line_error(
        run_cli("inspect", str(misfit), *flag), str(misfit), "F4 [3]", "do not fill whole bytes"
    )
