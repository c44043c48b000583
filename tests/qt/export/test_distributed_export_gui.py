"""The export dialog merges a DCP folder into safetensors with a config, through the job queue."""

from __future__ import annotations

from pathlib import Path

from ckpt_gui.core.formats import open_checkpoint
from ckpt_gui.qt.export.export_dialog import ExportDialog
from ckpt_gui.qt.export.job_queue import ExportJob, JobQueue, JobState
from tests.support.qt_export import wait_planned


def test_dialog_merges_a_dcp_folder_with_a_config(qtbot, dcp_dir: Path, tmp_path: Path) -> None:
    from transformers import AutoModelForCausalLM

    dialog = ExportDialog("safetensors", str(dcp_dir))
    qtbot.addWidget(dialog)
    out = tmp_path / "merged"
    dialog.output_edit.setText(str(out))
    dialog.output_edit.textEdited.emit(str(out))
    dialog.config_edit.setText(str(dcp_dir.parent / "checkpoint-config"))
    dialog.shard_box.setCurrentText("50KB")
    dialog.replan()
    wait_planned(qtbot, dialog)
    assert dialog.plan is not None, dialog.error
    assert [name for name, _ in dialog.plan.generated_files] == ["config.json"]
    assert len(dialog.plan.shards) > 1

    queue = JobQueue()
    progress: list[int] = []
    queue.job_changed.connect(lambda changed: progress.append(changed.done))
    job = queue.submit(ExportJob(dialog.plan, dialog.export_options()))
    with qtbot.waitSignal(queue.idle, timeout=120_000):
        pass
    assert job.state is JobState.DONE, job.error
    assert progress, "the queue reported progress"
    written = open_checkpoint(out)
    source = open_checkpoint(dcp_dir)
    assert {t.name: t.shape for t in written.tensors} == {t.name: t.shape for t in source.tensors}
    _, info = AutoModelForCausalLM.from_pretrained(out, output_loading_info=True)
    assert not info["missing_keys"] and not info["unexpected_keys"]
