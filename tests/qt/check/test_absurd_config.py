"""The GUI's comparison worker ends, with the reason in the bar, on configs that cannot be built."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ckpt_gui.core.check import size_guard
from ckpt_gui.qt.check.controller import controller_for
from ckpt_gui.qt.check.view_model import ConfigChoice
from tests.core.check.test_size_guard import ABSURD_LLAMA


def _opened(qtbot, window, folder: Path):
    window.open_targets([str(folder)])
    qtbot.waitUntil(lambda: window.tabs() and window.is_idle(), timeout=60_000)
    controller = controller_for(window.current_tab())
    assert controller is not None
    return controller


def test_an_impossible_config_is_refused_in_the_bar(
    qtbot, window, clean_dir: Path, tmp_path: Path
) -> None:
    config = tmp_path / "config.json"
    config.write_text(json.dumps(ABSURD_LLAMA))
    controller = _opened(qtbot, window, clean_dir)
    controller.compare(ConfigChoice("path", str(config)))
    qtbot.waitUntil(lambda: not controller.is_running, timeout=60_000)
    assert controller.result is None
    assert "config asks for over 10^24 parameters" in (controller.error or "")


def test_a_build_past_its_budget_ends_the_worker(
    qtbot, window, clean_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    controller = _opened(qtbot, window, clean_dir)
    # 100,000 tiny layers (900,003 tensors) pass the size estimate; the budget (shrunk here) stops the build.
    monkeypatch.setattr(size_guard, "BUILD_SECONDS", 0.5)
    monkeypatch.setenv("CKPT_GUI_NO_TEMPLATES", "1")  # a template would answer without a build
    overrides = {"num_hidden_layers": 100_000, "hidden_size": 8, "intermediate_size": 8}
    controller.compare(ConfigChoice("own", overrides=overrides))
    qtbot.waitUntil(lambda: not controller.is_running, timeout=120_000)
    assert controller.result is None
    assert "building the model took over 0.5 s" in (controller.error or "")
