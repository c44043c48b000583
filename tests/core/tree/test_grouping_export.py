from __future__ import annotations

import csv
import io
import json

import pytest

from ckpt_gui.core.model import TensorInfo
from ckpt_gui.core.tree.build import build_tree
from ckpt_gui.core.tree.grouping import GroupNode, group_repeated_blocks
from ckpt_gui.core.tree.text_export import export_tree


def tensor(name: str, shape: tuple[int, ...], dtype: str = "F32") -> TensorInfo:
    count = 1
    for d in shape:
        count *= d
    return TensorInfo(name, dtype, shape, count * 4, "model.safetensors", 0)


def layered(n: int, odd_layer: int | None = None) -> list[TensorInfo]:
    tensors = [tensor("embed.weight", (10, 4))]
    for i in range(n):
        width = 8 if i == odd_layer else 4
        tensors += [tensor(f"layers.{i}.mlp.weight", (width, 4)), tensor(f"layers.{i}.norm", (4,))]
    return tensors


def test_identical_blocks_collapse_with_summed_totals() -> None:
    root = build_tree(layered(32))
    grouped = group_repeated_blocks(root)
    layers = grouped.find("layers")
    assert layers is not None
    assert [c.name for c in layers.children] == ["{0..31}"]
    group = layers.children[0]
    assert isinstance(group, GroupNode) and len(group.members) == 32
    assert group.parameters == root.find("layers").parameters  # type: ignore[union-attr]
    assert group.tensor_count == 64
    assert [c.path for c in group.children] == ["layers.0.mlp", "layers.0.norm"]
    assert group.children[0].parent is group and group.children[1].row == 1
    assert grouped.parameters == root.parameters
    # The original tree is untouched.
    assert len(root.find("layers").children) == 32  # type: ignore[union-attr]


def test_a_different_block_splits_the_runs() -> None:
    grouped = group_repeated_blocks(build_tree(layered(6, odd_layer=3)))
    assert [c.name for c in grouped.find("layers").children] == ["{0..2}", "3", "{4..5}"]  # type: ignore[union-attr]


def test_export_formats_agree() -> None:
    root = build_tree(layered(2))
    rows = json.loads(export_tree(root.walk(), "json"))
    assert rows[0] == {
        "name": "embed",
        "kind": "module",
        "shape": None,
        "dtype": None,
        "parameters": 40,
        "bytes": 160,
        "file": None,
    }
    tensors = [r for r in rows if r["kind"] == "tensor"]
    assert [r["name"] for r in tensors][:2] == ["embed.weight", "layers.0.mlp.weight"]
    table = list(csv.DictReader(io.StringIO(export_tree(root.walk(), "csv"))))
    assert [r["name"] for r in table] == [r["name"] for r in rows]
    assert table[1]["shape"] == "10x4"
    markdown = export_tree(root.walk(), "md").splitlines()
    assert len(markdown) == len(rows) + 2 and markdown[2].startswith("| embed | module |")


def test_tree_text_is_written_whole_or_not_at_all(tmp_path, monkeypatch) -> None:
    import os

    from ckpt_gui.core.tree.text_export import write_text_atomically

    target = tmp_path / "tree.csv"
    target.write_text("old contents")

    def refuse(*_args: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", refuse)
    with pytest.raises(OSError):
        write_text_atomically(target, "new contents")
    assert target.read_text() == "old contents"
    assert [p.name for p in tmp_path.iterdir()] == ["tree.csv"]  # no temporary left
    monkeypatch.undo()
    write_text_atomically(target, "new contents")
    assert target.read_text() == "new contents"
    assert [p.name for p in tmp_path.iterdir()] == ["tree.csv"]
