"""The comparison in the GUI: statuses in the tree, ghost rows, the mismatch table,
show-only-problems, the background run, the export bridge and remote-code refusals."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from PySide6.QtCore import QModelIndex, Qt

import ckpt_gui.qt.check.controller as controller_module
from ckpt_gui.core.check.status import KeyStatus
from ckpt_gui.core.targets import open_target
from ckpt_gui.core.tree.ghosts import GHOST_FILE, is_ghost
from ckpt_gui.qt.check.controller import controller_for
from ckpt_gui.qt.check.mismatch_panel import (
    MismatchPanel,
    ProblemColumn,
    ProblemTableModel,
    RowRole,
)
from ckpt_gui.qt.check.status_style import install_status_colors
from ckpt_gui.qt.check.view_model import ConfigChoice, run_comparison
from ckpt_gui.qt.models.tree_model import (
    GHOST_COLOR,
    STATUS_COLORS,
    CheckpointTreeModel,
    Column,
    StatusRole,
)
from ckpt_gui.qt.runtime.workers import active_workers
from tests.qt.check.conftest import DROPPED, EXTRA, IGNORED, WRONG

REPO_ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture(autouse=True)
def _application(qapp):
    """Icons are pixmaps: they need the QApplication."""
    return qapp


@pytest.fixture(scope="module")
def broken_result(broken_dir: Path):
    return run_comparison(open_target(broken_dir), ConfigChoice("own"))


def tree_model_for(result) -> CheckpointTreeModel:
    install_status_colors()
    model = CheckpointTreeModel(result.root)
    model.set_row_status(result.report.status_by_key)
    return model


def index_at(model: CheckpointTreeModel, path: str, column: int = Column.NAME) -> QModelIndex:
    node = model.root.find(path)
    assert node is not None, path
    return model.index_of(node, column)


# -- models -------------------------------------------------------------------------------------
def test_tree_with_ghost_rows_passes_modeltester(qtmodeltester, broken_result) -> None:
    qtmodeltester.check(tree_model_for(broken_result))


def test_problem_table_passes_modeltester(qtmodeltester, broken_result) -> None:
    model = ProblemTableModel()
    model.set_rows(broken_result.problems)
    assert model.rowCount() == 3
    qtmodeltester.check(model)
    model.set_rows([])
    qtmodeltester.check(model)


# -- statuses ------------------------------------------------------------------------------------
def test_each_status_has_its_colour_and_icon(broken_result) -> None:
    model = tree_model_for(broken_result)
    expected = {
        "model.embed_tokens.weight": KeyStatus.OK,
        DROPPED: KeyStatus.MISSING,
        EXTRA: KeyStatus.UNEXPECTED,
        WRONG: KeyStatus.MISMATCHED,
        IGNORED: KeyStatus.IGNORED,
    }
    for path, status in expected.items():
        index = index_at(model, path)
        assert model.data(index, StatusRole) == status, path
        assert not model.data(index, Qt.ItemDataRole.DecorationRole).isNull(), path
        brush = model.data(index, Qt.ItemDataRole.ForegroundRole)
        if path == DROPPED:
            assert brush.color() == GHOST_COLOR  # ghost rows are greyed
        elif status == KeyStatus.OK:
            assert brush is None
        else:
            assert brush.color() == STATUS_COLORS[status], path
    icons = {
        status: model.data(index_at(model, path), Qt.ItemDataRole.DecorationRole).cacheKey()
        for path, status in expected.items()
    }
    assert len(set(icons.values())) == len(icons)  # one icon per status
    # Modules take the worst status below them: layer 0 has a mismatch, layer 1 a missing key.
    assert model.data(index_at(model, "model.layers.0"), StatusRole) == KeyStatus.MISMATCHED
    assert model.data(index_at(model, "model.layers.1"), StatusRole) == "missing"
    assert model.data(index_at(model, "lm_head"), StatusRole) == "ok"


def test_ghost_rows_sit_in_their_module_with_the_model_shape(broken_result) -> None:
    model = tree_model_for(broken_result)
    ghost = model.root.find(DROPPED)
    assert ghost is not None and is_ghost(ghost.tensor)
    siblings = [c.name for c in ghost.parent.parent.children]
    # In its module (layer 1's self_attn), after the real siblings the file has.
    assert sorted(siblings) == ["k_proj", "o_proj", "q_proj", "v_proj"]
    assert siblings[-1] == "k_proj" and ghost.parent.parent.path == "model.layers.1.self_attn"
    index = model.index_of(ghost)
    assert model.data(index.siblingAtColumn(Column.SHAPE)) == "16 × 32"  # model: kv heads 2 × 8
    assert model.data(index.siblingAtColumn(Column.PARAMETERS)) == "—"
    assert model.data(index.siblingAtColumn(Column.FILE)) == GHOST_FILE
    assert model.data(index, Qt.ItemDataRole.FontRole).italic()
    # Totals stay the checkpoint's own.
    checkpoint = open_target(Path(broken_result.report.checkpoint))
    assert model.root.parameters == checkpoint.total_parameters
    assert model.root.tensor_count == len(checkpoint.tensors)
    ghosts = [n for n in model.root.walk() if is_ghost(n.tensor)]
    assert [g.path for g in ghosts] == [DROPPED]


def test_mismatch_table_groups_layers_and_whole_modules(clean_dir: Path) -> None:
    checkpoint = open_target(clean_dir)
    wider = run_comparison(checkpoint, ConfigChoice("own", overrides={"intermediate_size": 40}))
    model = ProblemTableModel()
    model.set_rows(wider.problems)
    rows = {model.data(model.index(r, ProblemColumn.KEY)): r for r in range(model.rowCount())}
    row = rows["model.layers.{0..1}.mlp.up_proj.weight"]
    assert model.data(model.index(row, ProblemColumn.KIND)) == "shape mismatch"
    assert model.data(model.index(row, ProblemColumn.COUNT)) == "2"
    assert model.data(model.index(row, ProblemColumn.CHECKPOINT_SHAPE)) == "48 × 32"
    assert model.data(model.index(row, ProblemColumn.MODEL_SHAPE)) == "40 × 32"
    assert model.data(model.index(row, 0), RowRole).tree_paths == (
        "model.layers.0.mlp.up_proj.weight",
        "model.layers.1.mlp.up_proj.weight",
    )
    assert len(rows) == 3  # gate, up, down: one row each for both layers
    deeper = run_comparison(checkpoint, ConfigChoice("own", overrides={"num_hidden_layers": 4}))
    model.set_rows(deeper.problems)
    assert [model.data(model.index(r, ProblemColumn.KEY)) for r in range(model.rowCount())] == [
        "model.layers.{2..3}.*"
    ]
    assert model.data(model.index(0, ProblemColumn.COUNT)) == str(len(deeper.report.missing))


# -- the window --------------------------------------------------------------------------------
def open_and_compare(qtbot, window, folder: Path):
    window.open_targets([str(folder)])
    qtbot.waitUntil(lambda: window.tabs() and window.is_idle(), timeout=60_000)
    tab = window.current_tab()
    controller = controller_for(tab)
    assert controller is not None
    return tab, controller


def test_opening_compares_with_the_own_config(qtbot, window, broken_dir: Path) -> None:
    tab, controller = open_and_compare(qtbot, window, broken_dir)
    assert controller.result is not None and controller.error is None
    assert tab.tree.model.status_of(tab.tree.model.root.find(WRONG)) == KeyStatus.MISMATCHED
    assert is_ghost(tab.tree.model.root.find(DROPPED).tensor)
    legend = controller.bar.legend.labels
    assert (
        legend[KeyStatus.MISSING]
        .text()
        .startswith("<span style='color:#c62828; font-weight:bold'>1<")
    )
    assert (
        ">1<" in legend[KeyStatus.UNEXPECTED].text()
        and ">1<" in legend[KeyStatus.MISMATCHED].text()
    )
    assert "does NOT load cleanly" in controller.bar.verdict.text()
    assert controller.bar.isVisibleTo(tab) and controller.panel.isVisibleTo(tab)
    assert controller.panel.model.rowCount() == 3


def test_show_only_problems(qtbot, window, features, broken_dir: Path) -> None:
    tab, controller = open_and_compare(qtbot, window, broken_dir)
    tree = tab.tree
    controller.set_problems_only(True)
    shown = {n.path for n in tree.model.root.walk() if n.is_tensor and tree.proxy.accepts(n)}
    assert shown == {DROPPED, EXTRA, WRONG}
    assert tree.proxy.mapFromSource(index_at(tree.model, "model.layers.1")).isValid()
    assert not tree.proxy.mapFromSource(index_at(tree.model, "lm_head")).isValid()
    features.check.problems_action.setChecked(False)
    assert tree.proxy.mapFromSource(index_at(tree.model, "lm_head")).isValid()


def test_selecting_a_problem_reveals_it_in_the_tree(qtbot, window, broken_dir: Path) -> None:
    tab, controller = open_and_compare(qtbot, window, broken_dir)
    table = controller.panel.table
    for row in range(controller.panel.model.rowCount()):
        problem = controller.panel.model.row_at(row)
        table.selectRow(row)
        assert tab.tree.current_node().path == problem.tree_paths[0]
    assert {controller.panel.model.row_at(r).kind for r in range(3)} == {
        KeyStatus.MISMATCHED,
        KeyStatus.MISSING,
        KeyStatus.UNEXPECTED,
    }


def test_comparison_runs_off_the_gui_thread(
    qtbot, window, clean_dir: Path, monkeypatch, request
) -> None:
    gate = threading.Event()
    request.addfinalizer(gate.set)  # never leave the worker blocked, even on failure
    threads: list[threading.Thread] = []

    def gated(checkpoint, choice, plain_root=None):
        threads.append(threading.current_thread())
        gate.wait(30)
        return run_comparison(checkpoint, choice, plain_root)

    monkeypatch.setattr(controller_module, "run_comparison", gated)
    window.open_targets([str(clean_dir)])
    tab = window.current_tab()
    qtbot.waitUntil(lambda: tab.tree is not None and bool(threads), timeout=30_000)
    controller = controller_for(tab)
    assert controller.is_running and controller.bar.busy.isVisibleTo(tab)
    # The tree is usable while the comparison waits.
    tab.tree.filter_edit.setText("mlp")
    tab.tree.apply_filter()
    assert tab.tree.count_label.text().startswith("6 of")
    gate.set()
    qtbot.waitUntil(lambda: not controller.is_running, timeout=60_000)
    assert threads[0] is not threading.main_thread()
    assert controller.result is not None and controller.result.report.clean
    assert not controller.bar.busy.isVisibleTo(tab)
    assert "loads cleanly" in controller.bar.verdict.text()


def test_remote_code_config_is_refused_and_an_architecture_offered(
    qtbot, window, remote_code_dir: Path
) -> None:
    tab, controller = open_and_compare(qtbot, window, remote_code_dir)
    assert controller.result is None
    assert "custom code" in controller.error
    assert "custom code" in controller.bar.verdict.text()
    assert controller.bar.architecture_button.isVisibleTo(tab)
    assert tab.tree.model.status_of(tab.tree.model.root.find("lm_head.weight")) is None
    controller.bar.architecture_button.click()
    picker = tab.findChild(controller_module.ConfigPicker)
    assert picker is not None and picker.kind == "architecture"
    picker.arch_combo.setEditText("LlamaForCausalLM")
    picker.accept()
    qtbot.waitUntil(
        lambda: not controller.is_running and controller.result is not None, timeout=60_000
    )
    assert controller.result.report.clean
    assert not controller.bar.architecture_button.isVisibleTo(tab)


# -- export bridge ----------------------------------------------------------------------------
def test_export_with_this_fix_exports_a_checkpoint_that_fits(
    qtbot, window, features, ddp_dir: Path, tmp_path: Path
) -> None:
    """The suggestion's button opens the export dialog prefilled; its output loads cleanly."""
    _tab, controller = open_and_compare(qtbot, window, ddp_dir)
    panel: MismatchPanel = controller.panel
    assert "strip the prefix 'module.'" in panel.suggestions[0].text
    panel.export_buttons[0].click()
    dialog = controller.export_dialog
    assert dialog.kind == "safetensors" and dialog.strip_edit.text() == "module"
    out = tmp_path / "fixed"
    dialog.output_edit.setText(str(out))
    dialog.output_edit.textEdited.emit(str(out))
    dialog.replan()
    qtbot.waitUntil(
        lambda: (dialog.plan is not None or dialog.error is not None) and not dialog.is_planning,
        timeout=60_000,
    )
    assert dialog.plan is not None, dialog.error
    dialog.start_button.click()
    job = features.exports.queue.jobs[-1]
    qtbot.waitUntil(lambda: job.state.finished, timeout=120_000)
    assert job.state.name == "DONE", job.error
    fixed = open_target(out)
    report = run_comparison(fixed, ConfigChoice("path", str(ddp_dir / "config.json"))).report
    assert report.clean and report.counts["ok"] == len(fixed.tensors)


def test_a_failed_comparison_clears_statuses_and_ghost_rows(
    qtbot, window, broken_dir: Path, tmp_path: Path
) -> None:
    tab, controller = open_and_compare(qtbot, window, broken_dir)
    assert tab.tree.model.root.find(DROPPED) is not None
    controller.compare(ConfigChoice("path", str(tmp_path / "no-such-config.json")))
    qtbot.waitUntil(lambda: not controller.is_running, timeout=30_000)
    assert controller.result is None and "no such file or folder" in controller.error
    assert tab.tree.model.root.find(DROPPED) is None  # the ghost row is gone
    assert tab.tree.model.status_of(tab.tree.model.root.find(WRONG)) is None
    assert not controller.bar.architecture_button.isVisibleTo(tab)
    assert controller.panel.model.rowCount() == 0


def test_a_config_suggestion_can_be_tried_at_once(qtbot, window, clean_dir: Path) -> None:
    _tab, controller = open_and_compare(qtbot, window, clean_dir)
    controller.compare(ConfigChoice("own", overrides={"intermediate_size": 40}))
    qtbot.waitUntil(lambda: not controller.is_running, timeout=60_000)
    panel = controller.panel
    assert "set intermediate_size=48" in panel.suggestions[0].text
    panel.override_buttons[0].click()
    qtbot.waitUntil(lambda: not controller.is_running, timeout=60_000)
    assert controller.choice.overrides == {"intermediate_size": 48}
    assert controller.result.report.clean and "loads cleanly" in controller.bar.verdict.text()


def test_reloading_compares_again(qtbot, window, broken_dir: Path) -> None:
    tab, controller = open_and_compare(qtbot, window, broken_dir)
    first = controller.result
    tab.reload()
    qtbot.waitUntil(lambda: window.is_idle() and controller.result is not first, timeout=60_000)
    assert controller.bar.isVisibleTo(tab)  # moved into the new summary header
    assert tab.tree.model.root.find(DROPPED) is not None
    assert controller.panel.model.rowCount() == 3


def test_wholly_unexpected_and_missing_modules_are_one_row_each(ddp_dir: Path) -> None:
    result = run_comparison(open_target(ddp_dir), ConfigChoice("own"))
    model = ProblemTableModel()
    model.set_rows(result.problems)
    cells = [
        tuple(model.data(model.index(r, c)) for c in ProblemColumn) for r in range(model.rowCount())
    ]
    checkpoint_keys = len(open_target(ddp_dir).tensors)
    assert cells == [
        ("missing", "lm_head.weight", "—", "64 × 32", "1"),
        ("missing", "model.*", "—", "(whole module)", str(checkpoint_keys - 1)),
        ("unexpected", "module.*", "(whole module)", "—", str(checkpoint_keys)),
    ]
    unexpected = model.data(model.index(2, 0), RowRole)
    assert sorted(unexpected.tree_paths) == sorted(t.name for t in open_target(ddp_dir).tensors)


def test_grouped_blocks_keep_statuses_and_ghosts(qtbot, window, clean_dir: Path) -> None:
    tab, controller = open_and_compare(qtbot, window, clean_dir)
    controller.compare(ConfigChoice("own", overrides={"num_hidden_layers": 3}))
    qtbot.waitUntil(lambda: not controller.is_running, timeout=60_000)
    tab.tree.set_grouped(True)
    layers = tab.tree.model.root.find("model.layers")
    names = [c.name for c in layers.children]
    assert names == ["{0..1}", "2"]  # the loaded layers group; the ghost layer stays apart
    model = tab.tree.model
    assert model.status_of(layers.children[0]) == "ok"
    assert model.status_of(layers.children[1]) == "missing"
    controller.set_problems_only(True)
    shown = [c.name for c in layers.children if tab.tree.proxy.accepts(c)]
    assert shown == ["2"]


def test_closing_a_tab_while_comparing_drops_the_result(
    qtbot, window, clean_dir: Path, monkeypatch, request
) -> None:
    gate = threading.Event()
    request.addfinalizer(gate.set)
    started = threading.Event()
    workers = []

    def gated(checkpoint, choice, plain_root=None):
        started.set()
        gate.wait(30)
        return run_comparison(checkpoint, choice, plain_root)

    monkeypatch.setattr(controller_module, "run_comparison", gated)
    window.open_targets([str(clean_dir)])
    qtbot.waitUntil(started.is_set, timeout=30_000)
    workers.append(controller_for(window.current_tab()).worker)
    window.close_current()
    qtbot.waitUntil(lambda: window.current_tab() is None, timeout=30_000)
    gate.set()
    # A worker leaves active_workers() on the last of its queued signals: by then its
    # result has been delivered to the closed tab's controller, and must have been harmless.
    qtbot.waitUntil(lambda: workers[0] not in active_workers(), timeout=60_000)
    assert window.tabs() == []
