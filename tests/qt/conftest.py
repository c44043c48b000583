"""Qt test fixtures: offscreen platform, settings in a temporary folder, a tiny 100k builder."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from ckpt_gui.core.model import Checkpoint, FileInfo, TensorInfo


@pytest.fixture()
def settings(tmp_path: Path):
    from PySide6.QtCore import QSettings

    return QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)


@pytest.fixture()
def window(qtbot, settings):
    from ckpt_gui.qt.main_window import MainWindow

    win = MainWindow(settings=settings)
    qtbot.addWidget(win)
    win.show()
    yield win
    from ckpt_gui.qt.workers import shutdown_workers

    shutdown_workers()


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
