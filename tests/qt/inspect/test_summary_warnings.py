"""The checkpoint tab's summary shows what the reader warned about (a stray shard)."""

from __future__ import annotations

import shutil
from pathlib import Path

from ckpt_gui.core.formats import open_checkpoint
from ckpt_gui.qt.inspect.summary import summary_html


def test_the_summary_names_a_shard_the_index_does_not_list(
    tmp_path: Path, llama_sharded_dir: Path
) -> None:
    folder = tmp_path / "model"
    shutil.copytree(llama_sharded_dir, folder)
    shutil.copy(sorted(folder.glob("model-*.safetensors"))[0], folder / "model.safetensors")
    html = summary_html(open_checkpoint(folder))
    assert "⚠ model.safetensors is beside the index but not in it" in html
    assert "⚠" not in summary_html(open_checkpoint(llama_sharded_dir))
