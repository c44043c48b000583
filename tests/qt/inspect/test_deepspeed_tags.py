"""The DeepSpeed tag picker: a ZeRO-2 folder saved at two steps, in the window.

The tab opens the tag ``latest`` names; the picker in the weight-set row lists
both tags, and choosing the other reopens the folder at that tag on the
worker, in the same tab. The oracle for what each tag holds is DeepSpeed's own
``get_fp32_state_dict_from_zero_checkpoint(folder, tag=...)``; the export from
the tab reads the tag it shows.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import numpy as np
from PySide6.QtCore import Qt

import ckpt_gui.qt.inspect.checkpoint_tab as checkpoint_tab
from ckpt_gui.core.formats import open_checkpoint
from ckpt_gui.core.model import Checkpoint
from ckpt_gui.core.targets import open_target_job
from ckpt_gui.core.values.chunks import iter_chunks
from ckpt_gui.qt.export.job_queue import JobState
from ckpt_gui.qt.inspect.tag_picker import TagPicker
from ckpt_gui.qt.pickles.contents_panel import WeightSetBar
from tests.support.distributed_fixtures import zero_oracle
from tests.support.qt_export import plan_into, start_and_finish

NAME = "model.layers.1.self_attn.o_proj.weight"


def _oracle(folder: Path, tmp_path: Path, tag: str) -> dict[str, Any]:
    import torch

    return dict(torch.load(zero_oracle(folder, tmp_path / f"{tag}.pt", tag), weights_only=True))


def _values(checkpoint: Checkpoint, name: str) -> np.ndarray[Any, Any]:
    return np.concatenate(list(iter_chunks(checkpoint, checkpoint.tensor(name))))


def _assert_shows(checkpoint: Checkpoint, oracle: dict[str, Any]) -> None:
    assert {t.name for t in checkpoint.tensors} == set(oracle)
    for name, expected in oracle.items():
        ours = _values(checkpoint, name)
        assert np.array_equal(ours, expected.float().numpy().ravel()), name


def test_the_picker_reopens_the_folder_at_the_chosen_tag(
    qtbot, window, features, zero2_two_tags_dir: Path, tmp_path: Path, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    folder = zero2_two_tags_dir
    step1, step2 = _oracle(folder, tmp_path, "global_step1"), _oracle(folder, tmp_path, "global_step2")
    assert not np.array_equal(step1[NAME].numpy(), step2[NAME].numpy()), "the saves differ"
    threads: list[threading.Thread] = []

    def recording(target, *args):  # type: ignore[no-untyped-def]
        threads.append(threading.current_thread())
        return (yield from open_target_job(target, *args))

    monkeypatch.setattr(checkpoint_tab, "open_target_job", recording)
    (tab,) = window.open_targets([str(folder)])
    qtbot.waitUntil(lambda: tab.checkpoint is not None and window.is_idle(), timeout=60_000)

    # The tag latest names, in the same row as the weight set.
    picker = tab.findChild(TagPicker)
    assert picker is not None and picker is tab.tag_picker
    assert picker.parentWidget() is tab.findChild(WeightSetBar)
    assert "(config.json)" in tab.findChild(WeightSetBar).loads_into.text()
    items = [picker.selector.itemData(i) for i in range(picker.selector.count())]
    assert items == ["global_step1", "global_step2"]
    assert picker.selector.currentData() == "global_step2"
    assert picker.selector.currentText() == "global_step2 (latest)"
    assert picker.selector.isEnabled()
    assert "global_step2</b>, the one <code>latest</code> names" in tab.header.label.text()
    _assert_shows(tab.checkpoint, step2)

    # The user picks global_step1 with the keyboard: the tab reopens it on the worker.
    picker.selector.setFocus()
    with qtbot.waitSignal(tab.loaded, timeout=60_000):
        qtbot.keyClick(picker.selector, Qt.Key.Key_Up)
    qtbot.waitUntil(window.is_idle, timeout=30_000)
    assert window.tabs() == [tab], "the same tab shows the other tag"
    assert tab.checkpoint.metadata["deepspeed"]["tag"] == "global_step1"
    assert tab.checkpoint.metadata["weight_set"] == "fp32"
    assert tab.tag_picker is not None and tab.tag_picker.selector.currentData() == "global_step1"
    assert "(<code>latest</code> names global_step2)" in tab.header.label.text()
    assert len(threads) == 2 and all(t is not threading.main_thread() for t in threads)
    _assert_shows(tab.checkpoint, step1)

    # The details panel computes the statistics of the tag shown.
    node = tab.tree.model.root.find(NAME)
    assert node is not None
    with qtbot.waitSignal(tab.details.stats_ready, timeout=30_000) as blocker:
        tab.details.show_node(node)
    assert blocker.args[0].max == float(step1[NAME].max()) != float(step2[NAME].max())

    # An export from the tab reads the tag it shows.
    dialog = features.exports.open_dialog("safetensors", tab=tab)
    assert dialog.tag_edit.text() == "global_step1" and not dialog.tag_edit.isHidden()
    out = tmp_path / "merged"
    plan_into(qtbot, dialog, out)
    job = start_and_finish(qtbot, features, dialog)
    assert job.state is JobState.DONE, job.error
    _assert_shows(open_checkpoint(out), step1)


def test_a_step_folder_shows_its_tag_without_a_choice(
    qtbot, window, zero2_two_tags_dir: Path
) -> None:  # type: ignore[no-untyped-def]
    (tab,) = window.open_targets([str(zero2_two_tags_dir / "global_step1")])
    qtbot.waitUntil(lambda: tab.checkpoint is not None and window.is_idle(), timeout=60_000)
    picker = tab.tag_picker
    assert picker is not None and not picker.selector.isEnabled()
    assert picker.selector.currentData() == "global_step1"
    assert "open its parent folder" in picker.selector.toolTip()
    # Its values read from the step folder itself.
    assert _values(tab.checkpoint, NAME).size == tab.checkpoint.tensor(NAME).parameters
