"""Qt test fixtures: offscreen platform, settings in a temporary folder, a tiny 100k builder."""

from __future__ import annotations

import gc
import os
from pathlib import Path

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import ckpt_gui.qt  # noqa: F401  (the None-refcount guard, before any PySide6 import)
from ckpt_gui.core.model import Checkpoint, FileInfo, TensorInfo
from tests.support.qt_workers import workers_still_running


@pytest.fixture(autouse=True)
def _private_hf_cache(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """The Library dock scans the HF cache: never the developer's own, never the network."""
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf-cache"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


@pytest.fixture(autouse=True)
def _collect_garbage_on_the_gui_thread():
    """Free each test's reference cycles here, on the GUI thread.

    Test frames kept alive by tracebacks (pytest-qt's waitUntil retries) hold widgets
    such as the window; left to the garbage collector, they may be destroyed by whatever
    thread runs it next, e.g. the following test's loading worker, and Qt crashes.
    What a loaded tab froze out of collections (``gui_gc.settle_long_lived``) is handed
    back first, as closing its tab would.
    """
    yield
    gc.unfreeze()
    gc.collect()


@pytest.fixture(autouse=True)
def _no_worker_thread_outlives_its_test():
    """FAIL the test whose Qt worker thread still runs once it and its fixtures have ended.

    A worker still running at the end (a test that did not wait for its work, a job
    that ignores cancelling) would deliver its results during a later test, to widgets
    that are gone, and count in that test's ``active_workers()`` / ``is_idle()``. So it
    is an error of the test that started it, not something to wait out quietly. The
    ``window`` fixture ends like the app: closing the window stops and joins its
    workers within the app's own quit timeouts (``shutdown_workers``).
    """
    yield
    from ckpt_gui.qt.runtime.workers import shutdown_workers

    strays = workers_still_running()
    if strays:
        shutdown_workers(60_000)  # so that the next test starts without them
        workers_still_running()
        pytest.fail(f"Qt worker thread(s) outlived the test: {', '.join(strays)}")


@pytest.fixture()
def settings(tmp_path: Path):
    from PySide6.QtCore import QSettings

    return QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)


@pytest.fixture()
def app_window(qtbot, settings):
    """The main window with every feature registered, as the app builds it."""
    from ckpt_gui.qt.app import build_window

    win, features = build_window(settings=settings)
    qtbot.addWidget(win)
    win.show()
    yield win, features
    from ckpt_gui.qt.runtime.workers import shutdown_workers

    # As the app quits: the window's close stops its work, then aboutToQuit's wait.
    win.close()
    shutdown_workers()


@pytest.fixture()
def window(app_window):
    """The shell (``MainWindow``) of ``app_window``."""
    return app_window[0]


@pytest.fixture()
def features(app_window):
    """The registered features of ``app_window`` (``ckpt_gui.qt.app.Features``)."""
    return app_window[1]


def synthetic_checkpoint(tensors: int, experts: int = 64) -> Checkpoint:
    """An MoE-shaped checkpoint description with ``tensors`` tensors and no file."""
    infos: list[TensorInfo] = []
    layer = 0
    while len(infos) < tensors:
        prefix = f"model.layers.{layer}"
        for name in ("q_proj", "k_proj", "v_proj", "o_proj"):
            infos.append(
                TensorInfo(
                    f"{prefix}.self_attn.{name}.weight", "BF16", (64, 64), 8192, "m.safetensors", 0
                )
            )
        for expert in range(experts):
            for name in ("gate_proj", "up_proj", "down_proj"):
                infos.append(
                    TensorInfo(
                        f"{prefix}.mlp.experts.{expert}.{name}.weight",
                        "BF16",
                        (32, 64),
                        4096,
                        "m.safetensors",
                        0,
                    )
                )
        layer += 1
    infos = infos[:tensors]
    return Checkpoint("synthetic", "safetensors", tuple(infos), (FileInfo("m.safetensors", 0),))
