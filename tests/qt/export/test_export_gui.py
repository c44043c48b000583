"""Export GUI: dialog plan preview, jobs dock, queue order, cancel, quit guard, bridge."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from PySide6.QtWidgets import QMessageBox

from ckpt_gui.core.export import ExportOptions, RenameRule, plan_convert, plan_safetensors, run_plan
from ckpt_gui.core.formats import open_checkpoint
from ckpt_gui.core.jobs import Progress
from ckpt_gui.qt.export.export_dialog import ExportDialog, prefix_fields
from ckpt_gui.qt.export.job_queue import ExportJob, JobQueue, JobState
from ckpt_gui.qt.export.jobs_model import JobColumn, JobsModel, format_eta, format_rate
from tests.support.qt_export import wait_planned


def partial_folders(parent: Path) -> list[Path]:
    return [p for p in parent.iterdir() if "ckpt-gui-partial" in p.name]


def wait_finished(qtbot, job: ExportJob) -> None:
    qtbot.waitUntil(lambda: job.state.finished, timeout=60_000)


# -- dialog ---------------------------------------------------------------------------------------
def test_dialog_shows_the_shard_plan_of_a_sharded_llama(qtbot, llama_sharded_dir, tmp_path):
    out = tmp_path / "out"
    dialog = ExportDialog("convert", str(llama_sharded_dir))
    qtbot.addWidget(dialog)
    dialog.output_edit.setText(str(out))
    dialog.output_edit.textEdited.emit(str(out))
    dialog.shard_box.setCurrentText("50KB")
    dialog.replan()
    wait_planned(qtbot, dialog)
    assert dialog.error is None and dialog.plan is not None
    expected = plan_convert(llama_sharded_dir, out, "BF16", max_shard_size=50_000)
    table = dialog.shard_table
    assert table.rowCount() == len(expected.shards) > 1
    rows = [
        (table.item(r, 0).text(), int(table.item(r, 1).text())) for r in range(table.rowCount())
    ]
    assert rows == [(s.filename, len(s.tensors)) for s in expected.shards]
    assert "to write" in dialog.summary_label.text()
    assert dialog.start_button.isEnabled()
    assert not out.exists()  # planning writes nothing


def test_invalid_shard_size_shows_an_inline_error(qtbot, llama_sharded_dir, tmp_path):
    dialog = ExportDialog("reshard", str(llama_sharded_dir))
    qtbot.addWidget(dialog)
    dialog.shard_box.setCurrentText("lots")
    dialog.replan()
    assert dialog.error is not None and "max shard size" in dialog.error
    assert "\n" not in dialog.error_label.full_text()
    assert dialog.error_label.full_text() == dialog.error
    assert not dialog.start_button.isEnabled()
    dialog.shard_box.setCurrentText("500MB")
    dialog.replan()
    wait_planned(qtbot, dialog)
    assert dialog.error is None and dialog.start_button.isEnabled()


def test_planning_errors_from_the_core_show_inline(qtbot, llama_dir, tmp_path):
    existing = tmp_path / "exists"
    existing.mkdir()
    dialog = ExportDialog("convert", str(llama_dir))
    qtbot.addWidget(dialog)
    dialog.output_edit.setText(str(existing))
    dialog.output_edit.textEdited.emit(str(existing))
    dialog.replan()
    wait_planned(qtbot, dialog)
    assert dialog.plan is None and str(existing) in (dialog.error or "")
    dialog.overwrite_box.setChecked(True)
    dialog.replan()
    wait_planned(qtbot, dialog)
    assert dialog.plan is not None and dialog.export_options().overwrite


def test_random_init_plan_lists_generated_files(qtbot, llama_dir, tmp_path):
    dialog = ExportDialog("random-init", str(llama_dir / "config.json"))
    qtbot.addWidget(dialog)
    dialog.output_edit.setText(str(tmp_path / "fresh"))
    dialog.output_edit.textEdited.emit(str(tmp_path / "fresh"))
    dialog.replan()
    wait_planned(qtbot, dialog)
    assert dialog.plan is not None, dialog.error
    assert "LlamaForCausalLM" in dialog.summary_label.text()
    assert "config.json" in dialog.summary_label.text()
    assert not dialog.form.isRowVisible(dialog.subtree_edit)
    assert dialog.form.isRowVisible(dialog.seed_box)


def test_prefix_renames_fill_the_prefix_fields() -> None:
    rules = [
        RenameRule.strip_prefix("module"),
        RenameRule.add_prefix("model"),
        RenameRule("a", "b"),
    ]
    assert prefix_fields(rules) == ("module", "model", [RenameRule("a", "b")])
    assert prefix_fields([RenameRule("x", "y")]) == ("", "", [RenameRule("x", "y")])


# -- jobs model -------------------------------------------------------------------------------------
def test_jobs_model_passes_the_model_tester(qtmodeltester, llama_dir, tmp_path):
    queue = JobQueue()
    model = JobsModel(queue)
    qtmodeltester.check(model, force_py=True)
    for i in range(3):
        plan = plan_convert(llama_dir, tmp_path / f"o{i}", "BF16")
        job = ExportJob(plan, ExportOptions(fsync=False))
        queue.jobs.append(job)
        model._added(job)
    qtmodeltester.check(model, force_py=True)
    assert model.index(0, JobColumn.JOB).data().startswith("Convert → BF16")


def test_rate_and_eta_formatting() -> None:
    assert format_rate(None) == ""
    assert format_rate(123.45e6) == "123.5 MB/s"
    assert format_rate(2.5e9) == "2.50 GB/s"
    assert format_eta(75) == "1:15"
    assert format_eta(3725) == "1:02:05"


def test_throughput_uses_recent_progress(llama_dir, tmp_path):
    job = ExportJob(plan_convert(llama_dir, tmp_path / "o", "BF16"), ExportOptions())
    job.state = JobState.RUNNING
    job.total = 100_000_000
    job.record(Progress(0, job.total), now=10.0)
    job.record(Progress(20_000_000, job.total), now=12.0)
    assert job.throughput() == pytest.approx(10e6)
    assert job.eta_seconds() == pytest.approx(8.0)


# -- running through the window ------------------------------------------------------------------
def start_from_dialog(qtbot, window, features, kind: str, source: Path, out: Path, **options):
    dialog = features.exports.open_dialog(kind, source=str(source))
    dialog.output_edit.setText(str(out))
    dialog.output_edit.textEdited.emit(str(out))
    if "shard" in options:
        dialog.shard_box.setCurrentText(options["shard"])
    dialog.replan()
    wait_planned(qtbot, dialog)
    assert dialog.plan is not None, dialog.error
    dialog.start_button.click()
    return features.exports.queue.jobs[-1]


def test_export_menu_has_the_four_jobs(window) -> None:
    texts = [a.text() for a in window.menu("&Export").actions()]
    for label in ("Convert dtype…", "Re-shard…", "Convert to safetensors…"):
        assert label in texts
    assert "Random-init model from config…" in texts


def test_conversion_runs_through_the_dock_and_loads(
    qtbot, window, features, llama_sharded_dir, tmp_path
):
    out = tmp_path / "bf16"
    job = start_from_dialog(
        qtbot, window, features, "convert", llama_sharded_dir, out, shard="50KB"
    )
    dock = features.exports.dock
    assert dock.isVisible()
    wait_finished(qtbot, job)
    assert job.state is JobState.DONE, job.error
    written = open_checkpoint(out)
    source = open_checkpoint(llama_sharded_dir)
    assert {t.name for t in written.tensors} == {t.name for t in source.tensors}
    assert {t.dtype for t in written.tensors} == {"BF16"}
    row = dock.model.row_of(job)
    # The dock refreshes on a timer (at most 10 times a second): wait for its next tick.
    qtbot.waitUntil(
        lambda: dock.model.index(row, JobColumn.PROGRESS).data() == "100%", timeout=30_000
    )
    assert dock.model.index(row, JobColumn.STATUS).data().startswith("Done")
    actions = dock.actions_for(job)
    assert actions.folder_button.isVisibleTo(dock) and not actions.cancel_button.isVisibleTo(dock)
    # Open in new tab opens the result.
    actions.tab_button.click()
    qtbot.waitUntil(lambda: any(t.target == str(out) for t in window.tabs()), timeout=30_000)
    tab = next(t for t in window.tabs() if t.target == str(out))
    qtbot.waitUntil(lambda: tab.checkpoint is not None or tab.error is not None, timeout=30_000)
    assert tab.checkpoint is not None and len(tab.checkpoint.tensors) == len(source.tensors)


def test_open_folder_asks_the_desktop(qtbot, window, features, llama_dir, tmp_path, monkeypatch):
    opened: list[str] = []
    import ckpt_gui.qt.export.jobs_dock as jobs_dock

    monkeypatch.setattr(
        jobs_dock.QDesktopServices, "openUrl", lambda url: opened.append(url.toLocalFile())
    )
    out = tmp_path / "st"
    job = start_from_dialog(qtbot, window, features, "safetensors", llama_dir, out)
    wait_finished(qtbot, job)
    features.exports.dock.actions_for(job).folder_button.click()
    assert opened == [str(out)]


def gated_runner(gate: threading.Event, reached: threading.Event):
    """run_plan, paused after its first progress (the partial folder exists by then)."""

    def runner(plan, options):
        job = run_plan(plan, options)
        try:
            yield next(job)
            reached.set()
            gate.wait(30)
            return (yield from job)
        finally:
            job.close()

    return runner


def test_cancel_midway_leaves_nothing(qtbot, window, features, llama_sharded_dir, tmp_path):
    out = tmp_path / "cancelled"
    gate, reached = threading.Event(), threading.Event()
    plan = plan_convert(llama_sharded_dir, out, "F16", max_shard_size=50_000)
    job = features.exports.queue.submit(
        ExportJob(plan, ExportOptions(fsync=False), runner=gated_runner(gate, reached))
    )
    assert reached.wait(30)
    assert partial_folders(tmp_path), "the job should be mid-way, with its partial folder"
    actions = features.exports.dock.actions_for(job)
    actions.cancel_button.click()
    assert job.state is JobState.CANCELLING
    gate.set()
    wait_finished(qtbot, job)
    assert job.state is JobState.CANCELLED
    assert not out.exists()
    assert partial_folders(tmp_path) == []


def test_queue_runs_jobs_in_order_one_at_a_time(qtbot, llama_dir, tmp_path):
    queue = JobQueue()
    events: list[tuple[str, int]] = []
    lock = threading.Lock()

    def recording(plan, options):
        with lock:
            events.append(("start", plan.output.name))
        result = yield from run_plan(plan, options)
        with lock:
            events.append(("end", plan.output.name))
        return result

    jobs = [
        queue.submit(
            ExportJob(
                plan_safetensors(llama_dir, tmp_path / f"out{i}"),
                ExportOptions(fsync=False),
                runner=recording,
            )
        )
        for i in range(3)
    ]
    assert jobs[0].state is JobState.RUNNING
    assert [j.state for j in jobs[1:]] == [JobState.QUEUED] * 2
    with qtbot.waitSignal(queue.idle, timeout=60_000):
        pass
    assert [j.state for j in jobs] == [JobState.DONE] * 3
    assert events == [(kind, f"out{i}") for i in range(3) for kind in ("start", "end")]


def test_a_queued_job_can_be_cancelled_before_it_starts(
    qtbot, window, features, llama_dir, tmp_path
):
    gate, reached = threading.Event(), threading.Event()
    queue = features.exports.queue
    first = queue.submit(
        ExportJob(
            plan_safetensors(llama_dir, tmp_path / "a"),
            ExportOptions(fsync=False),
            runner=gated_runner(gate, reached),
        )
    )
    second = queue.submit(
        ExportJob(plan_safetensors(llama_dir, tmp_path / "b"), ExportOptions(fsync=False))
    )
    assert second.state is JobState.QUEUED
    features.exports.dock.actions_for(second).cancel_button.click()
    assert second.state is JobState.CANCELLED
    gate.set()
    wait_finished(qtbot, first)
    assert first.state is JobState.DONE
    assert not (tmp_path / "b").exists()


def test_cancelling_after_the_verdict_keeps_a_done_job_done(qtbot, llama_dir, tmp_path):
    """Quitting between a job's verdict and its thread's end (both queued signals) does not
    turn the finished export into a cancelled one."""
    queue = JobQueue()
    out = tmp_path / "done"
    job = queue.submit(ExportJob(plan_safetensors(llama_dir, out), ExportOptions(fsync=False)))
    # Runs while the verdict is announced, before the thread's `finished` is delivered.
    queue.job_changed.connect(lambda j: queue.cancel_all() if j.state is JobState.DONE else None)
    with qtbot.waitSignal(queue.idle, timeout=60_000):
        pass
    assert job.state is JobState.DONE and out.is_dir()


def test_a_failed_job_shows_its_error(qtbot, window, features, llama_dir, tmp_path):
    plan = plan_safetensors(llama_dir, tmp_path / "fails")
    options = ExportOptions(fsync=False, fail_after_bytes=1)
    job = features.exports.queue.submit(ExportJob(plan, options))
    wait_finished(qtbot, job)
    assert job.state is JobState.FAILED and "simulated failure" in (job.error or "")
    dock = features.exports.dock
    status = dock.model.index(dock.model.row_of(job), JobColumn.STATUS).data()
    assert status.startswith("Failed:") and "simulated failure" in status
    assert not (tmp_path / "fails").exists()


def answer_quit_prompt(monkeypatch, button_text: str | None) -> list[str]:
    """Patch QMessageBox.exec to click the button labelled ``button_text``."""
    asked: list[str] = []

    def fake_exec(box: QMessageBox) -> int:
        asked.append(box.text())
        for button in box.buttons():
            if button.text() == button_text:
                button.click()
        return 0

    monkeypatch.setattr(QMessageBox, "exec", fake_exec)
    return asked


def test_closing_while_running_asks_and_can_keep_running(
    qtbot, window, features, llama_dir, tmp_path, monkeypatch
):
    gate, reached = threading.Event(), threading.Event()
    out = tmp_path / "kept"
    job = features.exports.queue.submit(
        ExportJob(
            plan_safetensors(llama_dir, out),
            ExportOptions(fsync=False),
            runner=gated_runner(gate, reached),
        )
    )
    assert reached.wait(30)
    asked = answer_quit_prompt(monkeypatch, "Keep running")
    assert not window.close()
    assert asked and "running" in asked[0]
    assert window.isVisible() and job.state is JobState.RUNNING
    gate.set()
    wait_finished(qtbot, job)
    assert job.state is JobState.DONE and out.is_dir()
    asked.clear()
    assert window.close()  # nothing running: no question
    assert asked == []


def test_closing_while_running_can_cancel_and_quit(
    qtbot, window, features, llama_dir, tmp_path, monkeypatch
):
    gate, reached = threading.Event(), threading.Event()
    queue = features.exports.queue
    running = queue.submit(
        ExportJob(
            plan_safetensors(llama_dir, tmp_path / "r"),
            ExportOptions(fsync=False),
            runner=gated_runner(gate, reached),
        )
    )
    queued = queue.submit(
        ExportJob(plan_safetensors(llama_dir, tmp_path / "q"), ExportOptions(fsync=False))
    )
    assert reached.wait(30)
    asked = answer_quit_prompt(monkeypatch, "Cancel jobs and quit")
    # Quitting cancels, then waits for the job: let it on to its next yield only once it
    # was asked to stop (released earlier, it could finish before the cancel).
    queue.job_changed.connect(
        lambda job: gate.set() if job is running and job.state is JobState.CANCELLING else None
    )
    assert window.close()
    assert asked and "1 more is queued" in asked[0]
    assert queued.state is JobState.CANCELLED
    qtbot.waitUntil(lambda: running.state.finished, timeout=30_000)
    assert running.state is JobState.CANCELLED
    assert not (tmp_path / "r").exists() and not (tmp_path / "q").exists()
    assert partial_folders(tmp_path) == []


# -- context menus and the bridge -------------------------------------------------------------------
def loaded_tab(qtbot, window, target: Path):
    tab = window.open_targets([str(target)])[0]
    qtbot.waitUntil(lambda: tab.checkpoint is not None, timeout=30_000)
    return tab


def test_tab_menu_opens_prefilled_dialogs(qtbot, window, features, llama_dir):
    tab = loaded_tab(qtbot, window, llama_dir)
    menu = window.tab_menu(window.tab_widget.indexOf(tab))
    actions = {a.text(): a for a in menu.actions()}
    assert actions["Random-init model from config…"].isEnabled()
    actions["Re-shard…"].trigger()
    dialog = features.exports.dialogs[-1]
    assert dialog.kind == "reshard"
    assert Path(dialog.source_edit.text()) == llama_dir
    assert dialog.output_edit.text().endswith("-resharded")


def test_tree_row_menu_exports_the_subtree(qtbot, window, features, llama_dir, tmp_path):
    from PySide6.QtWidgets import QMenu

    tab = loaded_tab(qtbot, window, llama_dir)
    menu = QMenu()
    node = next(n for n in tab.tree.model.root.walk() if n.path == "model.layers.0")
    tab.tree.context_menu_requested.emit(menu, node)
    action = next(a for a in menu.actions() if a.text() == "Export this subtree…")
    action.trigger()
    dialog = features.exports.dialogs[-1]
    assert dialog.subtree_edit.text() == "model.layers.0"
    dialog.output_edit.setText(str(tmp_path / "layer0"))
    dialog.output_edit.textEdited.emit(str(tmp_path / "layer0"))
    dialog.replan()
    wait_planned(qtbot, dialog)
    assert dialog.plan is not None
    assert {t.name.split(".")[2] for t in dialog.plan.tensors} == {"0"}


def test_right_click_on_a_module_row_offers_the_subtree_export(qtbot, window, llama_dir):
    from PySide6.QtCore import QTimer

    tab = loaded_tab(qtbot, window, llama_dir)
    tree = tab.tree
    node = next(n for n in tree.model.root.walk() if n.path == "model.layers.1")
    tree.select_node(node)
    position = tree.view.visualRect(tree.view.currentIndex()).center()
    shown: list[tuple[object, list[str]]] = []

    def seen(menu, clicked) -> None:  # runs after the export hook added its action
        shown.append((clicked, [a.text() for a in menu.actions()]))
        QTimer.singleShot(0, menu.close)  # ends the menu's exec() loop

    tree.context_menu_requested.connect(seen)
    tree._context_menu(position)
    assert shown and shown[0][0] is node and "Export this subtree…" in shown[0][1]


def test_closing_while_a_job_is_already_cancelling_does_not_ask(
    qtbot, window, features, llama_dir, tmp_path, monkeypatch
):
    gate, reached = threading.Event(), threading.Event()
    job = features.exports.queue.submit(
        ExportJob(
            plan_safetensors(llama_dir, tmp_path / "c"),
            ExportOptions(fsync=False),
            runner=gated_runner(gate, reached),
        )
    )
    assert reached.wait(30)
    features.exports.queue.cancel(job)
    asked = answer_quit_prompt(monkeypatch, None)
    threading.Timer(0.2, gate.set).start()
    assert window.close()
    assert asked == []
    qtbot.waitUntil(lambda: job.state.finished, timeout=30_000)
    assert job.state is JobState.CANCELLED and not (tmp_path / "c").exists()
    assert partial_folders(tmp_path) == []


def test_export_service_prefills_renames_and_exports_them(
    qtbot, window, features, llama_dir, tmp_path
):
    """What the check feature asks for: the dialog with renames, and its output has them."""
    from ckpt_gui.core.check.suggestions import SuggestedRename

    tab = loaded_tab(qtbot, window, llama_dir)
    dialog = features.exports.export_with_renames(
        tab, [SuggestedRename.prefix("model.", ""), ("^lm_head", "head")]
    )
    assert dialog.kind == "safetensors"
    assert dialog.strip_edit.text() == "model"
    assert dialog.renames_edit.toPlainText() == "^lm_head=head"
    out = tmp_path / "renamed"
    dialog.output_edit.setText(str(out))
    dialog.output_edit.textEdited.emit(str(out))
    dialog.replan()
    wait_planned(qtbot, dialog)
    assert dialog.plan is not None, dialog.error
    names = {t.name for t in dialog.plan.tensors}
    assert "layers.0.self_attn.q_proj.weight" in names and "head.weight" in names
    dialog.start_button.click()
    job = features.exports.queue.jobs[-1]
    wait_finished(qtbot, job)
    assert job.state is JobState.DONE
    assert {t.name for t in open_checkpoint(out).tensors} == names


def test_suggested_part_renames_replace_only_the_first_match() -> None:
    import re

    from ckpt_gui.core.check.suggestions import SuggestedRename
    from ckpt_gui.core.export.renames import apply
    from ckpt_gui.qt.export.bridge import export_rename

    suggestion = SuggestedRename.part("attn", "self_attn")
    rule = export_rename(suggestion)
    for key in ("layers.0.attn.q.weight", "attn.x", "a.attn.attn.b", "x.attn.y.attn.z"):
        assert apply(key, [rule]) == suggestion.apply(key), key
    assert re.compile(rule.pattern)


def test_progress_updates_are_throttled_to_timer_ticks(qtbot, llama_dir, tmp_path):
    """Hundreds of yields reach the widgets only as often as the update timer fires."""
    queue = JobQueue()
    plan = plan_safetensors(llama_dir, tmp_path / "unused")
    total = 1000

    def chatty(plan, options):
        for done in range(total):
            yield Progress(done, total, "working")
        return None

    job = queue.submit(ExportJob(plan, ExportOptions(), runner=chatty))
    changes: list[int] = []
    ticks: list[int] = []
    queue.job_changed.connect(lambda j: changes.append(j.done))
    queue._timer.timeout.connect(lambda: ticks.append(1))
    with qtbot.waitSignal(queue.idle, timeout=60_000):
        pass
    # Progress-driven updates come only from timer ticks; the end adds two more (the verdict,
    # then the thread's end).
    assert len(changes) <= len(ticks) + 2 < total
    assert job.state is JobState.DONE


def test_overflow_is_reported_on_the_job(qtbot, window, features, tmp_path):
    import torch
    from safetensors.torch import save_file

    source = tmp_path / "big"
    source.mkdir()
    save_file({"w": torch.tensor([1.0, 1e6, -1e6, 2.0])}, str(source / "model.safetensors"))
    out = tmp_path / "f16"
    job = features.exports.queue.submit(
        ExportJob(plan_convert(source, out, "F16"), ExportOptions(fsync=False))
    )
    wait_finished(qtbot, job)
    assert job.state is JobState.DONE and job.result.overflow == {"w": 2}
    dock = features.exports.dock
    index = dock.model.index(dock.model.row_of(job), JobColumn.STATUS)
    assert "⚠" in index.data() and "overflowed" in index.data()
    from PySide6.QtCore import Qt

    assert "w: 2 values overflowed" in index.data(Qt.ItemDataRole.ToolTipRole)


def test_one_plan_in_flight_and_only_the_newest_counts(qtbot, llama_dir, tmp_path):
    from ckpt_gui.qt.export.export_dialog import make_plan

    release = threading.Event()
    calls: list[int | None] = []

    def slow_planner(request):
        calls.append(request.max_shard_size)
        if len(calls) == 1:
            release.wait(30)
        return make_plan(request)

    dialog = ExportDialog("reshard", str(llama_dir), planner=slow_planner)
    qtbot.addWidget(dialog)
    dialog.output_edit.setText(str(tmp_path / "o"))
    dialog.output_edit.textEdited.emit(str(tmp_path / "o"))
    dialog.replan()  # blocks in the planner
    qtbot.waitUntil(lambda: len(calls) == 1, timeout=30_000)
    dialog.shard_box.setCurrentText("20KB")
    dialog.replan()  # waits for the first
    assert len(calls) == 1 and not dialog.start_button.isEnabled()
    release.set()
    wait_planned(qtbot, dialog)
    assert calls == [2 * 10**9, 20_000]
    assert dialog.plan is not None and dialog.plan.max_shard_size == 20_000


def test_random_init_runs_through_the_dock(qtbot, window, features, llama_dir, tmp_path):
    out = tmp_path / "fresh"
    dialog = features.exports.open_dialog("random-init", source=str(llama_dir))
    dialog.seed_box.setValue(7)
    dialog.dtype_box.setCurrentIndex(dialog.dtype_box.findData("BF16"))
    dialog.output_edit.setText(str(out))
    dialog.output_edit.textEdited.emit(str(out))
    dialog.replan()
    wait_planned(qtbot, dialog)
    assert dialog.plan is not None, dialog.error
    assert dialog.plan.extra["seed"] == 7
    dialog.start_button.click()
    job = features.exports.queue.jobs[-1]
    assert job.title.startswith("Random init → BF16")
    wait_finished(qtbot, job)
    assert job.state is JobState.DONE, job.error
    written = open_checkpoint(out)
    expected = {t.name for t in open_checkpoint(llama_dir).tensors}
    assert {t.name for t in written.tensors} == expected
    assert {t.dtype for t in written.tensors} == {"BF16"}
    assert (out / "config.json").is_file()
