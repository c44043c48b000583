"""Torch files of every kind our pickle reader handles, made at test time by torch itself.

Each builder returns the file and the oracle: the state dict torch would give
(``module.state_dict()`` of the object saved, or ``torch.jit.load(...).state_dict()``),
so that tests compare our reading with torch's own answer.
"""

from __future__ import annotations

import argparse
import importlib
import sys
import textwrap
from pathlib import Path
from typing import Any


def bert_model() -> Any:
    import torch
    from transformers import BertConfig, BertForSequenceClassification

    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=99,
        hidden_size=16,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=24,
        max_position_embeddings=32,
    )
    return BertForSequenceClassification(config).eval()


def whole_model(folder: Path, legacy: bool = False) -> tuple[Path, Any, dict[str, Any]]:
    """``torch.save({'model': model, ...})`` of a transformers model; returns path, model, oracle."""
    import numpy as np
    import torch

    model = bert_model()
    path = folder / ("whole_legacy.pt" if legacy else "whole.pt")
    torch.save(
        {
            "model": model,
            "epoch": 4,
            "args": argparse.Namespace(lr=0.01, run="bert-run"),
            "best": np.float64(0.875),
        },
        path,
        _use_new_zipfile_serialization=not legacy,
    )
    return path, model, dict(model.state_dict())


def state_dict_with_args(folder: Path) -> tuple[Path, dict[str, Any]]:
    """timm/fairseq style: weights beside argparse args, numpy scalars, an array and an optimizer."""
    import numpy as np
    import torch

    torch.manual_seed(1)
    net = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.BatchNorm1d(3))
    optimizer = torch.optim.Adam(net.parameters())
    net(torch.randn(5, 4)).sum().backward()
    optimizer.step()
    weights = net.state_dict()
    path = folder / "checkpoint.pth"
    _OPTIMIZER_STATES[path] = optimizer.state_dict()["state"]
    torch.save(
        {
            "state_dict": weights,
            "optimizer": optimizer.state_dict(),
            "args": argparse.Namespace(arch="mlp", lr=0.1, layers=[4, 3]),
            "epoch": np.int64(12),
            "top1": np.float32(71.5),
            "history": np.arange(6, dtype=np.float64).reshape(2, 3),
        },
        path,
    )
    return path, dict(weights)


_OPTIMIZER_STATES: dict[Path, Any] = {}


def saved_optimizer_state(path: Path) -> Any:
    """The optimizer state ``state_dict_with_args`` saved into ``path`` (the in-memory original)."""
    return _OPTIMIZER_STATES[path]


_GHOST_SOURCE = """
import torch


class GhostDetector(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.backbone = torch.nn.Conv2d(3, 4, 3)
        self.head = torch.nn.Linear(4, 2)
        self.register_buffer("anchors", torch.arange(6.0).reshape(3, 2))
        self.register_buffer("scratch", torch.zeros(2), persistent=False)
"""


def ghost_class_checkpoint(folder: Path) -> tuple[Path, dict[str, Any]]:
    """ultralytics style: ``model`` None, ``ema`` a module whose package exists only while saving."""
    import torch

    source_dir = folder / "ghost_src"
    source_dir.mkdir()
    (source_dir / "ghostpkg_models.py").write_text(textwrap.dedent(_GHOST_SOURCE))
    sys.path.insert(0, str(source_dir))
    try:
        module = importlib.import_module("ghostpkg_models")
        torch.manual_seed(2)
        ema = module.GhostDetector()
        path = folder / "best.pt"
        torch.save({"model": None, "ema": ema, "updates": 300, "train_args": {"imgsz": 64}}, path)
        oracle = dict(ema.state_dict())
    finally:
        sys.path.remove(str(source_dir))
        sys.modules.pop("ghostpkg_models", None)
        (source_dir / "ghostpkg_models.py").unlink()
        importlib.invalidate_caches()
    return path, oracle


def views_checkpoint(folder: Path, legacy: bool = False) -> tuple[Path, dict[str, Any]]:
    """Tensors that are views into one storage: offsets, a transpose, a strided slice."""
    import torch

    base = torch.arange(60, dtype=torch.float32).reshape(6, 10)
    tensors = {
        "base": base,
        "transposed": base.t(),
        "rows": base[2:4],
        "corner": base[1:5, 3:8],
        "every_other": base[:, ::2],
        "column": base[:, 7],
        "half": torch.linspace(-2, 2, 12, dtype=torch.float16).reshape(3, 4).t(),
        "empty": base[:0],
    }
    path = folder / ("views_legacy.pt" if legacy else "views.pt")
    torch.save(tensors, path, _use_new_zipfile_serialization=not legacy)
    return path, {k: v.contiguous() for k, v in tensors.items()}


def half_module(folder: Path) -> tuple[Path, dict[str, Any]]:
    """A module saved whole in half precision, with a non-persistent buffer."""
    import torch

    torch.manual_seed(3)
    module = torch.nn.Sequential(torch.nn.Embedding(10, 4), torch.nn.LayerNorm(4)).half()
    path = folder / "half.pt"
    torch.save(module, path)
    return path, dict(module.state_dict())


def torchscript_module(folder: Path) -> tuple[Path, dict[str, Any]]:
    """``torch.jit.save`` of a traced module; the oracle is ``torch.jit.load(...).state_dict()``."""
    import torch

    torch.manual_seed(4)
    traced = torch.jit.trace(
        torch.nn.Sequential(torch.nn.Linear(3, 5), torch.nn.ReLU(), torch.nn.Linear(5, 2)),
        torch.randn(1, 3),
    )
    path = folder / "scripted.pt"
    torch.jit.save(traced, str(path))
    return path, dict(torch.jit.load(str(path)).state_dict())


def omegaconf_checkpoint(folder: Path) -> Path:
    """Lightning/Hydra style: a state dict beside an OmegaConf ``DictConfig``."""
    import torch
    from omegaconf import OmegaConf

    path = folder / "lightning.ckpt"
    config = OmegaConf.create({"model": {"lr": 0.001}, "trainer": {"max_epochs": 3}})
    torch.save({"state_dict": torch.nn.Linear(2, 2).state_dict(), "hyper_parameters": config}, path)
    return path
