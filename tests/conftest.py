"""Shared fixtures: tiny checkpoints generated from real transformers configs.

Nothing is downloaded; every model is built locally at a tiny size.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import pytest

from ckpt_gui.core.values.lease import ignore_lease_breaks

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
# Model descriptions cached by `check` go to a per-run folder, never the user's cache.
os.environ.setdefault("CKPT_GUI_CACHE_DIR", tempfile.mkdtemp(prefix="ckpt-gui-test-cache-"))

# As the CLI and the GUI do at startup: exports may then map sources under read leases.
ignore_lease_breaks()

# Diff / scan / pickle-risk data (fixtures finetuned_dir, damaged_files, marker).
pytest_plugins = [
    "tests.support.diffscan_data",
    "tests.support.hub_fixtures",
    "tests.support.gguf_fixtures",
]

TINY_LLAMA = {
    "vocab_size": 128,
    "hidden_size": 32,
    "intermediate_size": 64,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "max_position_embeddings": 64,
    "tie_word_embeddings": False,
}


def tiny_llama_model(**overrides: object):
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    return LlamaForCausalLM(LlamaConfig(**{**TINY_LLAMA, **overrides}))


@pytest.fixture(scope="session")
def llama_model():
    return tiny_llama_model()


@pytest.fixture(scope="session")
def llama_dir(tmp_path_factory: pytest.TempPathFactory, llama_model) -> Path:
    """A model folder as save_pretrained writes it: config.json + model.safetensors."""
    folder = tmp_path_factory.mktemp("llama")
    llama_model.save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def llama_sharded_dir(tmp_path_factory: pytest.TempPathFactory, llama_model) -> Path:
    folder = tmp_path_factory.mktemp("llama_sharded")
    llama_model.save_pretrained(folder, max_shard_size="20KB")
    assert (folder / "model.safetensors.index.json").is_file()
    return folder


@pytest.fixture(scope="session")
def llama_state_dict(llama_model) -> dict:
    return {k: v.detach().clone() for k, v in llama_model.state_dict().items()}


@pytest.fixture(scope="session")
def llama_bin_dir(tmp_path_factory: pytest.TempPathFactory, llama_model, llama_state_dict) -> Path:
    """A model folder with pytorch_model.bin (zip format) and config.json."""
    import torch

    folder = tmp_path_factory.mktemp("llama_bin")
    torch.save(llama_state_dict, folder / "pytorch_model.bin")
    llama_model.config.to_json_file(folder / "config.json")
    return folder


@pytest.fixture(scope="session")
def llama_bin_sharded_dir(tmp_path_factory: pytest.TempPathFactory, llama_state_dict) -> Path:
    """Sharded .bin files with a pytorch_model.bin.index.json, as older transformers wrote them."""
    import torch

    folder = tmp_path_factory.mktemp("llama_bin_sharded")
    keys = list(llama_state_dict)
    halves = [keys[: len(keys) // 2], keys[len(keys) // 2 :]]
    weight_map = {}
    for i, part in enumerate(halves, start=1):
        name = f"pytorch_model-{i:05d}-of-00002.bin"
        torch.save({k: llama_state_dict[k] for k in part}, folder / name)
        weight_map.update(dict.fromkeys(part, name))
    (folder / "pytorch_model.bin.index.json").write_text(
        json.dumps({"metadata": {"total_size": 0}, "weight_map": weight_map})
    )
    return folder


def write_json(path: Path, data: object) -> Path:
    path.write_text(json.dumps(data), encoding="utf-8")
    return path
