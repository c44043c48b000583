"""The built-in demo checkpoint: a tiny real Llama, generated on first use.

Its config.json deliberately does not quite match the weights (one layer more,
a wider MLP), so a newcomer sees missing keys and shape mismatches at once.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

DEMO_VERSION = "1"

TINY_LLAMA: dict[str, Any] = {
    "vocab_size": 512,
    "hidden_size": 64,
    "intermediate_size": 128,
    "num_hidden_layers": 4,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "max_position_embeddings": 256,
    "tie_word_embeddings": False,
}

# What the shipped config.json claims instead.
MISMATCHED_CONFIG = {"num_hidden_layers": 5, "intermediate_size": 160}


def demo_dir() -> Path:
    override = os.environ.get("CKPT_GUI_DEMO_DIR")
    if override:
        return Path(override)
    cache = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
    return cache / "ckpt-gui" / f"demo-llama-v{DEMO_VERSION}"


def demo_checkpoint() -> Path:
    """Path of the demo model folder, generated (atomically) when missing."""
    target = demo_dir()
    if (target / "model.safetensors").is_file() and (target / "config.json").is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".demo-", dir=target.parent))
    try:
        write_demo(staging)
        if target.exists():
            shutil.rmtree(target)
        staging.rename(target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


def write_demo(folder: Path) -> None:
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    config = LlamaConfig(**TINY_LLAMA)
    model = LlamaForCausalLM(config)
    model.save_pretrained(folder)
    config_path = folder / "config.json"
    data = json.loads(config_path.read_text(encoding="utf-8"))
    data.update(MISMATCHED_CONFIG)
    config_path.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
