"""Checkpoints for the comparison GUI tests: a tiny two-layer Llama and broken variants.

Built with the matching oracle's helpers (real transformers models at tiny sizes).
"broken" has one key of each status: a dropped weight (missing, shown as a ghost
row), an extra tensor (unexpected), a wrong shape (mismatch), an old rotary
``inv_freq`` buffer (ignored) and everything else ok.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.support.matching_oracle import build_model, state_dict_of, write_folder

DROPPED = "model.layers.1.self_attn.k_proj.weight"
EXTRA = "extra_head.dense.weight"
WRONG = "model.layers.0.mlp.up_proj.weight"
IGNORED = "model.layers.0.self_attn.rotary_emb.inv_freq"


def two_layer_llama() -> Any:
    return build_model("LlamaForCausalLM", num_hidden_layers=2)


@pytest.fixture(scope="session")
def llama_model_2l() -> Any:
    return two_layer_llama()


@pytest.fixture(scope="session")
def clean_dir(tmp_path_factory: pytest.TempPathFactory, llama_model_2l: Any) -> Path:
    folder = tmp_path_factory.mktemp("compare") / "clean"
    return write_folder(folder, llama_model_2l, state_dict_of(llama_model_2l))


@pytest.fixture(scope="session")
def broken_dir(tmp_path_factory: pytest.TempPathFactory, llama_model_2l: Any) -> Path:
    import torch

    state = state_dict_of(llama_model_2l)
    del state[DROPPED]
    state[EXTRA] = torch.zeros(4, 4)
    rows, cols = state[WRONG].shape
    state[WRONG] = torch.zeros(rows + 3, cols)
    state[IGNORED] = torch.zeros(4)
    folder = tmp_path_factory.mktemp("compare") / "broken"
    return write_folder(folder, llama_model_2l, state)


@pytest.fixture(scope="session")
def ddp_dir(tmp_path_factory: pytest.TempPathFactory, llama_model_2l: Any) -> Path:
    state = {"module." + k: v for k, v in state_dict_of(llama_model_2l).items()}
    folder = tmp_path_factory.mktemp("compare") / "ddp"
    return write_folder(folder, llama_model_2l, state)


@pytest.fixture(scope="session")
def remote_code_dir(tmp_path_factory: pytest.TempPathFactory, clean_dir: Path) -> Path:
    """The clean weights with a config that asks for custom code (auto_map)."""
    import shutil

    folder = tmp_path_factory.mktemp("compare") / "remote"
    shutil.copytree(clean_dir, folder)
    config = json.loads((folder / "config.json").read_text())
    config["auto_map"] = {"AutoModelForCausalLM": "modeling_custom.CustomForCausalLM"}
    config["architectures"] = ["CustomForCausalLM"]
    (folder / "config.json").write_text(json.dumps(config))
    return folder
