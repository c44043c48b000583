"""The main window: opening (off the GUI thread), errors in tabs, drops, welcome, recent."""

from __future__ import annotations

import json
import shutil
import threading
from pathlib import Path

import pytest
from PySide6.QtCore import QMimeData, QPointF, Qt, QUrl
from PySide6.QtGui import QDropEvent, QGuiApplication

import ckpt_gui.qt.inspect.checkpoint_tab as checkpoint_tab
from ckpt_gui.core.targets import open_target_job
from ckpt_gui.qt.drops import hub_target, targets_from_mime
from ckpt_gui.qt.inspect.checkpoint_tab import DEMO_TARGET


def wait_loaded(qtbot, window, count: int | None = None) -> None:
    qtbot.waitUntil(lambda: window.tabs() and window.is_idle(), timeout=30_000)
    if count is not None:
        assert len(window.tabs()) == count


def drop(window, mime: QMimeData) -> None:
    event = QDropEvent(
        QPointF(10, 10),
        Qt.DropAction.CopyAction,
        mime,
        Qt.MouseButton.LeftButton,
        Qt.KeyboardModifier.NoModifier,
    )
    window.dropEvent(event)


def test_without_tabs_the_welcome_view_shows(window) -> None:
    assert window._stack.currentWidget() is window.welcome
    assert window.current_tab() is None


def test_opening_reads_on_a_worker_thread(qtbot, window, llama_dir, monkeypatch) -> None:
    threads: list[threading.Thread] = []

    def recording_open(target):
        threads.append(threading.current_thread())
        return (yield from open_target_job(target))

    monkeypatch.setattr(checkpoint_tab, "open_target_job", recording_open)
    window.open_targets([str(llama_dir)])
    wait_loaded(qtbot, window, 1)
    assert threads and threads[0] is not threading.main_thread()
    tab = window.current_tab()
    assert tab.checkpoint is not None and tab.error is None
    assert tab.tree.model.root.tensor_count == len(tab.checkpoint.tensors)
    from ckpt_gui.qt.inspect.summary import SummaryHeader

    header = tab.findChild(SummaryHeader)
    assert "LlamaForCausalLM" in header.label.text()
    assert f"{tab.checkpoint.total_parameters:,}" in header.label.text()


def test_unreadable_file_shows_the_error_in_its_tab(qtbot, window, tmp_path: Path) -> None:
    bad = tmp_path / "broken.safetensors"
    bad.write_bytes(b"\xff" * 64)
    window.open_targets([str(bad)])
    wait_loaded(qtbot, window, 1)
    tab = window.current_tab()
    assert tab.checkpoint is None
    assert tab.error and tab.error.startswith(str(bad))
    assert "\n" not in tab.error
    assert tab.error_label.text() == tab.error
    assert tab.error_label.isVisible()


def test_drop_files_and_folders_opens_one_tab_each(
    qtbot, window, llama_dir, llama_sharded_dir
) -> None:
    mime = QMimeData()
    mime.setUrls(
        [
            QUrl.fromLocalFile(str(llama_dir / "model.safetensors")),
            QUrl.fromLocalFile(str(llama_sharded_dir)),
        ]
    )
    assert targets_from_mime(mime) == [str(llama_dir / "model.safetensors"), str(llama_sharded_dir)]
    drop(window, mime)
    wait_loaded(qtbot, window, 2)
    assert all(tab.checkpoint is not None for tab in window.tabs())
    sharded = window.tabs()[1].checkpoint
    assert len({t.file for t in sharded.tensors}) > 1


def test_dropping_hub_text_keeps_revisions_and_opens_from_the_hub(qtbot, window, hub) -> None:
    from tests.support.fake_hub import fake_commit

    url = f"{hub.endpoint}/org/tiny/tree/v1"
    mime = QMimeData()
    mime.setText(f"{url}\norg/tiny-sharded\n")
    assert targets_from_mime(mime) == [url, "org/tiny-sharded"]
    drop(window, mime)
    wait_loaded(qtbot, window, 2)
    tagged, sharded = window.tabs()
    assert tagged.target == url and tagged.title == "tiny@v1"
    facts = tagged.checkpoint.metadata["hub"]
    assert facts["revision"] == "v1" and facts["commit"] == fake_commit("org/tinyv1")
    assert len(tagged.checkpoint.files) > 1  # v1 is the sharded upload, main is one file
    assert sharded.checkpoint.metadata["hub"]["revision"] == "main"
    assert not any(r.path.endswith(".safetensors") and r.range is None for r in hub.log)


def test_dropped_hub_urls_keep_revision_and_file(window) -> None:
    mime = QMimeData()
    tree = "https://huggingface.co/org/name/tree/v2.0"
    blob = "https://huggingface.co/org/name/blob/refs%2Fpr%2F3/model.safetensors"
    mime.setUrls([QUrl(tree), QUrl(blob), QUrl("https://huggingface.co/datasets/org/data")])
    assert targets_from_mime(mime) == [tree, blob]


def test_text_that_is_not_a_target_is_ignored(window) -> None:
    mime = QMimeData()
    mime.setText("hello world, not a path")
    assert targets_from_mime(mime) == []
    drop(window, mime)
    assert window.tabs() == []


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("meta-llama/Llama-3.2-1B", "meta-llama/Llama-3.2-1B"),
        ("  org/name@v1.0 ", "org/name@v1.0"),
        (
            "https://huggingface.co/org/name/blob/main/model.safetensors",
            "https://huggingface.co/org/name/blob/main/model.safetensors",
        ),
        ("https://huggingface.co/org/name/tree/dev", "https://huggingface.co/org/name/tree/dev"),
        ("https://hf.co/org/name", "https://hf.co/org/name"),
        ("https://huggingface.co/datasets/org/name", None),
        ("https://example.com/org/name", None),
        ("just words", None),
        ("a/b/c", None),
        ("org/name@", None),
    ],
)
def test_hub_target(text: str, expected: str | None) -> None:
    assert hub_target(text) == expected


def test_text_paths_and_file_urls_are_accepted(llama_dir) -> None:
    mime = QMimeData()
    mime.setText(f"{llama_dir}\nfile://{llama_dir / 'config.json'}")
    assert targets_from_mime(mime) == [str(llama_dir), str(llama_dir / "config.json")]


def test_closing_all_tabs_returns_to_welcome_with_recent(
    qtbot, window, llama_dir, settings
) -> None:
    window.open_targets([str(llama_dir)])
    wait_loaded(qtbot, window, 1)
    assert window._stack.currentWidget() is window.tab_widget
    window.close_current()
    assert window._stack.currentWidget() is window.welcome
    assert window.recent_targets() == [str(llama_dir.resolve())]
    assert window.welcome.recent_list.item(0).text() == str(llama_dir.resolve())
    assert settings.value("recent") in ([str(llama_dir.resolve())], str(llama_dir.resolve()))


def test_demo_opens_in_a_tab_off_the_gui_thread(qtbot, window, llama_dir, monkeypatch) -> None:
    monkeypatch.setenv("CKPT_GUI_DEMO_DIR", str(llama_dir))
    window.open_targets([DEMO_TARGET])
    wait_loaded(qtbot, window, 1)
    tab = window.current_tab()
    assert tab.title == "Demo (tiny Llama)"
    assert tab.checkpoint is not None and tab.checkpoint.config is not None


def test_group_copy_and_export(qtbot, window, llama_dir, tmp_path: Path) -> None:
    window.open_targets([str(llama_dir)])
    wait_loaded(qtbot, window, 1)
    tree = window.current_tab().tree
    window.group_action.trigger()
    assert tree.group_box.isChecked()
    layers = tree.model.root.find("model.layers")
    assert [c.name for c in layers.children] == ["{0..1}"]
    window.group_action.trigger()
    assert [c.name for c in tree.model.root.find("model.layers").children] == ["0", "1"]

    node = tree.model.root.find("model.norm.weight")
    tree.select_node(node)
    tree.copy_name()
    assert QGuiApplication.clipboard().text() == "model.norm.weight"
    tree.copy_selection()
    lines = QGuiApplication.clipboard().text().splitlines()
    assert lines[0].startswith("Name\tShape") and lines[1].startswith("model.norm.weight\t32\tF32")

    tree.filter_edit.setText("norm")
    tree.apply_filter()
    rows = json.loads(tree.export_text("json"))
    assert {r["name"] for r in rows if r["kind"] == "tensor"} == {
        "model.norm.weight",
        *(
            f"model.layers.{i}.{n}.weight"
            for i in (0, 1)
            for n in ("input_layernorm", "post_attention_layernorm")
        ),
    }
    assert tree.export_text("csv").startswith("name,kind,shape")
    assert tree.export_text("md").startswith("| name | kind |")


def test_stats_panel_matches_core_stats(qtbot, window, llama_dir) -> None:
    from ckpt_gui.core.values.stats import compute_stats

    window.open_targets([str(llama_dir)])
    wait_loaded(qtbot, window, 1)
    tab = window.current_tab()
    node = tab.tree.model.root.find("model.layers.1.mlp.up_proj.weight")
    with qtbot.waitSignal(tab.details.stats_ready, timeout=30_000) as blocker:
        tab.tree.select_node(node)  # small tensor: statistics start by themselves
    expected = compute_stats(tab.checkpoint, node.tensor)
    assert blocker.args[0] == expected
    assert tab.details.histogram.isVisible()
    texts = [w.text() for w in tab.details.stats_box.findChildren(type(tab.details.title))]
    assert f"{expected.mean:.6g}" in texts


def test_module_selection_shows_breakdown(qtbot, window, llama_dir) -> None:
    window.open_targets([str(llama_dir)])
    wait_loaded(qtbot, window, 1)
    tab = window.current_tab()
    tab.tree.select_node(tab.tree.model.root.find("model.layers.0"))
    table = tab.details.breakdown
    names = {table.item(r, 0).text() for r in range(table.rowCount())}
    assert names == {"self_attn", "mlp", "input_layernorm", "post_attention_layernorm"}
    assert tab.details.dtype_table.item(0, 0).text() == "F32"


def test_reload_and_extension_points(qtbot, window, llama_dir, tmp_path: Path) -> None:
    from PySide6.QtWidgets import QDockWidget, QLabel

    folder = tmp_path / "copy"
    shutil.copytree(llama_dir, folder)
    window.open_targets([str(folder)])
    wait_loaded(qtbot, window, 1)
    tab = window.current_tab()
    tab.add_panel(QLabel("mismatches"), "Mismatches")
    tab.set_row_status({"lm_head.weight": "missing"})
    (folder / "model.safetensors").write_bytes(b"garbage!" * 8)
    window.reload_current()
    qtbot.waitUntil(lambda: tab.error is not None, timeout=30_000)
    assert str(folder) in tab.error
    export_menu = window.menu("&Export")
    titles = [a.text() for a in window.menuBar().actions()]
    assert titles.index("&Export") < titles.index("&Help")  # new menus go before Help
    assert window.menu("&Export") is export_menu
    dock = QDockWidget("Jobs")
    window.add_dock(dock)
    assert dock.toggleViewAction() in window.menu("&View").actions()


def test_closing_a_tab_while_it_loads_is_harmless(qtbot, window, llama_dir, monkeypatch) -> None:
    release = threading.Event()

    def slow_open(target):
        release.wait(10)
        return (yield from open_target_job(target))

    monkeypatch.setattr(checkpoint_tab, "open_target_job", slow_open)
    window.open_targets([str(llama_dir)])
    tab = window.current_tab()
    assert tab.is_busy and tab._stack.currentIndex() == 0  # the busy page
    worker = tab._worker
    window.close_current()
    assert worker.should_stop  # the load was cancelled, its result will be dropped
    release.set()
    qtbot.waitUntil(window.is_idle, timeout=30_000)
    assert window.tabs() == [] and window._stack.currentWidget() is window.welcome


def test_standard_shortcuts(window) -> None:
    shortcuts = {
        a.text(): a.shortcut().toString() for menu in window._menus.values() for a in menu.actions()
    }
    assert shortcuts["&Open File…"] == "Ctrl+O"
    assert shortcuts["&Close Tab"] == "Ctrl+W"
    assert shortcuts["&Find…"] == "Ctrl+F"
    assert shortcuts["&Reload"] == "F5"


def test_group_breakdown_covers_all_blocks(qtbot, window, llama_dir) -> None:
    window.open_targets([str(llama_dir)])
    wait_loaded(qtbot, window, 1)
    tab = window.current_tab()
    tab.tree.set_grouped(True)
    group = tab.tree.model.root.find("model.layers").children[0]
    tab.tree.select_node(group)
    table = tab.details.breakdown
    shares = [float(table.item(r, 2).text().rstrip("%")) for r in range(table.rowCount())]
    assert sum(shares) == pytest.approx(100, abs=0.5)


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # Qt's only drag-enter constructor
def test_drag_enter_accepts_only_openable_content(window, llama_dir) -> None:
    from PySide6.QtCore import QPoint
    from PySide6.QtGui import QDragEnterEvent

    def enter(mime: QMimeData) -> bool:
        event = QDragEnterEvent(
            QPoint(5, 5),
            Qt.DropAction.CopyAction,
            mime,
            Qt.MouseButton.LeftButton,
            Qt.KeyboardModifier.NoModifier,
        )
        window.dragEnterEvent(event)
        return event.isAccepted()

    folder = QMimeData()
    folder.setUrls([QUrl.fromLocalFile(str(llama_dir))])
    repo = QMimeData()
    repo.setText("org/model")
    prose = QMimeData()
    prose.setText("some words")
    assert enter(folder) and enter(repo)
    assert not enter(prose)
