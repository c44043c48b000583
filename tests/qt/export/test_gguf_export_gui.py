"""A GGUF tab in the GUI: both names in the tree, and its one export (safetensors from GGUF)."""

from __future__ import annotations

from pathlib import Path

import torch
from safetensors.torch import load_file

from ckpt_gui.qt.export.job_queue import JobState
from ckpt_gui.qt.models.tree_model import Column
from tests.support.gguf_fixtures import oracle_state_dict
from tests.support.qt_export import plan_into, start_and_finish


def loaded_tab(qtbot, window, target: Path):
    tab = window.open_targets([str(target)])[0]
    qtbot.waitUntil(lambda: tab.checkpoint is not None or tab.error is not None, timeout=60_000)
    assert tab.checkpoint is not None, tab.error
    return tab


def _tensor_index(model, path: str):
    node = next(n for n in model.root.walk() if n.path == path)
    return model.index_of(node, Column.FILE)


def test_tree_shows_the_gguf_name_beside_the_hf_name(qtbot, window, gguf_dir):
    tab = loaded_tab(qtbot, window, gguf_dir / "tiny-Q8_0.gguf")
    model = tab.tree.model
    index = _tensor_index(model, "model.layers.0.self_attn.q_proj.weight")
    assert index.data() == "blk.0.attn_q.weight  (tiny-Q8_0.gguf)"
    name_index = index.siblingAtColumn(Column.NAME)
    from PySide6.QtCore import Qt

    tooltip = name_index.data(Qt.ItemDataRole.ToolTipRole)
    assert "model.layers.0.self_attn.q_proj.weight" in tooltip
    assert "GGUF name: blk.0.attn_q.weight" in tooltip
    # The details panel names it too.
    from PySide6.QtWidgets import QFormLayout

    tab.details.show_node(model.node(index))
    form = tab.details.facts
    rows = {
        form.itemAt(i, QFormLayout.ItemRole.LabelRole).widget().text(): form.itemAt(
            i, QFormLayout.ItemRole.FieldRole
        )
        .widget()
        .text()
        for i in range(form.rowCount())
        if form.itemAt(i, QFormLayout.ItemRole.LabelRole) is not None
    }
    assert any("GGUF name" in label for label in rows), rows
    assert "blk.0.attn_q.weight" in rows[next(k for k in rows if "GGUF name" in k)]


def test_tab_menu_offers_only_the_gguf_conversion(qtbot, window, features, gguf_dir):
    from PySide6.QtWidgets import QMenu

    tab = loaded_tab(qtbot, window, gguf_dir / "tiny-Q8_0.gguf")
    menu = QMenu(window)
    features.exports.add_tab_entries(menu, tab)
    texts = [a.text() for a in menu.actions()]
    assert texts == ["Safetensors from GGUF (dequantized)…"]
    assert "Safetensors from GGUF (dequantized)…" in [
        a.text() for a in window.menu("&Export").actions()
    ]


def test_dialog_converts_and_equals_transformers(qtbot, window, features, gguf_dir, tmp_path):
    tab = loaded_tab(qtbot, window, gguf_dir / "tiny-Q8_0.gguf")
    # Asked for the plain safetensors export, a GGUF tab gets the GGUF one.
    dialog = features.exports.open_dialog("safetensors", tab=tab)
    assert dialog.kind == "gguf-safetensors"
    assert dialog.output_edit.text().endswith("tiny-Q8_0-safetensors")
    assert [dialog.dtype_box.itemData(i) for i in range(dialog.dtype_box.count())] == [
        "F32",
        "BF16",
        "F16",
    ]
    dialog.dtype_box.setCurrentIndex(dialog.dtype_box.findData("BF16"))
    out = tmp_path / "out"
    plan_into(qtbot, dialog, out)
    assert dialog.plan.kind == "gguf-safetensors"
    job = start_and_finish(qtbot, features, dialog)
    assert job.state is JobState.DONE, job.error
    ours = load_file(out / "model.safetensors")
    oracle = oracle_state_dict(gguf_dir, "tiny-Q8_0.gguf", dtype=torch.bfloat16)
    assert set(ours) == set(oracle)
    assert all(torch.equal(ours[k], v) for k, v in oracle.items())
