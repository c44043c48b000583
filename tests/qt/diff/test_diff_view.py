"""Diff view: structure at once, values from a background job, same numbers as the core."""

from __future__ import annotations

import dataclasses
import threading
from pathlib import Path

import pytest
from PySide6.QtCore import QMimeData, QPointF, Qt, QUrl
from PySide6.QtGui import QDropEvent

from ckpt_gui.core.diff.values import diff_structure, diff_values
from ckpt_gui.core.formats import open_checkpoint
from ckpt_gui.core.jobs import run_to_completion
from ckpt_gui.qt.diff import actions as compare_scan
from ckpt_gui.qt.diff import diff_view
from ckpt_gui.qt.diff.diff_model import (
    CHANGED,
    IDENTICAL,
    NOT_COMPARED,
    ONLY_IN_A,
    DiffColumn,
    format_cosine,
    format_metric,
)
from ckpt_gui.qt.diff.diff_view import SHOW_CHOICES, DiffView, LoadedPair
from ckpt_gui.qt.inspect.checkpoint_tab import CheckpointTab
from ckpt_gui.qt.scan.scan_panel import ScanPanel
from tests.support.diffscan_data import PERTURBED


def open_tab(qtbot, window, target: Path) -> CheckpointTab:
    (tab,) = window.open_targets([str(target)])
    qtbot.waitUntil(lambda: tab.checkpoint is not None and window.is_idle(), timeout=30_000)
    return tab


def wait_done(qtbot, view: DiffView) -> None:
    qtbot.waitUntil(lambda: not view.is_busy and view.pair is not None, timeout=30_000)
    qtbot.waitUntil(lambda: not view.is_busy, timeout=30_000)


def proxy_column(view: DiffView, column: int) -> list[str]:
    proxy = view.proxy
    return [proxy.index(row, column).data() for row in range(proxy.rowCount())]


def test_changed_tensors_match_the_core(
    qtbot, qtmodeltester, window, features, llama_dir, finetuned_dir
):
    tab = open_tab(qtbot, window, llama_dir)
    view = features.diff.compare(tab, str(finetuned_dir))
    assert window.tab_widget.currentWidget() is view
    wait_done(qtbot, view)
    core = run_to_completion(
        diff_values(open_checkpoint(llama_dir), open_checkpoint(finetuned_dir))
    )
    assert view.report is not None
    assert view.results == {t.key: t for t in core.tensors}
    # Most changed first (rel L2, descending), then the identical rest.
    names = proxy_column(view, DiffColumn.NAME)
    statuses = proxy_column(view, DiffColumn.STATUS)
    assert names[:2] == [t.key for t in core.changed] and set(names[:2]) == set(PERTURBED)
    assert statuses[:2] == ["changed", "changed"]
    assert set(statuses[2:]) == {"identical"}
    for row, expected in enumerate(core.changed):
        shown = [view.proxy.index(row, c).data() for c in range(len(DiffColumn))]
        assert shown[DiffColumn.MAX_ABS] == format_metric(expected.max_abs_diff)
        assert shown[DiffColumn.REL_L2] == format_metric(expected.rel_l2)
        assert shown[DiffColumn.COSINE] == format_cosine(expected.cosine)
    assert "Different" in view.summary_label.text()
    assert "2</b> changed" in view.summary_label.text()
    # Module aggregates are the core's, sorted by rel L2.
    modules = view.module_model
    shown_modules = {modules.module(r).path: modules.module(r) for r in range(modules.rowCount())}
    assert shown_modules == dict(core.modules)
    assert view.pages.isTabEnabled(1)
    # A's tree marks the changed tensors; their modules inherit the status.
    model = tab.tree.model
    nodes = {node.path: node for node in model.root.walk()}
    assert model.status_of(nodes[PERTURBED[0]]) == "changed"
    assert model.status_of(nodes["model.layers.0"]) == "changed"
    assert model.status_of(nodes["model.embed_tokens.weight"]) is None
    # "Changed values" shows just the two; a name filter narrows further.
    view.show_box.setCurrentText("Changed values")
    assert view.proxy.rowCount() == 2
    view.filter_edit.setText("down_proj")
    assert proxy_column(view, DiffColumn.NAME) == [PERTURBED[1]]
    view.show_box.setCurrentText("Identical")
    view.filter_edit.clear()
    assert view.proxy.rowCount() == len(core.identical)
    # Header clicks sort (the model sorts itself: fast for 100,000 rows).
    view.show_box.setCurrentText("All tensors")
    view.table.sortByColumn(DiffColumn.NAME, Qt.SortOrder.AscendingOrder)
    names = proxy_column(view, DiffColumn.NAME)
    assert names == sorted(names) and len(names) == len(core.tensors)
    view.table.sortByColumn(DiffColumn.MAX_ABS, Qt.SortOrder.DescendingOrder)
    largest = max(core.changed, key=lambda t: t.max_abs_diff or 0.0)
    assert proxy_column(view, DiffColumn.NAME)[0] == largest.key
    qtmodeltester.check(view.model)
    qtmodeltester.check(view.proxy)
    qtmodeltester.check(view.module_model)


def test_diff_runs_off_the_gui_thread(
    qtbot, window, features, llama_dir, finetuned_dir, monkeypatch
):
    job_threads: list[threading.Thread] = []
    callback_threads: list[threading.Thread] = []
    batch_threads: list[threading.Thread] = []

    def recording_diff(*args, **kwargs):
        job_threads.append(threading.current_thread())
        on_tensor = kwargs["on_tensor"]

        def callback(result):
            callback_threads.append(threading.current_thread())
            on_tensor(result)

        kwargs["on_tensor"] = callback
        return (yield from diff_values(*args, **kwargs))

    monkeypatch.setattr(diff_view, "diff_values", recording_diff)
    tab = open_tab(qtbot, window, llama_dir)
    view = features.diff.compare(tab, str(finetuned_dir))
    view.relay.batch.connect(lambda _items: batch_threads.append(threading.current_thread()))
    wait_done(qtbot, view)
    assert view.report is not None
    main = threading.main_thread()
    assert job_threads and all(t is not main for t in job_threads)
    assert callback_threads and all(t is not main for t in callback_threads)
    # Results are handed over in batches (throttled), delivered on the GUI thread.
    assert batch_threads and all(t is main for t in batch_threads)
    assert len(batch_threads) <= len(callback_threads)


def test_renamed_keys_are_matched_and_shown(
    qtbot, window, features, llama_dir, llama_model, tmp_path
):
    from safetensors.torch import save_file

    base = {k: v.detach().clone().contiguous() for k, v in llama_model.model.state_dict().items()}
    save_file(base, tmp_path / "base.safetensors")
    tab = open_tab(qtbot, window, llama_dir)
    view = features.diff.compare(tab, str(tmp_path / "base.safetensors"))
    wait_done(qtbot, view)
    assert view.renames_label.isVisibleTo(view)
    text = view.renames_label.text()
    assert "Renamed keys matched" in text and "model." in text and f"({len(base)} tensors)" in text
    assert view.kind_of("lm_head.weight") == ONLY_IN_A
    assert view.kind_of("model.norm.weight") == IDENTICAL
    rows = {r.key: r for r in view.model.rows()}
    assert rows["model.norm.weight"].key_b == "norm.weight"
    names_b = dict(
        zip(
            proxy_column(view, DiffColumn.NAME),
            proxy_column(view, DiffColumn.NAME_B),
            strict=True,
        )
    )
    assert names_b["model.layers.0.mlp.up_proj.weight"] == "layers.0.mlp.up_proj.weight"
    assert view.report is not None and len(view.report.identical) == len(base)


def test_cancel_midway_stops_the_worker(
    qtbot, window, features, llama_dir, finetuned_dir, monkeypatch
):
    reached, gate = threading.Event(), threading.Event()

    def slow_diff(*args, **kwargs):
        kwargs["chunk_elements"] = 64  # many small steps
        reported: list[object] = []
        on_tensor = kwargs["on_tensor"]
        kwargs["on_tensor"] = lambda result: (reported.append(result), on_tensor(result))
        inner = diff_values(*args, **kwargs)
        try:
            while True:
                try:
                    progress = next(inner)
                except StopIteration as stop:
                    return stop.value
                if reported and not reached.is_set():
                    # Hold the job midway (after its first result) until the test cancels.
                    reached.set()
                    gate.wait(30)
                yield progress
        finally:
            inner.close()

    monkeypatch.setattr(diff_view, "diff_values", slow_diff)
    tab = open_tab(qtbot, window, llama_dir)
    view = features.diff.compare(tab, str(finetuned_dir))
    qtbot.waitUntil(reached.is_set, timeout=30_000)
    assert view.is_busy and view.progress_row.isVisibleTo(view)
    qtbot.waitUntil(lambda: bool(view.results), timeout=30_000)  # some rows already coloured
    view.cancel()
    gate.set()
    qtbot.waitUntil(lambda: not view.is_busy, timeout=30_000)
    assert view.cancelled and view.report is None
    counts = view.model.counts()
    assert counts["pending"] == 0 and counts[NOT_COMPARED] > 0
    assert 0 < len(view.results) < len(view.pair.structure.pairs)
    assert "Cancelled" in view.message_label.text() and view.message_label.isVisibleTo(view)
    assert not any(t.name == "tensor-stream" for t in threading.enumerate())
    assert view.pages.isTabEnabled(1)  # partial module figures


def test_hub_checkpoint_is_compared_by_structure_only(qtbot, llama_dir, finetuned_dir):
    a = open_checkpoint(llama_dir)
    remote = dataclasses.replace(open_checkpoint(finetuned_dir), source="acme/tiny", root=None)
    view = DiffView(
        str(llama_dir), "acme/tiny", loader=lambda: LoadedPair(a, remote, diff_structure(a, remote))
    )
    qtbot.addWidget(view)
    with qtbot.waitSignal(view.finished, timeout=30_000):
        pass
    assert view.report is None and not view.results
    assert (
        view.message_label.isVisibleTo(view)
        and "acme/tiny is on the Hub" in view.message_label.text()
    )
    assert set(view.model.counts()[k] for k in (CHANGED, IDENTICAL)) == {0}
    assert view.model.counts()[NOT_COMPARED] == len(a.tensors)
    assert not view.progress_row.isVisibleTo(view)


def test_unreadable_b_shows_the_one_line_error(qtbot, window, features, llama_dir, tmp_path):
    bad = tmp_path / "broken.safetensors"
    bad.write_bytes(b"\x00" * 3)
    tab = open_tab(qtbot, window, llama_dir)
    view = features.diff.compare(tab, str(bad))
    with qtbot.waitSignal(view.finished, timeout=30_000):
        pass
    assert view.error and view.error.startswith(str(bad)) and "\n" not in view.error
    assert view.error.split(": ", 1)[1] in view.loading_label.text()


def drop_file(window, path: Path, modifiers=Qt.KeyboardModifier.NoModifier) -> None:
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(path))])
    event = QDropEvent(
        QPointF(200, 200), Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton, modifiers
    )
    window.dropEvent(event)


def test_drop_on_a_tab_prompts_open_or_compare(qtbot, window, features, llama_dir, finetuned_dir):
    tab = open_tab(qtbot, window, llama_dir)
    target = finetuned_dir / "model.safetensors"
    drop_file(window, target)
    menu = features.diff.drop_menu
    assert menu is not None and window.tab_widget.count() == 1  # nothing happened yet
    labels = [a.text() for a in menu.actions() if a.text()]
    assert labels == ["Open in New Tab", f"Compare with “{tab.title}”", "Cancel"]
    menu.actions()[1].trigger()
    view = window.tab_widget.currentWidget()
    assert isinstance(view, DiffView) and view.b_target == str(target)
    wait_done(qtbot, view)
    # "Open in New Tab" opens it as before.
    window.tab_widget.setCurrentWidget(tab)
    drop_file(window, target)
    features.diff.drop_menu.actions()[0].trigger()
    assert window.current_tab() is not None and window.current_tab().target == str(target)
    qtbot.waitUntil(window.is_idle, timeout=30_000)


@pytest.mark.parametrize(
    "modifier", [Qt.KeyboardModifier.ControlModifier, Qt.KeyboardModifier.AltModifier]
)
def test_drop_with_modifier_compares_at_once(
    qtbot, window, features, llama_dir, finetuned_dir, modifier
):
    open_tab(qtbot, window, llama_dir)
    features.diff.drop_menu = None
    drop_file(window, finetuned_dir, modifier)
    assert features.diff.drop_menu is None
    view = window.tab_widget.currentWidget()
    assert isinstance(view, DiffView)
    wait_done(qtbot, view)


def test_compare_action_asks_for_b(qtbot, window, features, llama_dir, finetuned_dir, monkeypatch):
    asked: list[str] = []

    def ask(_parent, title):
        asked.append(title)
        return str(finetuned_dir)

    monkeypatch.setattr(compare_scan, "ask_compare_target", ask)
    tab = open_tab(qtbot, window, llama_dir)
    features.diff.compare_action.trigger()
    assert asked == [tab.title]
    view = window.tab_widget.currentWidget()
    assert isinstance(view, DiffView) and view.a_target == tab.target
    wait_done(qtbot, view)
    # Closing the diff tab disposes it; the checkpoint tab stays.
    window.close_tab(window.tab_widget.indexOf(view))
    assert window.tabs() == [tab]


def test_compare_dialog_accepts_paths_and_hub_ids(qtbot):
    dialog = compare_scan.CompareTargetDialog("A")
    qtbot.addWidget(dialog)
    dialog.edit.setText("https://huggingface.co/acme/tiny-model/tree/main")
    # The URL is kept whole, so its revision (here main) is kept too.
    assert dialog.target() == "https://huggingface.co/acme/tiny-model/tree/main"
    dialog.edit.setText("  /some/folder  ")
    assert dialog.target() == "/some/folder"
    dialog.edit.setText("")
    assert dialog.target() == ""


def test_show_choices_cover_every_kind() -> None:
    from ckpt_gui.qt.diff.diff_model import KIND_LABELS, PENDING

    shown = set().union(*(kinds for kinds in SHOW_CHOICES.values() if kinds))
    assert shown | {PENDING} == set(KIND_LABELS)


def test_tab_context_menu_offers_compare_and_scan(
    qtbot, window, llama_dir, finetuned_dir, monkeypatch
):
    monkeypatch.setattr(compare_scan, "ask_compare_target", lambda *_: str(finetuned_dir))
    tab = open_tab(qtbot, window, llama_dir)
    menu = window.tab_menu(window.tab_widget.indexOf(tab))
    actions = {a.text(): a for a in menu.actions() if a.text()}
    assert list(actions)[-3:] == ["Compare With…", "Scan All Tensors", "Close Tab"]
    actions["Scan All Tensors"].trigger()
    panel = tab.findChild(ScanPanel)
    assert panel is not None
    qtbot.waitUntil(lambda: not panel.is_busy, timeout=30_000)
    actions["Compare With…"].trigger()
    view = window.tab_widget.currentWidget()
    assert isinstance(view, DiffView)
    wait_done(qtbot, view)
    # The diff tab's own menu only closes it.
    diff_menu = window.tab_menu(window.tab_widget.indexOf(view))
    assert [a.text() for a in diff_menu.actions() if a.text()] == ["Close Tab"]
    assert window.tab_menu(99) is None


def test_command_line_compare_and_scan(
    qtbot, window, features, llama_dir, finetuned_dir, damaged_files
):
    """``ckpt-gui A --compare B`` / ``ckpt-gui F --scan BF16`` act once the tab has loaded."""
    import argparse

    from ckpt_gui.cli import build_gui_parser
    from ckpt_gui.qt.app import _compare_or_scan

    args = build_gui_parser().parse_args([str(llama_dir), "--compare", str(finetuned_dir)])
    tabs = window.open_targets([str(t) for t in args.targets])
    _compare_or_scan(features, tabs, args)  # before the tab has loaded: waits for it
    qtbot.waitUntil(lambda: isinstance(window.tab_widget.currentWidget(), DiffView), timeout=30_000)
    view = window.tab_widget.currentWidget()
    assert (view.a_target, view.b_target) == (str(llama_dir), str(finetuned_dir))
    wait_done(qtbot, view)
    assert build_gui_parser().parse_args(["x", "--scan"]).scan == "F16"
    args = argparse.Namespace(compare=None, scan="BF16")
    (tab,) = window.open_targets([str(damaged_files["safetensors"])])
    _compare_or_scan(features, [tab], args)
    qtbot.waitUntil(lambda: tab.findChild(ScanPanel) is not None, timeout=30_000)
    panel = tab.findChild(ScanPanel)
    qtbot.waitUntil(lambda: panel.report is not None, timeout=30_000)
    assert panel.report.target_dtype == "BF16"
