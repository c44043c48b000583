"""``inspect --json``'s text: one string, the same JSON as ``to_json``, one tensor per line."""

from __future__ import annotations

import json
from pathlib import Path

from safetensors import safe_open
from safetensors.numpy import save_file

from ckpt_gui.core.formats import open_checkpoint


def test_the_text_is_the_same_json_with_one_row_per_line(tmp_path: Path) -> None:
    import numpy as np

    # Names that look like the row boundary the text is built around.
    names = ['a}, {"name": "b', 'quote"inside', "back\\slash", "plain.weight"]
    path = tmp_path / "tricky.safetensors"
    save_file({n: np.zeros((2, 3), dtype=np.float16) for n in names}, path)
    checkpoint = open_checkpoint(path)
    text = checkpoint.to_json_text()
    assert json.loads(text) == json.loads(json.dumps(checkpoint.to_json()))
    with safe_open(path, "np") as reference:
        expected = {name: reference.get_slice(name).get_shape() for name in reference.keys()}  # noqa: SIM118
    rows = json.loads(text)["tensors"]
    assert {row["name"]: row["shape"] for row in rows} == expected
    row_lines = [line for line in text.splitlines() if line.startswith('  {"name": ')]
    assert len(row_lines) == len(names)


def test_an_empty_listing_is_valid_json(tmp_path: Path) -> None:
    path = tmp_path / "empty.safetensors"
    save_file({}, path)
    assert json.loads(open_checkpoint(path).to_json_text())["tensors"] == []
