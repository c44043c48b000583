"""The tree model and the filter proxy: qtmodeltester, contents, filtering, 100k tensors."""

from __future__ import annotations

import re
import time

import pytest
from PySide6.QtCore import QModelIndex, Qt

from ckpt_gui.core.check.status import KeyStatus
from ckpt_gui.core.formats import open_checkpoint
from ckpt_gui.core.tree.build import build_tree
from ckpt_gui.core.tree.grouping import group_repeated_blocks
from ckpt_gui.qt.models.filter_proxy import TreeFilterProxy, make_matcher, visible_nodes
from ckpt_gui.qt.models.tree_model import (
    CheckpointTreeModel,
    Column,
    FractionRole,
    NodeRole,
    StatusRole,
)
from tests.qt.conftest import synthetic_checkpoint


@pytest.fixture(scope="module")
def llama_root(llama_dir):
    return build_tree(open_checkpoint(llama_dir).tensors)


def test_tree_model_passes_modeltester(qtmodeltester, llama_root) -> None:
    qtmodeltester.check(CheckpointTreeModel(llama_root))


def test_grouped_tree_model_passes_modeltester(qtmodeltester, llama_root) -> None:
    qtmodeltester.check(CheckpointTreeModel(group_repeated_blocks(llama_root)))


def test_empty_model_passes_modeltester(qtmodeltester) -> None:
    qtmodeltester.check(CheckpointTreeModel())


@pytest.mark.parametrize("pattern", ["", "mlp", "zzz-no-match"])
def test_proxy_passes_modeltester(qtmodeltester, llama_root, pattern: str) -> None:
    proxy = TreeFilterProxy()
    proxy.setSourceModel(CheckpointTreeModel(llama_root))
    proxy.set_filter(pattern)
    proxy.sort(Column.SIZE, Qt.SortOrder.DescendingOrder)
    qtmodeltester.check(proxy)


def test_model_shows_tensor_and_module_columns(llama_root) -> None:
    model = CheckpointTreeModel(llama_root)
    node = llama_root.find("model.layers.0.self_attn.q_proj.weight")
    index = model.index_of(node)
    row = [model.data(index.siblingAtColumn(c)) for c in Column]
    assert row == ["weight", "32 × 32", "F32", "1.02K", "4.0 KiB", "model.safetensors"]
    assert model.data(index, NodeRole) is node
    assert model.parent(index).internalPointer() is node.parent
    module = model.index_of(llama_root.find("model.layers"))
    assert model.data(module.siblingAtColumn(Column.PARAMETERS)) != ""
    assert model.data(module.siblingAtColumn(Column.SHAPE)) == ""
    fraction = model.data(module, FractionRole)
    assert fraction == pytest.approx(llama_root.find("model.layers").nbytes / llama_root.nbytes)


def test_row_status_colours_rows_and_propagates_up(llama_root) -> None:
    model = CheckpointTreeModel(llama_root)
    name = "model.layers.1.mlp.up_proj.weight"
    model.set_row_status({name: KeyStatus.MISMATCHED, "lm_head.weight": KeyStatus.OK})
    tensor = model.index_of(llama_root.find(name))
    assert model.data(tensor, StatusRole) == "mismatched"
    assert model.data(tensor, Qt.ItemDataRole.ForegroundRole) is not None
    # The ancestors show the worst status below them.
    assert model.data(model.index_of(llama_root.find("model.layers")), StatusRole) == "mismatched"
    assert model.data(model.index_of(llama_root.find("lm_head")), StatusRole) == "ok"
    assert model.data(model.index_of(llama_root.find("model.norm")), StatusRole) is None


def _proxy_paths(proxy: TreeFilterProxy, parent: QModelIndex | None = None) -> list[str]:
    parent = parent or QModelIndex()
    paths = []
    for row in range(proxy.rowCount(parent)):
        index = proxy.index(row, 0, parent)
        paths.append(proxy.mapToSource(index).internalPointer().path)
        paths.extend(_proxy_paths(proxy, index))
    return paths


@pytest.mark.parametrize(
    ("pattern", "mode", "expected_tensors"),
    [
        (
            "Q_PROJ",
            "contains",
            {"model.layers.0.self_attn.q_proj.weight", "model.layers.1.self_attn.q_proj.weight"},
        ),
        (
            "layers.*.mlp.down_proj.weight",
            "glob",
            {"model.layers.0.mlp.down_proj.weight", "model.layers.1.mlp.down_proj.weight"},
        ),
        (
            "*norm.weight",
            "glob",
            {"model.norm.weight"}
            | {
                f"model.layers.{i}.{n}.weight"
                for i in (0, 1)
                for n in ("input_layernorm", "post_attention_layernorm")
            },
        ),
        (
            r"layers\.1\..*(k|v)_proj",
            "regex",
            {"model.layers.1.self_attn.k_proj.weight", "model.layers.1.self_attn.v_proj.weight"},
        ),
    ],
)
def test_filter_modes(llama_root, pattern: str, mode: str, expected_tensors: set[str]) -> None:
    proxy = TreeFilterProxy()
    proxy.setSourceModel(CheckpointTreeModel(llama_root))
    proxy.set_filter(pattern, mode)
    paths = _proxy_paths(proxy)
    tensors = {p for p in paths if llama_root.find(p).is_tensor}
    assert tensors == expected_tensors
    # Ancestors of matches stay visible so the tree path is readable.
    for tensor in tensors:
        parts = tensor.split(".")
        for depth in range(1, len(parts)):
            assert ".".join(parts[:depth]) in paths


def test_matched_module_shows_its_contents(llama_root) -> None:
    proxy = TreeFilterProxy()
    proxy.setSourceModel(CheckpointTreeModel(llama_root))
    proxy.set_filter("^model\\.norm$", "regex")
    assert _proxy_paths(proxy) == ["model", "model.norm", "model.norm.weight"]


def test_invalid_regex_reports_and_shows_everything(llama_root) -> None:
    proxy = TreeFilterProxy()
    proxy.setSourceModel(CheckpointTreeModel(llama_root))
    proxy.set_filter("layers.(", "regex")
    assert "invalid regular expression" in proxy.error
    assert not proxy.is_filtering
    assert proxy.rowCount() == len(llama_root.children)


def test_node_predicate_combines_with_pattern(llama_root) -> None:
    proxy = TreeFilterProxy()
    proxy.setSourceModel(CheckpointTreeModel(llama_root))
    proxy.set_node_predicate(lambda node: node.tensor is not None and node.tensor.shape == (32,))
    tensors = {p for p in _proxy_paths(proxy) if llama_root.find(p).is_tensor}
    assert tensors and all(llama_root.find(p).tensor.shape == (32,) for p in tensors)
    proxy.set_filter("layers.0", "contains")
    tensors = {p for p in _proxy_paths(proxy) if llama_root.find(p).is_tensor}
    assert tensors == {
        "model.layers.0.input_layernorm.weight",
        "model.layers.0.post_attention_layernorm.weight",
    }


def test_sorting_by_size_and_natural_name_order(llama_root) -> None:
    proxy = TreeFilterProxy()
    proxy.setSourceModel(CheckpointTreeModel(llama_root))
    model_index = proxy.index(1, 0)  # "model" (file order: lm_head first)
    proxy.sort(Column.SIZE, Qt.SortOrder.DescendingOrder)
    top = [proxy.index(r, 0).data() for r in range(proxy.rowCount())]
    assert top == ["model", "lm_head"]
    proxy.sort(Column.NAME, Qt.SortOrder.DescendingOrder)
    model_index = next(
        proxy.index(r, 0) for r in range(proxy.rowCount()) if proxy.index(r, 0).data() == "model"
    )
    layers = next(
        proxy.index(r, 0, model_index)
        for r in range(proxy.rowCount(model_index))
        if proxy.index(r, 0, model_index).data() == "layers"
    )
    assert [proxy.index(r, 0, layers).data() for r in range(proxy.rowCount(layers))] == ["1", "0"]


def test_make_matcher_glob_anchors_at_dots() -> None:
    match = make_matcher("layers.*.mlp", "glob")
    assert match("model.layers.3.mlp")
    assert not match("model.layers.3.mlp.up_proj")
    assert not match("model.xlayers.3.mlp")


def test_hundred_thousand_tensors_build_and_filter(qtbot, qtmodeltester) -> None:
    """No timing assertion (shared machine); the numbers are printed for the report.

    A tree this big sorts and filters on a worker thread: the test waits for it."""
    checkpoint = synthetic_checkpoint(100_000)
    started = time.perf_counter()
    root = build_tree(checkpoint.tensors)
    model = CheckpointTreeModel(root)
    proxy = TreeFilterProxy()
    proxy.setSourceModel(model)
    built = time.perf_counter()
    proxy.set_filter("experts.7.up", "contains")
    qtbot.waitUntil(lambda: not model.busy, timeout=60_000)
    filtered = time.perf_counter()
    shown = proxy.visible_tensor_count
    matched = visible_nodes(root, make_matcher("experts.7.up", "contains"))
    assert matched is not None
    tensors = [n for n in root.walk() if n.is_tensor and id(n) in matched]
    assert len(tensors) == sum(1 for t in checkpoint.tensors if "experts.7.up" in t.name) > 0
    assert shown == len(tensors)
    proxy.set_filter("*.experts.6?.down_proj.weight", "glob")
    qtbot.waitUntil(lambda: not model.busy, timeout=60_000)
    globbed = time.perf_counter()
    assert proxy.visible_tensor_count == sum(
        1 for t in checkpoint.tensors if re.search(r"\.experts\.6.\.down_proj\.weight$", t.name)
    )
    grouped = group_repeated_blocks(root)
    model.set_root(grouped)
    qtbot.waitUntil(lambda: not model.busy, timeout=60_000)
    regrouped = time.perf_counter()
    print(
        f"\n100k tensors: tree+model {built - started:.3f}s, substring filter "
        f"{filtered - built:.3f}s, glob filter {globbed - filtered:.3f}s, "
        f"grouping {regrouped - globbed:.3f}s"
    )
    assert root.tensor_count == 100_000
    assert len(model.root.children) == 1  # the model shows the filter's rows (tree_model)
    proxy.set_filter("")
    qtbot.waitUntil(lambda: not model.busy, timeout=60_000)
    assert model.rowCount() == 1
    assert proxy.rowCount() == 1
