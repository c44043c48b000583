"""The Hub in the window: Library dock, Open from Hub, shard progress, repo facts, downloads.

Everything runs against hand-built cache folders and the fake Hub on 127.0.0.1.
"""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from PySide6.QtCore import Qt

import ckpt_gui.qt.hub.library as library_module
from ckpt_gui.core.formats import open_checkpoint
from ckpt_gui.core.formatting import human_bytes
from ckpt_gui.core.hub.cache import default_cache_dir
from ckpt_gui.core.jobs import Progress
from ckpt_gui.qt.hub.hub_dialog import describe_hub_text
from ckpt_gui.qt.inspect.checkpoint_tab import title_for
from ckpt_gui.qt.inspect.summary import SummaryHeader
from tests.support.fake_hub import fake_commit, folder_files
from tests.support.hub_fixtures import build_cache_repo

MAIN = fake_commit("gui-main")
OLD = fake_commit("gui-old")


@pytest.fixture
def cache(llama_dir: Path, llama_sharded_dir: Path) -> Path:
    """Two models with weights (one with two revisions) and one config-only repo."""
    folder = default_cache_dir()
    single = folder_files(llama_dir)
    build_cache_repo(
        folder,
        "org/cached",
        {MAIN: single, OLD: {"config.json": single["config.json"]}},
        {"main": MAIN, "v0": OLD},
    )
    build_cache_repo(folder, "acme/sharded", {OLD: folder_files(llama_sharded_dir)}, {"main": OLD})
    build_cache_repo(folder, "other/config-only", {OLD: {"config.json": b"{}"}}, {"main": OLD})
    return folder


def rescan(qtbot, window, features) -> None:
    """A scan that starts now (the one started when the window was shown may be running)."""
    qtbot.waitUntil(lambda: not features.hub.library.is_busy, timeout=30_000)
    with qtbot.waitSignal(features.hub.library.refreshed, timeout=30_000):
        features.hub.library.refresh()
    qtbot.waitUntil(lambda: not features.hub.library.is_busy, timeout=30_000)


def wait_idle(qtbot, window) -> None:
    qtbot.waitUntil(lambda: bool(window.tabs()) and window.is_idle(), timeout=30_000)


def test_library_lists_cached_models_off_the_gui_thread(
    qtbot, window, features, cache: Path, monkeypatch
) -> None:
    threads: list[threading.Thread] = []
    real = library_module.list_cached_models

    def recording(cache_dir):
        threads.append(threading.current_thread())
        return real(cache_dir)

    monkeypatch.setattr(library_module, "list_cached_models", recording)
    rescan(qtbot, window, features)
    library = features.hub.library
    assert library.toggleViewAction() in window.menu("&View").actions()
    assert threads and threading.main_thread() not in threads
    assert library.visible_repo_ids() == ["acme/sharded", "org/cached", "other/config-only"]
    cached = library.item_for("org/cached")
    assert cached is not None
    assert cached.text(library_module.REFS) == "main, v0"
    assert MAIN in cached.toolTip(library_module.REFS)
    weights = library_module.WEIGHTS
    assert cached.text(weights) == "✓"
    assert library.item_for("other/config-only").text(weights) == "—"
    assert cached.childCount() == 2  # one row per revision
    assert "3 models" in library.footer.text() and str(cache) in library.footer.text()

    library.filter_edit.setText("CACHED")
    assert library.visible_repo_ids() == ["org/cached"]
    library.filter_edit.setText("nothing-like-this")
    assert library.visible_repo_ids() == []
    assert library._stack.currentWidget() is library.empty_label
    assert "No cached model matches" in library.empty_label.text()
    library.filter_edit.clear()
    assert len(library.visible_repo_ids()) == 3


def test_library_without_a_cache_says_so(qtbot, window, features) -> None:
    rescan(qtbot, window, features)
    library = features.hub.library
    assert library.models == [] and library.visible_repo_ids() == []
    assert library._stack.currentWidget() is library.empty_label
    assert "No models in the Hugging Face cache" in library.empty_label.text()


def test_library_double_click_opens_the_cached_snapshot_offline(
    qtbot, window, features, cache: Path, llama_dir: Path
) -> None:
    rescan(qtbot, window, features)
    tree = features.hub.library.tree
    item = features.hub.library.item_for("org/cached")
    rect = tree.visualItemRect(item)
    # A real double click is press, release, then the double-click event on the same row.
    qtbot.mouseClick(tree.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    qtbot.mouseDClick(tree.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    wait_idle(qtbot, window)
    tab = window.current_tab()
    assert tab.target == str(cache / "models--org--cached" / "snapshots" / MAIN)
    assert tab.title == f"cached@{MAIN[:7]}"
    expected = open_checkpoint(llama_dir)
    assert [(t.name, t.dtype, t.shape) for t in tab.checkpoint.tensors] == [
        (t.name, t.dtype, t.shape) for t in expected.tensors
    ]

    # Activation (Enter, or a double click) of another repo opens its snapshot too.
    features.hub.library._activated(features.hub.library.item_for("acme/sharded"))
    qtbot.waitUntil(lambda: len(window.tabs()) == 2 and window.is_idle(), timeout=30_000)
    assert window.current_tab().checkpoint.format == "safetensors-sharded"


def test_hub_text_is_described_before_opening() -> None:
    assert describe_hub_text("org/name") == "repo <b>org/name</b> (default branch)"
    assert "at <b>v1</b>" in describe_hub_text("https://huggingface.co/org/name/tree/v1")
    assert describe_hub_text("not a repo") is None
    assert title_for("org/name@v1") == "name@v1"
    assert title_for("https://huggingface.co/org/name/tree/main/unet") == "name@main/unet"


def test_open_from_hub_dialog_shows_progress_and_repo_facts(qtbot, window, features, hub) -> None:
    dialog = features.hub.open_dialog()
    dialog.edit.setText("not a repo id")
    assert not dialog.open_button.isEnabled()
    assert "Not a repo id" in dialog.hint.text()
    dialog.edit.setText("  org/tiny-sharded@main ")
    assert dialog.open_button.isEnabled()
    progress: list[Progress] = []
    window.tab_opened.connect(lambda tab: tab.progress.connect(progress.append))
    dialog.open_button.click()
    wait_idle(qtbot, window)
    tab = window.current_tab()
    assert tab.target == "org/tiny-sharded@main" and tab.error is None
    shards = [f for f in tab.checkpoint.files if f.path.endswith(".safetensors")]
    header_steps = [p for p in progress if "header" in p.message]
    assert header_steps and header_steps[-1].done == header_steps[-1].total == len(shards) > 2
    assert tab._busy_bar.format() == f"header {len(shards)}/{len(shards)}"  # what the user saw
    facts = tab.checkpoint.metadata["hub"]
    header = tab.findChild(SummaryHeader).label.text()
    assert facts["commit"][:12] in header
    assert f"in {facts['requests']} requests" in header
    assert tab.download_bar is not None  # read remotely: values need a download


def test_gated_repo_error_stays_in_its_tab(qtbot, window, hub) -> None:
    window.open_targets(["org/gated"])
    wait_idle(qtbot, window)
    tab = window.current_tab()
    assert tab.checkpoint is None and "gated" in tab.error and "\n" not in tab.error


def open_bin_repo(qtbot, window):
    window.open_targets(["org/tiny-bin"])
    wait_idle(qtbot, window)
    tab = window.current_tab()
    assert tab.error is None and tab.checkpoint.format.startswith("pytorch")
    assert tab.download_bar is not None and tab.download_bar.isVisible()
    dialog = tab.download_bar.open_dialog()
    qtbot.waitUntil(lambda: dialog.state == "confirm", timeout=30_000)
    return tab, dialog


def test_download_can_be_cancelled_without_leaving_a_partial_file(qtbot, window, held_hub) -> None:
    _tab, dialog = open_bin_repo(qtbot, window)
    plan = dialog.plan
    assert "pytorch_model.bin" in plan.files
    assert human_bytes(plan.total_bytes) in dialog.message.text()
    dialog.download_button.click()  # the weights stop after 4 kB until the job is cancelled
    qtbot.waitUntil(lambda: 0 < dialog.bar.value() < dialog.bar.maximum(), timeout=30_000)
    qtbot.waitUntil(lambda: "pytorch_model.bin" in dialog.detail.text(), timeout=30_000)
    dialog.cancel_button.click()
    qtbot.waitUntil(lambda: dialog.state == "cancelled", timeout=30_000)
    qtbot.waitUntil(lambda: not dialog.is_busy, timeout=30_000)
    repo = default_cache_dir() / "models--org--tiny-bin"
    assert not list(repo.rglob("*.incomplete"))
    assert not (repo / "snapshots" / plan.commit / "pytorch_model.bin").exists()
    assert not dialog.reopen_button.isVisible()


def test_download_then_reopen_reads_from_the_cache(
    qtbot, window, features, hub, llama_bin_dir
) -> None:
    tab, dialog = open_bin_repo(qtbot, window)
    with qtbot.waitSignal(features.hub.library.refreshed, timeout=30_000):
        dialog.download_button.click()  # when done, the Library scans the cache again
    assert dialog.state == "done"
    assert features.hub.library.visible_repo_ids() == ["org/tiny-bin"]
    snapshot = dialog.snapshot
    assert (snapshot / "pytorch_model.bin").read_bytes() == (
        llama_bin_dir / "pytorch_model.bin"
    ).read_bytes()
    assert dialog.reopen_button.isVisible()
    dialog.reopen_button.click()
    qtbot.waitUntil(
        lambda: tab.checkpoint is not None and tab.checkpoint.root is not None, timeout=30_000
    )
    wait_idle(qtbot, window)
    assert tab.checkpoint.root == snapshot
    assert tab.checkpoint.metadata["hub"]["opened_from"] == "cache"
    assert tab.download_bar is None


def test_closing_the_tab_cancels_its_download(qtbot, window, held_hub) -> None:
    _tab, dialog = open_bin_repo(qtbot, window)
    dialog.download_button.click()  # the weights stop after 4 kB until the job is cancelled
    qtbot.waitUntil(lambda: "pytorch_model.bin" in dialog.detail.text(), timeout=30_000)
    window.close_current()
    qtbot.waitUntil(lambda: not dialog.is_busy and window.is_idle(), timeout=30_000)
    assert not dialog.isVisible() and dialog.snapshot is None
    repo = default_cache_dir() / "models--org--tiny-bin"
    assert not list(repo.rglob("*.incomplete"))
    assert not list(repo.rglob("pytorch_model.bin"))


def test_reference_cycles_are_collected_on_the_gui_thread(qtbot, window) -> None:
    import gc
    import weakref

    class Cycle:
        pass

    assert not gc.isenabled()  # a Worker thread allocating never triggers a collection
    cycle = Cycle()
    cycle.me = cycle  # type: ignore[attr-defined]
    ref = weakref.ref(cycle)
    del cycle
    junk = [[] for _ in range(5000)]  # past the youngest generation's threshold
    qtbot.waitUntil(lambda: ref() is None, timeout=30_000)
    del junk
