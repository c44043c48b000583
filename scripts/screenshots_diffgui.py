"""Render the diff view, the scan panel and the pickle-risk view into docs/screenshots/.

    python scripts/screenshots_diffgui.py [OUT_DIR]

Builds samples in a temporary folder (a small Llama, a fine-tune-like copy with a
few tensors nudged and its keys renamed the way a base model names them, a copy
with NaN/Inf/zero/huge values injected, and a .pt whose pickle calls os.system),
then runs ``ckpt-gui ... --compare/--scan --screenshot`` for each picture.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


class _Reduce:
    """Unpickles as ``func(*args)``: the shape of a malicious payload."""

    def __init__(self, func: object, *args: object) -> None:
        self.func, self.args = func, args

    def __reduce__(self):  # type: ignore[no-untyped-def]
        return self.func, self.args


def make_samples(folder: Path) -> dict[str, Path]:
    import torch
    from safetensors.torch import save_file
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=2048,
        hidden_size=256,
        intermediate_size=688,
        num_hidden_layers=4,
        num_attention_heads=8,
        num_key_value_heads=4,
        tie_word_embeddings=False,
    )
    model = LlamaForCausalLM(config)
    base = folder / "llama-base"
    model.save_pretrained(base)
    state = {k: v.detach().clone().contiguous() for k, v in model.state_dict().items()}

    generator = torch.Generator().manual_seed(1)
    tuned = dict(state)
    for key, scale in (
        ("model.layers.0.self_attn.q_proj.weight", 2e-2),
        ("model.layers.0.self_attn.v_proj.weight", 5e-3),
        ("model.layers.2.mlp.down_proj.weight", 1e-3),
        ("model.layers.3.mlp.up_proj.weight", 1e-4),
        ("lm_head.weight", 3e-3),
    ):
        tuned[key] = state[key] + scale * torch.randn(state[key].shape, generator=generator)
    del tuned["model.layers.3.post_attention_layernorm.weight"]
    tuned["model.norm.weight"] = tuned["model.norm.weight"].to(torch.bfloat16)
    tuned["lora.adapter.weight"] = torch.zeros(8, 256)
    # A DDP-style save: every key gets "module." in front (the diff matches them anyway).
    finetuned = folder / "llama-finetuned.safetensors"
    save_file({"module." + k: v for k, v in tuned.items()}, finetuned)

    damaged = dict(state)
    damaged["model.layers.0.self_attn.k_proj.weight"] = state[
        "model.layers.0.self_attn.k_proj.weight"
    ].clone()
    damaged["model.layers.0.self_attn.k_proj.weight"].view(-1)[[3, 200, 511]] = float("nan")
    damaged["model.layers.1.mlp.gate_proj.weight"] = state[
        "model.layers.1.mlp.gate_proj.weight"
    ].clone()
    damaged["model.layers.1.mlp.gate_proj.weight"].view(-1)[7] = float("-inf")
    damaged["model.layers.2.post_attention_layernorm.weight"] = torch.zeros(256)
    damaged["model.layers.3.self_attn.o_proj.weight"] = state[
        "model.layers.3.self_attn.o_proj.weight"
    ].clone()
    damaged["model.layers.3.self_attn.o_proj.weight"].view(-1)[[10, 11]] = torch.tensor([1e6, -7e4])
    damaged_file = folder / "llama-damaged.safetensors"
    save_file(damaged, damaged_file)

    evil = folder / "suspicious.pt"
    marker = folder / "PWNED"
    torch.save(
        {
            "model.weight": torch.ones(4, 4),
            "hook": _Reduce(os.system, f"touch {marker}"),
            "eval": _Reduce(eval, "1"),
        },
        evil,
    )
    return {"base": base, "finetuned": finetuned, "damaged": damaged_file, "evil": evil}


def shoot(out: Path, *args: str) -> int:
    env = {**os.environ, "PYTHONPATH": str(REPO), "QT_QPA_PLATFORM": "offscreen"}
    command = [sys.executable, "-m", "ckpt_gui", *args, "--screenshot", str(out)]
    result = subprocess.run(command, env=env, capture_output=True, text=True)
    print(f"{out.name}: exit {result.returncode} {result.stderr.strip()[:300]}")
    return result.returncode


MODULES = """
import sys
from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication
from ckpt_gui.qt.app import build_window, configure_application
app = QApplication([])
configure_application(app)
window, features = build_window(settings=None)
window.resize(1280, 640)
window.show()
tab = window.open_targets([sys.argv[1]])[0]
state = {}
def ready():
    if not window.is_idle():
        return
    if "view" not in state:
        state["view"] = features.diff.compare(tab, sys.argv[2])
        return
    timer.stop()
    view = state["view"]
    view.pages.setCurrentIndex(1)
    app.processEvents()
    window.grab().save(sys.argv[3], "PNG")
    app.quit()
timer = QTimer()
timer.timeout.connect(ready)
timer.start(50)
app.exec()
"""


def shoot_modules(out: Path, a: Path, b: Path) -> None:
    """The diff's Modules page: driven through the window's Python API."""
    env = {**os.environ, "PYTHONPATH": str(REPO), "QT_QPA_PLATFORM": "offscreen"}
    command = [sys.executable, "-c", MODULES, str(a), str(b), str(out)]
    result = subprocess.run(command, env=env, capture_output=True, text=True)
    print(f"{out.name}: exit {result.returncode}")


def main() -> int:
    out_dir = Path(sys.argv[1]) if len(sys.argv) > 1 else REPO / "docs" / "screenshots"
    out_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as temp:
        samples = make_samples(Path(temp))
        shoot(out_dir / "diff.png", str(samples["base"]), "--compare", str(samples["finetuned"]))
        shoot_modules(out_dir / "diff-modules.png", samples["base"], samples["finetuned"])
        shoot(out_dir / "scan.png", str(samples["damaged"]), "--scan")
        shoot(out_dir / "pickle-risk.png", str(samples["evil"]))
        if (Path(temp) / "PWNED").exists():
            print("error: the pickle was executed", file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
