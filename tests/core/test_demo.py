from __future__ import annotations

from pathlib import Path

import pytest

from ckpt_gui.core import demo
from ckpt_gui.core.errors import CheckpointError
from ckpt_gui.core.formats import open_checkpoint


def test_demo_is_generated_once_with_a_config_that_does_not_quite_match(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CKPT_GUI_DEMO_DIR", str(tmp_path / "demo"))
    folder = demo.demo_checkpoint()
    checkpoint = open_checkpoint(folder)
    assert checkpoint.config is not None
    layers_in_weights = {
        t.name.split(".")[2] for t in checkpoint.tensors if t.name.startswith("model.layers.")
    }
    assert len(layers_in_weights) == demo.TINY_LLAMA["num_hidden_layers"]
    assert checkpoint.config["num_hidden_layers"] == len(layers_in_weights) + 1
    up = checkpoint.tensor("model.layers.0.mlp.up_proj.weight")
    assert (
        up.shape[0]
        == demo.TINY_LLAMA["intermediate_size"]
        != checkpoint.config["intermediate_size"]
    )
    stamp = (folder / "model.safetensors").stat().st_mtime_ns
    assert demo.demo_checkpoint() == folder
    assert (folder / "model.safetensors").stat().st_mtime_ns == stamp
    assert [p.name for p in folder.parent.iterdir()] == ["demo"]


def test_devices_are_refused_without_reading() -> None:
    with pytest.raises(CheckpointError, match="not a regular file \\(a device\\)"):
        open_checkpoint("/dev/zero")
