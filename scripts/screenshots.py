"""Render the README screenshots into docs/screenshots/ (offscreen, no display needed).

    python scripts/screenshots.py [OUT_DIR]

Builds small sample checkpoints in a temporary folder (a sharded Llama, a truncated
file), then runs ``ckpt-gui ... --screenshot`` for each picture.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def make_samples(folder: Path) -> dict[str, Path]:
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=2048,
        hidden_size=256,
        intermediate_size=688,
        num_hidden_layers=6,
        num_attention_heads=8,
        num_key_value_heads=4,
        tie_word_embeddings=False,
    )
    sharded = folder / "llama-sharded"
    LlamaForCausalLM(config).to(torch.bfloat16).save_pretrained(sharded, max_shard_size="4MB")
    broken = folder / "truncated.safetensors"
    data = (sharded / "model-00001-of-00003.safetensors").read_bytes()
    broken.write_bytes(data[: len(data) // 2])
    return {"sharded": sharded, "broken": broken}


def shoot(out: Path, *args: str) -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO), "QT_QPA_PLATFORM": "offscreen"}
    command = [sys.executable, "-m", "ckpt_gui", *args, "--screenshot", str(out)]
    result = subprocess.run(command, env=env, capture_output=True, text=True)
    print(f"{out.name}: exit {result.returncode} {result.stderr.strip()[:200]}")


GROUPED = """
import sys
from PySide6.QtWidgets import QApplication
from ckpt_gui.qt.app import build_window, configure_application
app = QApplication([])
configure_application(app)
window, features = build_window(settings=None)
window.show()
tab = window.open_targets([sys.argv[1]])[0]
def ready():
    if not window.is_idle():
        return
    timer.stop()
    tab.tree.set_grouped(True)
    tab.tree.filter_edit.setText("self_attn")
    tab.tree.apply_filter()
    group = tab.tree.model.root.find("model.layers").children[0]
    tab.tree.select_node(group)
    app.processEvents()
    window.grab().save(sys.argv[2], "PNG")
    app.quit()
from PySide6.QtCore import QTimer
timer = QTimer()
timer.timeout.connect(ready)
timer.start(50)
app.exec()
"""


def shoot_grouped(out: Path, target: Path) -> None:
    """Grouped blocks with a filter: driven through the window's Python API."""
    env = {**os.environ, "PYTHONPATH": str(REPO), "QT_QPA_PLATFORM": "offscreen"}
    result = subprocess.run(
        [sys.executable, "-c", GROUPED, str(target), str(out)],
        env=env,
        capture_output=True,
        text=True,
    )
    print(f"{out.name}: exit {result.returncode}")


def main() -> int:
    out_dir = Path(sys.argv[1]) if len(sys.argv) > 1 else REPO / "docs" / "screenshots"
    out_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        samples = make_samples(Path(tmp))
        shoot(out_dir / "demo.png")
        shoot(out_dir / "sharded.png", str(samples["sharded"]))
        shoot(out_dir / "error.png", str(samples["broken"]))
        shoot(out_dir / "welcome.png", "--no-demo")
        shoot_grouped(out_dir / "grouped.png", samples["sharded"])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
