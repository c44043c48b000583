"""The Memory panel and the tree's quantization facts, in the window as users see them.

The figures shown are those of ``core.memory.estimate_memory`` (checked against
accelerate, transformers and peft in tests/core/memory); here: that the panel shows
them for the whole model and the selection, and follows its controls.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtCore import Qt

from ckpt_gui.core.formats import open_checkpoint
from ckpt_gui.core.formatting import human_bytes
from ckpt_gui.core.memory.estimate import estimate_memory
from ckpt_gui.core.tree.build import build_tree
from ckpt_gui.qt.memory.panel import MemoryPanel
from ckpt_gui.qt.models.tree_model import CheckpointTreeModel, Column
from tests.support.quant_fixtures import write_layout


@pytest.fixture(scope="module")
def gptq_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_layout("gptq", tmp_path_factory.mktemp("qt_mem") / "gptq")


def cell(panel: MemoryPanel, label: str, column: int) -> str:
    for row in range(panel.table.rowCount()):
        item = panel.table.item(row, 0)
        if item is not None and item.text() == label:
            value = panel.table.item(row, column)
            return value.text() if value is not None else ""
    raise AssertionError(f"no row {label!r}")


def test_panel_shows_whole_model_and_selection(qtbot, gptq_dir: Path) -> None:
    checkpoint = open_checkpoint(gptq_dir)
    panel = MemoryPanel()
    qtbot.addWidget(panel)
    panel.set_checkpoint(checkpoint)
    whole = estimate_memory(checkpoint, context=panel.context.value())
    assert cell(panel, "Weights", 1) == f"{human_bytes(whole.weights_bytes)} (stored)"
    assert cell(panel, "Quantized", 1) == "gptq 4-bit group 32"
    assert cell(panel, "Weights", 2) == "—"

    root = build_tree(checkpoint.tensors, checkpoint.quantization)
    layer = root.find("model.layers.1")
    panel.set_node(layer)
    part = estimate_memory(checkpoint, scope="model.layers.1")
    assert cell(panel, "Weights", 2) == f"{human_bytes(part.weights_bytes)} (stored)"
    assert panel.table.horizontalHeaderItem(2).text() == "model.layers.1"

    panel.batch.setValue(4)
    bigger = estimate_memory(checkpoint, context=panel.context.value(), batch=4)
    assert bigger.kv_cache_bytes is not None
    assert cell(panel, "KV cache", 1).startswith(human_bytes(bigger.kv_cache_bytes))
    panel.dtype.setCurrentText("float32")
    assert (
        cell(panel, "Weights", 1)
        == f"{human_bytes(whole.weights_bytes_by_dtype['float32'])} (float32)"
    )


def test_tree_shows_quantized_modules_and_bookkeeping(qtmodeltester, gptq_dir: Path) -> None:
    checkpoint = open_checkpoint(gptq_dir)
    model = CheckpointTreeModel(build_tree(checkpoint.tensors, checkpoint.quantization))
    qtmodeltester.check(model)
    root = model.root
    q_proj = root.find("model.layers.0.self_attn.q_proj")
    scales = root.find("model.layers.0.self_attn.q_proj.scales")
    assert q_proj is not None and scales is not None

    def text(node, column, role=Qt.ItemDataRole.DisplayRole):
        return model.data(model.index_of(node, column), role)

    assert text(q_proj, Column.DTYPE) == "gptq 4b g32"
    assert text(scales, Column.DTYPE) == "F16 · aux"
    assert text(scales, Column.PARAMETERS) == "0"
    assert "bookkeeping" in (text(scales, Column.NAME, Qt.ItemDataRole.ToolTipRole) or "")


def test_window_tab_gets_a_memory_page(qtbot, window, gptq_dir: Path) -> None:
    window.open_targets([str(gptq_dir)])
    qtbot.waitUntil(lambda: window.tabs() and window.is_idle(), timeout=30_000)
    tab = window.current_tab()
    panel = tab.findChild(MemoryPanel)
    assert panel is not None and panel.checkpoint is tab.checkpoint
    node = tab.tree.model.root.find("model.layers.0.mlp")
    tab.tree.select_node(node)
    qtbot.waitUntil(lambda: panel.node is node, timeout=10_000)
    assert panel.table.horizontalHeaderItem(2).text() == "model.layers.0.mlp"
