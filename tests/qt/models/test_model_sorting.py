"""Sorting and filtering inside the tree model (no per-row Python in a proxy)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
from PySide6.QtCore import QModelIndex, QPersistentModelIndex, Qt
from safetensors import safe_open
from safetensors.numpy import save_file

from ckpt_gui.core.formats import open_checkpoint
from ckpt_gui.core.tree.build import build_tree
from ckpt_gui.qt.models.filter_proxy import TreeFilterProxy
from ckpt_gui.qt.models.tree_model import CheckpointTreeModel, Column


def flat_file(tmp_path: Path) -> Path:
    rng = np.random.default_rng(0)
    tensors = {f"w{i}": np.zeros(int(rng.integers(1, 50)), dtype=np.float16) for i in range(40)}
    path = tmp_path / "flat.safetensors"
    save_file(tensors, path)
    return path


def shown_names(model, parent: QModelIndex | None = None) -> list[str]:
    parent = parent or QModelIndex()
    return [model.index(r, 0, parent).data() for r in range(model.rowCount(parent))]


def test_sorting_follows_the_files_own_sizes(qtmodeltester, tmp_path: Path) -> None:
    path = flat_file(tmp_path)
    with safe_open(path, "np") as reference:
        sizes = {k: math.prod(reference.get_slice(k).get_shape()) for k in reference.keys()}  # noqa: SIM118
    model = CheckpointTreeModel(build_tree(open_checkpoint(path).tensors))
    proxy = TreeFilterProxy()
    proxy.setSourceModel(model)
    proxy.sort(Column.PARAMETERS, Qt.SortOrder.DescendingOrder)
    names = shown_names(proxy)
    assert [sizes[n] for n in names] == sorted(sizes.values(), reverse=True)
    # Names that are not ModuleList indices sort as text.
    proxy.sort(Column.NAME, Qt.SortOrder.AscendingOrder)
    assert shown_names(proxy) == sorted(sizes)
    proxy.set_filter("w1", "contains")
    assert shown_names(proxy) == sorted(n for n in sizes if "w1" in n)
    qtmodeltester.check(model)
    qtmodeltester.check(proxy)
    proxy.sort(-1)
    proxy.set_filter("")
    assert shown_names(proxy) == list(sizes)  # file order again


def test_persistent_indexes_follow_their_rows_through_sort_and_filter(tmp_path: Path) -> None:
    model = CheckpointTreeModel(build_tree(open_checkpoint(flat_file(tmp_path)).tensors))
    node = model.root.find("w7")
    assert node is not None
    kept = QPersistentModelIndex(model.index_of(node, Column.SIZE))
    model.sort(Column.NAME, Qt.SortOrder.DescendingOrder)
    assert kept.internalPointer() is node and kept.column() == Column.SIZE
    assert model.index(kept.row(), 0).data() == "w7"
    model.set_visible({id(node)})
    assert kept.row() == 0 and model.rowCount() == 1
    model.set_visible({id(model.root.find("w8"))})
    assert not kept.isValid()  # filtered out
