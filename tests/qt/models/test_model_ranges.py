"""Long levels shown in range rows, and sorting/filtering prepared on a worker thread.

The file is written by safetensors at test time (6,500 tiny tensors, so the root level
is longer than BUCKET_LIMIT); the expected orders come from safetensors' own reading.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import QModelIndex, QPersistentModelIndex, Qt
from safetensors import safe_open
from safetensors.numpy import save_file

from ckpt_gui.core.formats import open_checkpoint
from ckpt_gui.core.tree.build import build_tree
from ckpt_gui.qt.inspect.tree_panel import TreePanel
from ckpt_gui.qt.models import tree_prepare
from ckpt_gui.qt.models.filter_proxy import TreeFilterProxy
from ckpt_gui.qt.models.tree_model import CheckpointTreeModel, Column
from ckpt_gui.qt.models.tree_rows import BUCKET_LIMIT, BUCKET_SIZE, RangeNode

COUNT = 6500


@pytest.fixture(scope="module")
def flat_path(tmp_path_factory) -> Path:
    rng = np.random.default_rng(1)
    tensors = {
        f"w{i:05d}": np.zeros(int(rng.integers(1, 40)), dtype=np.float16) for i in range(COUNT)
    }
    path = tmp_path_factory.mktemp("flat") / "flat.safetensors"
    save_file(tensors, path)
    return path


@pytest.fixture(scope="module")
def sizes(flat_path: Path) -> dict[str, int]:
    with safe_open(flat_path, "np") as reference:
        return {k: math.prod(reference.get_slice(k).get_shape()) for k in reference.keys()}  # noqa: SIM118


def loaded(flat_path: Path) -> tuple[CheckpointTreeModel, TreeFilterProxy]:
    model = CheckpointTreeModel(build_tree(open_checkpoint(flat_path).tensors))
    proxy = TreeFilterProxy()
    proxy.setSourceModel(model)
    return model, proxy


def rows(model, parent: QModelIndex | None = None) -> list[QModelIndex]:
    parent = parent or QModelIndex()
    return [model.index(r, 0, parent) for r in range(model.rowCount(parent))]


def flattened(model) -> list[str]:
    """Every tensor name in view order, through the range rows."""
    names: list[str] = []
    for index in rows(model):
        if model.hasChildren(index):
            names.extend(child.data() for child in rows(model, index))
        else:
            names.append(index.data())
    return names


def test_a_long_level_shows_ranges_in_file_order(qtmodeltester, flat_path, sizes) -> None:
    model, proxy = loaded(flat_path)
    tops = rows(proxy)
    assert len(tops) == math.ceil(COUNT / BUCKET_SIZE)
    assert all(isinstance(proxy.mapToSource(i).internalPointer(), RangeNode) for i in tops)
    assert tops[0].data() == "w00000 … w00999"
    assert tops[-1].data() == f"w06000 … w{COUNT - 1:05d}"
    assert flattened(proxy) == list(sizes)  # safetensors' order (sorted names)
    first = proxy.mapToSource(tops[0]).internalPointer()
    params = tops[0].siblingAtColumn(Column.PARAMETERS).data()
    assert first.parameters == sum(sizes[n] for n in list(sizes)[:BUCKET_SIZE])
    assert params == model.data(model.index_of(first, Column.PARAMETERS))
    qtmodeltester.check(model)
    qtmodeltester.check(proxy)


def test_sorting_cuts_ranges_from_the_sorted_order(qtmodeltester, flat_path, sizes) -> None:
    _model, proxy = loaded(flat_path)
    proxy.sort(Column.PARAMETERS, Qt.SortOrder.DescendingOrder)
    assert [sizes[n] for n in flattened(proxy)] == sorted(sizes.values(), reverse=True)
    proxy.sort(Column.NAME, Qt.SortOrder.DescendingOrder)
    assert flattened(proxy) == sorted(sizes, reverse=True)
    qtmodeltester.check(proxy)


def test_filters_keep_semantics_over_ranges(flat_path, sizes) -> None:
    _model, proxy = loaded(flat_path)
    proxy.set_filter("w001", "contains")
    expected = [n for n in sizes if "w001" in n]
    assert len(expected) <= BUCKET_LIMIT
    assert [i.data() for i in rows(proxy)] == expected  # few enough: no ranges
    assert proxy.visible_tensor_count == len(expected)
    proxy.set_filter("w0[0-5]*", "glob")
    expected = [n for n in sizes if n[:3] in {f"w0{d}" for d in "012345"}]
    assert len(expected) > BUCKET_LIMIT
    assert flattened(proxy) == expected
    assert proxy.visible_tensor_count == len(expected)
    proxy.set_filter(r"^w0600[0-4]$", "regex")
    assert [i.data() for i in rows(proxy)] == [f"w0600{d}" for d in range(5)]
    proxy.set_filter("")
    assert not proxy.is_filtering and flattened(proxy) == list(sizes)


def test_persistent_indexes_move_between_ranges(flat_path) -> None:
    model, _proxy = loaded(flat_path)
    node = model.root.find("w00007")
    assert node is not None
    kept = QPersistentModelIndex(model.index_of(node, Column.SIZE))
    assert kept.parent().row() == 0 and kept.row() == 7
    model.sort(Column.NAME, Qt.SortOrder.DescendingOrder)
    position = COUNT - 1 - 7
    assert kept.internalPointer() is node and kept.column() == Column.SIZE
    assert (kept.parent().row(), kept.row()) == divmod(position, BUCKET_SIZE)
    assert model.index(kept.row(), 0, kept.parent()).data() == "w00007"
    model.set_visible({id(node)})
    assert model.rowCount() == 1 and kept.row() == 0 and not kept.parent().isValid()


def test_big_trees_prepare_on_a_worker(qtbot, flat_path, sizes, monkeypatch) -> None:
    monkeypatch.setattr(tree_prepare, "ASYNC_TENSORS", 100)
    model, proxy = loaded(flat_path)
    proxy.set_filter("w00")  # superseded at once: only the last request is shown
    proxy.sort(Column.PARAMETERS, Qt.SortOrder.AscendingOrder)
    assert model.busy
    with qtbot.waitSignal(model.settled, timeout=60_000):
        pass
    qtbot.waitUntil(lambda: not model.busy, timeout=60_000)
    expected = [n for n in sizes if "w00" in n]
    shown = flattened(proxy)
    assert sorted(shown) == expected
    assert [sizes[n] for n in shown] == sorted(sizes[n] for n in expected)
    # Clearing the filter needs only the known order: at once, no worker.
    proxy.set_filter("")
    assert not model.busy
    assert [sizes[n] for n in flattened(proxy)] == sorted(sizes.values())


def test_panel_selects_expands_and_shows_ranges(qtbot, flat_path, monkeypatch) -> None:
    monkeypatch.setattr(tree_prepare, "ASYNC_TENSORS", 100)
    panel = TreePanel(build_tree(open_checkpoint(flat_path).tensors))
    qtbot.addWidget(panel)
    selected: list[object] = []
    panel.node_selected.connect(selected.append)
    panel.view.sortByColumn(Column.NAME, Qt.SortOrder.DescendingOrder)
    node = panel.model.root.find("w00042")
    panel.select_node(node)  # waits for the sort to show
    qtbot.waitUntil(lambda: panel.current_node() is node, timeout=60_000)
    assert selected[-1] is node
    holder = panel.view.currentIndex().parent()
    assert panel.view.isExpanded(holder)  # the range that holds it was opened
    assert holder.data() == "w00499 … w00000"  # the last range of the descending order
    panel.view.setCurrentIndex(holder)
    assert isinstance(selected[-1], RangeNode) and selected[-1].tensor_count == COUNT % BUCKET_SIZE
    panel.filter_edit.setText("w0004")
    panel.apply_filter()
    qtbot.waitUntil(lambda: not panel.busy and panel.count_label.text().startswith("10 of"))
    assert panel.count_label.text() == f"10 of {COUNT:,} tensors"
    assert [i.data() for i in rows(panel.proxy)] == [f"w0004{d}" for d in range(9, -1, -1)]
