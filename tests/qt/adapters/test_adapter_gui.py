"""Adapter tabs: facts in the summary, the adapter inside its base's tree, the fit check in
the comparison's colours, merge-lora from the export dialog (all checked against peft)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from ckpt_gui.core.adapters.tree import is_adapter_tensor
from ckpt_gui.core.export import ExportOptions
from ckpt_gui.qt.check.controller import controller_for
from ckpt_gui.qt.export.export_dialog import ExportDialog
from ckpt_gui.qt.export.job_queue import ExportJob
from tests.support.peft_fixtures import peft_fit, peft_merged_state, save_adapter, save_base


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("lora-gui")
    base = save_base(root / "base")
    adapter = save_adapter(
        root / "adapter", base, target_modules=["q_proj", "v_proj"], use_dora=True
    )
    wide = save_base(root / "wide", hidden_size=48, intermediate_size=40)
    other = root / "for-wide"
    shutil.copytree(adapter, other)
    config = json.loads((other / "adapter_config.json").read_text())
    config["base_model_name_or_path"] = str(wide)
    (other / "adapter_config.json").write_text(json.dumps(config))
    return {"base": base, "adapter": adapter, "wide": wide, "for_wide": other}


def open_tab(qtbot, window, folder: Path):
    window.open_targets([str(folder)])
    qtbot.waitUntil(lambda: window.tabs() and window.is_idle(), timeout=120_000)
    return window.current_tab()


def test_adapter_tab_summary_tree_and_fit(qtbot, qtmodeltester, window, pair) -> None:
    tab = open_tab(qtbot, window, pair["adapter"])
    summary = tab.header.label.text()
    assert "LORA adapter" in summary and str(pair["base"]) in summary
    assert (
        "r <b>4</b>" in summary and "scale <b>2</b>" in summary and "DoRA (4 magnitudes)" in summary
    )
    root = tab.tree.model.root
    q = root.find("model.layers.0.self_attn.q_proj")
    assert q is not None
    assert not is_adapter_tensor(q.find("weight").tensor)  # the base's own weight
    assert is_adapter_tensor(q.find("lora_A.weight").tensor)
    # Checked against its base at once: fits, every row green.
    controller = controller_for(tab)
    assert controller is not None and controller.result is not None
    assert controller.result.report.clean
    assert "loads cleanly" in controller.bar.verdict.text()
    assert tab.tree.model.status_of(q.find("lora_A.weight")) == "ok"
    qtmodeltester.check(tab.tree.model)


def test_fit_check_against_another_base_colours_mismatches(qtbot, window, pair) -> None:
    tab = open_tab(qtbot, window, pair["for_wide"])
    controller = controller_for(tab)
    assert controller is not None and controller.result is not None
    oracle = peft_fit(pair["wide"], pair["for_wide"])
    report = controller.result.report
    assert {"base_model.model." + m.key for m in report.mismatched} == oracle["mismatched"]
    assert "does NOT load cleanly" in controller.bar.verdict.text()
    node = tab.tree.model.root.find("model.layers.0.self_attn.q_proj.lora_A.weight")
    assert node is not None and tab.tree.model.status_of(node) == "mismatched"
    kinds = {
        controller.panel.model.row_at(r).kind for r in range(controller.panel.model.rowCount())
    }
    assert kinds == {"mismatched"}


def test_export_dialog_merges_lora_from_an_adapter_tab(
    qtbot, window, features, pair, tmp_path
) -> None:
    import torch
    from PySide6.QtWidgets import QMenu
    from safetensors.torch import load_file

    tab = open_tab(qtbot, window, pair["adapter"])
    menu = QMenu(window)
    features.exports.add_tab_entries(menu, tab)
    assert any(a.text().startswith("Merge LoRA") for a in menu.actions())
    dialog = features.exports.open_dialog("merge-lora", tab=tab)
    assert isinstance(dialog, ExportDialog)
    assert dialog.base_edit.text() == str(pair["base"])  # found on this machine
    out = tmp_path / "merged"
    dialog.output_edit.setText(str(out))
    dialog.output_edit.textEdited.emit(str(out))
    dialog.replan()
    qtbot.waitUntil(
        lambda: not dialog.is_planning and (dialog.plan is not None or dialog.error is not None),
        timeout=60_000,
    )
    assert dialog.error is None and dialog.plan is not None and dialog.plan.kind == "merge-lora"
    job = features.exports.queue.submit(ExportJob(dialog.plan, ExportOptions(fsync=False)))
    qtbot.waitUntil(lambda: job.state.finished, timeout=120_000)
    assert job.error is None, job.error
    ours = load_file(str(out / "model.safetensors"))
    for name, value in peft_merged_state(pair["base"], pair["adapter"]).items():
        torch.testing.assert_close(ours[name], value, rtol=1e-5, atol=1e-6)
    dialog.close()


def test_export_dialog_refuses_a_base_that_does_not_fit(qtbot, pair, tmp_path) -> None:
    dialog = ExportDialog("merge-lora", str(pair["adapter"]), base=str(pair["wide"]))
    qtbot.addWidget(dialog)
    dialog.replan()
    qtbot.waitUntil(
        lambda: not dialog.is_planning and (dialog.plan is not None or dialog.error is not None),
        timeout=60_000,
    )
    assert dialog.plan is None and "does not fit the base" in (dialog.error or "")
    assert not dialog.start_button.isEnabled()
    dialog.base_edit.setText("")
    dialog.replan()
    assert "choose the base model" in (dialog.error or "")
