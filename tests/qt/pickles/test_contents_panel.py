"""A whole-model training checkpoint in the GUI: classes on module rows, the weight-set
selector (reopening on the worker), the contents tree, the "loads into" line."""

from __future__ import annotations

import threading
from pathlib import Path

from PySide6.QtCore import Qt

import ckpt_gui.qt.inspect.checkpoint_tab as checkpoint_tab
from ckpt_gui.core.targets import open_target_job
from ckpt_gui.qt.pickles.contents_panel import ContentsPanel, WeightSetBar
from ckpt_gui.qt.pickles.risk_view import GlobalColumn, PickleGlobalsToggle
from tests.support import pickle_fixtures as fx
from tests.support.qt_export import plan_into, start_and_finish


def training_checkpoint(folder: Path):  # type: ignore[no-untyped-def]
    import torch

    model, ema = fx.bert_model(), fx.bert_model()
    with torch.no_grad():
        for p in ema.parameters():
            p.add_(1.0)
    path = folder / "train.pt"
    torch.save({"model": model, "ema": ema, "epoch": 4, "step": 1200}, path)
    return path, model.state_dict(), ema.state_dict()


def test_whole_model_tab(qtbot, qtmodeltester, window, tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    threads: list[threading.Thread] = []

    def recording(target, *key):  # type: ignore[no-untyped-def]
        threads.append(threading.current_thread())
        return (yield from open_target_job(target, *key))

    monkeypatch.setattr(checkpoint_tab, "open_target_job", recording)
    path, model_sd, ema_sd = training_checkpoint(tmp_path)
    (tab,) = window.open_targets([str(path)])
    qtbot.waitUntil(lambda: tab.checkpoint is not None and window.is_idle(), timeout=30_000)
    assert list(tab.checkpoint.tensor_map) == list(model_sd)

    # Module rows show the class they were pickled as.
    model = tab.tree.model
    qtmodeltester.check(model)
    root = model.root
    bert = next(c for c in root.children if c.name == "bert")
    assert model.index_of(bert).data() == "bert  (BertModel)"
    assert "transformers.models.bert.modeling_bert.BertModel" in model.index_of(bert).data(
        Qt.ItemDataRole.ToolTipRole
    )

    # The weight-set selector and the embedded config's architecture.
    bar = tab.findChild(WeightSetBar)
    assert bar is not None and bar.selector.count() == 2
    assert [bar.selector.itemData(i) for i in range(2)] == ["model", "ema"]
    assert "BertForSequenceClassification" in bar.loads_into.text()
    assert "(embedded config)" in bar.loads_into.text()

    # The contents tree holds the non-weight entries.
    panel = tab.findChild(ContentsPanel)
    assert panel is not None
    top = {
        panel.tree.topLevelItem(i).text(0): panel.tree.topLevelItem(i).text(1)
        for i in range(panel.tree.topLevelItemCount())
    }
    assert top["epoch"] == "4" and top["step"] == "1200"
    assert top["model"].endswith("BertForSequenceClassification")

    # Picking "ema" reopens the file on the worker and shows the EMA weights.
    bar.selector.activated.emit(1)
    qtbot.waitUntil(
        lambda: (
            window.is_idle()
            and tab.checkpoint is not None
            and tab.checkpoint.metadata.get("weight_set") == "ema"
        ),
        timeout=30_000,
    )
    assert list(tab.checkpoint.tensor_map) == list(ema_sd)
    assert all(t is not threading.main_thread() for t in threads) and len(threads) == 2
    assert len(tab.findChildren(ContentsPanel)) >= 1

    # The pickle-globals table groups what the file names.
    toggle = tab.header.findChild(PickleGlobalsToggle)
    assert toggle is not None
    groups = {
        toggle.model.index(r, GlobalColumn.GROUP).data() for r in range(toggle.model.rowCount())
    }
    assert groups == {"classes whose code would be imported", "plain data"}
    assert "classes whose code would be imported" in toggle.toggle.text()


def test_export_from_the_tab_writes_the_weight_set_it_shows(
    qtbot, window, features, tmp_path
) -> None:  # type: ignore[no-untyped-def]
    import torch
    from safetensors.torch import load_file

    from ckpt_gui.qt.export.job_queue import JobState

    path, _model_sd, ema_sd = training_checkpoint(tmp_path)
    (tab,) = window.open_targets([str(path)])
    qtbot.waitUntil(lambda: tab.checkpoint is not None and window.is_idle(), timeout=30_000)
    bar = tab.findChild(WeightSetBar)
    bar.selector.activated.emit(1)
    qtbot.waitUntil(
        lambda: window.is_idle() and tab.checkpoint.metadata.get("weight_set") == "ema",
        timeout=30_000,
    )
    dialog = features.exports.open_dialog("safetensors", tab=tab)
    assert dialog.weight_set_label.text() == "ema" and not dialog.weight_set_label.isHidden()
    out = tmp_path / "ema-out"
    plan_into(qtbot, dialog, out)
    job = start_and_finish(qtbot, features, dialog)
    assert job.state is JobState.DONE, job.error
    written = load_file(out / "model.safetensors")
    assert set(written) == set(ema_sd)
    for name, value in written.items():
        assert torch.equal(value, ema_sd[name]), name
