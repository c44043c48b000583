"""Test data for diff, scan and pickle risk, shared by tests/core and tests/qt.

Registered as a pytest plugin in tests/conftest.py, so its fixtures are available
everywhere; the helpers are imported by name.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

# finetuned_dir: these two tensors are nudged, everything else is byte-identical.
PERTURBED = ("model.layers.0.self_attn.q_proj.weight", "model.layers.1.mlp.down_proj.weight")
# damaged_files: where each problem was injected.
NAN_KEY = "model.layers.0.self_attn.k_proj.weight"
INF_KEY = "model.layers.1.mlp.gate_proj.weight"
ZERO_KEY = "model.layers.0.post_attention_layernorm.weight"
BIG_KEY = "model.layers.1.self_attn.o_proj.weight"


@pytest.fixture(scope="session")
def finetuned_dir(tmp_path_factory: pytest.TempPathFactory, llama_state_dict) -> Path:  # type: ignore[no-untyped-def]
    """A fine-tune-like copy: two tensors nudged, everything else byte-identical."""
    import torch
    from safetensors.torch import save_file

    folder = tmp_path_factory.mktemp("finetuned")
    generator = torch.Generator().manual_seed(1)
    changed = dict(llama_state_dict)
    # One noticeable change and one tiny one (1 - cosine near 1e-7, below float32 resolution).
    for key, scale in zip(PERTURBED, (1e-3, 1e-5), strict=True):
        base = llama_state_dict[key]
        changed[key] = base + scale * torch.randn(base.shape, generator=generator)
    save_file(changed, folder / "model.safetensors", metadata={"format": "pt"})
    return folder


def damaged(state_dict: dict) -> dict:  # type: ignore[type-arg]
    """A copy with NaN, -Inf, an all-zero tensor and values beyond the F16 range."""
    import torch

    out = {k: v.clone() for k, v in state_dict.items()}
    out[NAN_KEY].view(-1)[[3, 200, 511]] = float("nan")
    out[INF_KEY].view(-1)[7] = float("-inf")
    out[ZERO_KEY] = torch.zeros_like(out[ZERO_KEY])
    out[BIG_KEY].view(-1)[[10, 11]] = torch.tensor([1e6, -7e4])
    return out


@pytest.fixture(scope="session")
def damaged_files(tmp_path_factory: pytest.TempPathFactory, llama_state_dict) -> dict[str, Path]:  # type: ignore[no-untyped-def]
    import torch
    from safetensors.torch import save_file

    folder = tmp_path_factory.mktemp("damaged")
    bad = damaged(llama_state_dict)
    save_file(bad, folder / "bad.safetensors")
    torch.save(bad, folder / "bad.pt")
    half = {k: v.to(torch.bfloat16) for k, v in bad.items()}
    save_file(half, folder / "bad_bf16.safetensors")
    return {
        "safetensors": folder / "bad.safetensors",
        "pt": folder / "bad.pt",
        "bf16": folder / "bad_bf16.safetensors",
    }


class Reduce:
    """Pickles as ``func(*args)``: what an attacker's object looks like in the opcode stream."""

    def __init__(self, func: object, *args: object) -> None:
        self.func, self.args = func, args

    def __reduce__(self):  # type: ignore[no-untyped-def]
        return self.func, self.args


def payloads(marker: Path) -> dict[str, object]:
    """Objects whose unpickling would create ``marker``, keyed by the global they use."""
    import builtins

    command = f"touch {marker}"
    return {
        f"{os.system.__module__}.system": Reduce(os.system, command),
        "builtins.eval": Reduce(builtins.eval, f"open({str(marker)!r}, 'w')"),
        "subprocess.Popen": Reduce(subprocess.Popen, ["touch", str(marker)]),
    }


def evil_checkpoint(path: Path, marker: Path, legacy: bool = False) -> Path:
    """A torch.save file whose pickle would run ``touch marker`` through os.system."""
    import torch

    torch.save(
        {
            "model.weight": torch.ones(2, 2),
            "hook": payloads(marker)[f"{os.system.__module__}.system"],
        },
        path,
        _use_new_zipfile_serialization=not legacy,
    )
    return path


@pytest.fixture()
def marker(tmp_path: Path) -> Path:  # type: ignore[misc]
    """A path an executed payload would create; the test fails if it ever exists."""
    path = tmp_path / "PWNED"
    yield path
    assert not path.exists(), "the pickle was executed"
