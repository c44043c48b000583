"""Scan panel: injected NaN/Inf/zeros/extremes flagged in the table and the tree, off the GUI thread."""

from __future__ import annotations

import threading
from pathlib import Path

from ckpt_gui.core.formats import open_checkpoint
from ckpt_gui.core.jobs import run_to_completion
from ckpt_gui.core.values.scan import scan
from ckpt_gui.qt.inspect.checkpoint_tab import CheckpointTab
from ckpt_gui.qt.scan import scan_panel
from ckpt_gui.qt.scan.scan_model import ScanColumn
from ckpt_gui.qt.scan.scan_panel import ScanPanel
from tests.support.diffscan_data import BIG_KEY, INF_KEY, NAN_KEY, ZERO_KEY


def open_tab(qtbot, window, target: Path) -> CheckpointTab:
    (tab,) = window.open_targets([str(target)])
    qtbot.waitUntil(lambda: tab.checkpoint is not None and window.is_idle(), timeout=30_000)
    return tab


def run_scan(qtbot, window, features, tab: CheckpointTab) -> ScanPanel:
    panel = features.scan.scan(tab)
    assert panel is not None and panel.is_busy
    qtbot.waitUntil(lambda: not panel.is_busy, timeout=30_000)
    return panel


def test_injected_problems_are_flagged(qtbot, qtmodeltester, window, features, damaged_files):
    target = damaged_files["safetensors"]
    tab = open_tab(qtbot, window, target)
    panel = run_scan(qtbot, window, features, tab)
    assert tab.findChild(ScanPanel) is panel
    core = run_to_completion(scan(open_checkpoint(target)))
    assert panel.report is not None and panel.report.to_json() == core.to_json()
    model = panel.model
    shown = {model.scan_at(r).name: model.scan_at(r) for r in range(model.rowCount())}
    assert set(shown) == {NAN_KEY, INF_KEY, ZERO_KEY, BIG_KEY}
    # Sorted by severity: NaN, Inf, extreme, all zero.
    proxy = panel.proxy
    order = [proxy.index(r, ScanColumn.TENSOR).data() for r in range(proxy.rowCount())]
    assert order == [NAN_KEY, INF_KEY, BIG_KEY, ZERO_KEY]
    problems = [proxy.index(r, ScanColumn.PROBLEMS).data() for r in range(proxy.rowCount())]
    assert problems == ["NaN", "Inf", "extreme", "all zero"]
    assert proxy.index(0, ScanColumn.NAN).data() == "3"
    assert panel.table.isVisibleTo(panel)
    assert "4 tensor(s) flagged" in panel.result_label.text()
    # Tree rows carry the problem as their status; modules show the worst below them.
    tree = tab.tree.model
    nodes = {node.path: node for node in tree.root.walk()}
    assert tree.status_of(nodes[NAN_KEY]) == "nan"
    assert tree.status_of(nodes[INF_KEY]) == "inf"
    assert tree.status_of(nodes[ZERO_KEY]) == "all_zero"
    assert tree.status_of(nodes[BIG_KEY]) == "extreme"
    assert tree.status_of(nodes["model.layers.1"]) == "inf"
    assert tree.status_of(nodes["model"]) == "nan"
    assert tree.status_of(nodes["model.norm.weight"]) is None
    # The flagged rows are revealed in the tree, and a double-click selects one.
    index = tab.tree.proxy.mapFromSource(tree.index_of(nodes[INF_KEY]))
    assert tab.tree.view.isExpanded(index.parent())
    panel._activated(proxy.index(1, 0))
    assert tab.tree.current_node() is nodes[INF_KEY]
    qtmodeltester.check(model)
    qtmodeltester.check(proxy)


def test_clean_checkpoint_says_clean(qtbot, window, features, llama_dir):
    tab = open_tab(qtbot, window, llama_dir)
    panel = run_scan(qtbot, window, features, tab)
    assert panel.report is not None and panel.report.clean
    assert panel.model.rowCount() == 0 and not panel.table.isVisibleTo(panel)
    text = panel.result_label.text()
    assert "Clean" in text and f"{len(tab.checkpoint.tensors):,} tensors" in text


def test_target_dtype_choice_reaches_the_core(qtbot, window, damaged_files):
    tab = open_tab(qtbot, window, damaged_files["safetensors"])
    panel = ScanPanel(tab.checkpoint)
    qtbot.addWidget(panel)
    panel.set_target_dtype(None)
    panel.start()
    qtbot.waitUntil(lambda: not panel.is_busy, timeout=30_000)
    assert panel.report.target_dtype is None
    assert {t.name for t in panel.report.flagged} == {NAN_KEY, INF_KEY, ZERO_KEY}


def test_scan_runs_off_the_gui_thread_and_cancels(
    qtbot, window, features, damaged_files, monkeypatch
):
    threads: list[threading.Thread] = []
    reached, gate = threading.Event(), threading.Event()

    def slow_scan(*args, **kwargs):
        threads.append(threading.current_thread())
        kwargs["chunk_elements"] = 64
        inner = scan(*args, **kwargs)
        steps = 0
        try:
            while True:
                try:
                    progress = next(inner)
                except StopIteration as stop:
                    return stop.value
                steps += 1
                if steps == 20:
                    reached.set()
                    gate.wait(30)
                yield progress
        finally:
            inner.close()

    monkeypatch.setattr(scan_panel, "scan", slow_scan)
    tab = open_tab(qtbot, window, damaged_files["safetensors"])
    panel = features.scan.scan(tab)
    qtbot.waitUntil(reached.is_set, timeout=30_000)
    assert panel.is_busy and panel.cancel_button.isVisibleTo(panel)
    panel.cancel()
    gate.set()
    qtbot.waitUntil(lambda: not panel.is_busy, timeout=30_000)
    assert threads and threads[0] is not threading.main_thread()
    assert panel.cancelled and panel.report is None
    assert "Cancelled" in panel.result_label.text()
    assert not any(t.name == "tensor-stream" for t in threading.enumerate())
    assert panel.scan_button.isEnabled()  # ready to scan again


def test_remote_checkpoint_cannot_be_scanned(qtbot, llama_dir):
    import dataclasses

    remote = dataclasses.replace(open_checkpoint(llama_dir), root=None, source="acme/tiny")
    panel = ScanPanel(remote)
    qtbot.addWidget(panel)
    panel.start()
    assert not panel.is_busy and not panel.scan_button.isEnabled()
    assert "on the Hub" in panel.result_label.text()
