"""Our non-executing reader against torch itself, on every kind of torch file.

Every fixture is written by torch at test time; the oracle is the state dict of
the object saved (what ``torch.load`` gives back) or ``torch.jit.load``.
Values are read by our own code (``values/chunks.py``), never by torch.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from ckpt_gui.core.dtypes import torch_dtype_name
from ckpt_gui.core.errors import CheckpointError
from ckpt_gui.core.formats import open_checkpoint
from ckpt_gui.core.model import Checkpoint
from ckpt_gui.core.values.chunks import iter_chunks
from tests.support import pickle_fixtures as fx

ROOT = Path(__file__).resolve().parents[3]


def values_of(checkpoint: Checkpoint, name: str) -> np.ndarray[Any, Any]:
    tensor = checkpoint.tensor(name)
    chunks = list(iter_chunks(checkpoint, tensor, chunk_elements=16))
    flat = np.concatenate(chunks) if chunks else np.empty(0)
    return flat.reshape(tensor.shape)


def assert_matches_torch(checkpoint: Checkpoint, oracle: dict[str, Any]) -> None:
    import torch

    assert list(checkpoint.tensor_map) == list(oracle)
    for name, expected in oracle.items():
        tensor = checkpoint.tensor(name)
        assert tensor.shape == tuple(expected.shape), name
        assert tensor.dtype == torch_dtype_name(expected.dtype), name
        assert tensor.nbytes == expected.numel() * expected.element_size(), name
        want = (
            expected.detach().float().numpy() if expected.is_floating_point() else expected.numpy()
        )
        got = values_of(checkpoint, name)
        assert np.array_equal(got.astype(want.dtype), want), name
        assert torch.equal(torch.from_numpy(np.array(got, copy=True)).to(expected.dtype), expected)


@pytest.mark.parametrize("legacy", [False, True], ids=["zip", "legacy"])
def test_whole_transformers_model(tmp_path: Path, legacy: bool) -> None:
    path, model, oracle = fx.whole_model(tmp_path, legacy)
    checkpoint = open_checkpoint(path)
    assert checkpoint.format == ("pytorch-legacy" if legacy else "pytorch-zip")
    assert_matches_torch(checkpoint, oracle)
    metadata = checkpoint.metadata
    assert metadata["weight_set"] == "model"
    classes = metadata["module_classes"]
    assert classes[""] == type(model).__module__ + "." + type(model).__qualname__
    attention = model.bert.encoder.layer[0].attention.self
    assert classes["bert.encoder.layer.0.attention.self"].endswith(type(attention).__name__)
    assert classes["classifier"] == "torch.nn.modules.linear.Linear"
    assert metadata["epoch"] == 4
    assert metadata["best"] == 0.875
    assert metadata["args"] == {"__class__": "argparse.Namespace", "lr": 0.01, "run": "bert-run"}
    # The embedded config is the model's own (as to_dict() gives it).
    config = checkpoint.config
    assert config is not None
    expected = model.config.to_dict()
    for key in ("model_type", "hidden_size", "num_hidden_layers", "vocab_size", "id2label"):
        assert json.loads(json.dumps(config[key])) == json.loads(json.dumps(expected[key])), key
    assert config["architectures"] == ["BertForSequenceClassification"]
    json.dumps(checkpoint.to_json())  # the whole description is JSON


def test_embedded_config_rebuilds_the_same_model(tmp_path: Path) -> None:
    import torch
    from transformers import AutoConfig, AutoModelForSequenceClassification

    path, _, oracle = fx.whole_model(tmp_path)
    values = dict(open_checkpoint(path).config or {})
    rebuilt_config = AutoConfig.for_model(values.pop("model_type"), **values)
    with torch.device("meta"):
        rebuilt = AutoModelForSequenceClassification.from_config(rebuilt_config)
    assert {k: v.shape for k, v in rebuilt.state_dict().items()} == {
        k: v.shape for k, v in oracle.items()
    }


def test_state_dict_beside_namespace_numpy_and_optimizer(tmp_path: Path) -> None:
    path, oracle = fx.state_dict_with_args(tmp_path)
    checkpoint = open_checkpoint(path)
    assert_matches_torch(checkpoint, oracle)
    metadata = checkpoint.metadata
    assert metadata["state_dict_key"] == "state_dict"
    assert metadata["epoch"] == 12 and metadata["top1"] == 71.5
    assert metadata["args"]["layers"] == [4, 3]
    assert metadata["history"] == [[0.0, 1.0, 2.0], [3.0, 4.0, 5.0]]
    kinds = {w["key"]: w["kind"] for w in metadata["weight_sets"]}
    assert kinds == {"state_dict": "state_dict", "optimizer": "optimizer"}
    assert "optimizer" in " ".join(checkpoint.warnings)  # the other set is named


def test_optimizer_weight_set_matches_torch(tmp_path: Path) -> None:
    path, _ = fx.state_dict_with_args(tmp_path)
    checkpoint = open_checkpoint(path, weights_key="optimizer")
    state = fx.saved_optimizer_state(path)
    oracle = {f"state.{i}.{k}": v for i, entry in state.items() for k, v in entry.items()}
    assert_matches_torch(checkpoint, oracle)


def test_class_absent_while_reading(tmp_path: Path) -> None:
    path, oracle = fx.ghost_class_checkpoint(tmp_path)
    with pytest.raises(ModuleNotFoundError):
        __import__("ghostpkg_models")
    checkpoint = open_checkpoint(path)
    assert checkpoint.metadata["weight_set"] == "ema"  # model is None
    assert_matches_torch(checkpoint, oracle)
    assert "scratch" not in checkpoint.tensor_map  # non-persistent buffer
    assert checkpoint.metadata["module_classes"][""] == "ghostpkg_models.GhostDetector"
    assert checkpoint.metadata["module_classes"]["backbone"] == "torch.nn.modules.conv.Conv2d"
    assert checkpoint.metadata["model"] is None
    assert checkpoint.metadata["train_args"] == {"imgsz": 64}


@pytest.mark.parametrize("legacy", [False, True], ids=["zip", "legacy"])
def test_views_into_shared_storage(tmp_path: Path, legacy: bool) -> None:
    import torch

    path, oracle = fx.views_checkpoint(tmp_path, legacy)
    checkpoint = open_checkpoint(path)
    assert_matches_torch(checkpoint, oracle)
    # torch agrees on each view's layout.
    loaded = torch.load(path, weights_only=True)
    for name, value in loaded.items():
        tensor = checkpoint.tensor(name)
        assert tensor.stride == value.stride(), name
        assert tensor.storage_offset == value.storage_offset(), name
    assert checkpoint.tensor("transposed").offset is None  # strided: read through its stride
    assert checkpoint.tensor("rows").offset is not None  # contiguous: one run of bytes


def test_half_precision_module_saved_whole(tmp_path: Path) -> None:
    path, oracle = fx.half_module(tmp_path)
    checkpoint = open_checkpoint(path)
    assert {t.dtype for t in checkpoint.tensors} == {"F16"}
    assert_matches_torch(checkpoint, oracle)
    assert checkpoint.metadata["module_classes"]["0"] == "torch.nn.modules.sparse.Embedding"


def test_torchscript_archive(tmp_path: Path) -> None:
    path, oracle = fx.torchscript_module(tmp_path)
    checkpoint = open_checkpoint(path)
    assert checkpoint.format == "pytorch-torchscript"
    assert_matches_torch(checkpoint, oracle)
    assert checkpoint.metadata["module_classes"]["0"] == "torch.nn.modules.linear.Linear"


def test_weight_set_choice_and_unknown_key(tmp_path: Path) -> None:
    import torch

    a = torch.nn.Linear(2, 2)
    b = torch.nn.Linear(2, 2)
    path = tmp_path / "two.pt"
    torch.save({"model": a.state_dict(), "ema": b}, path)
    default = open_checkpoint(path)
    assert default.metadata["weight_set"] == "model"
    assert_matches_torch(default, dict(a.state_dict()))
    ema = open_checkpoint(path, weights_key="ema")
    assert_matches_torch(ema, dict(b.state_dict()))
    with pytest.raises(CheckpointError) as caught:
        open_checkpoint(path, weights_key="nope")
    assert "no weight set at key 'nope'" in str(caught.value) and "'ema'" in str(caught.value)


def test_listing_and_stats_import_neither_torch_nor_the_files_modules(tmp_path: Path) -> None:
    """Every import made while reading is recorded: none of torch, transformers or the file's."""
    paths = [
        fx.whole_model(tmp_path)[0],
        fx.whole_model(tmp_path, legacy=True)[0],
        fx.state_dict_with_args(tmp_path)[0],
        fx.ghost_class_checkpoint(tmp_path)[0],
        fx.views_checkpoint(tmp_path)[0],
        fx.torchscript_module(tmp_path)[0],
        fx.omegaconf_checkpoint(tmp_path),
    ]
    script = """
import json, sys
from pathlib import Path
from ckpt_gui.core.formats import open_checkpoint
from ckpt_gui.core.values.stats import compute_stats
from ckpt_gui.core.values.scan import scan
from ckpt_gui.core.jobs import run_to_completion
from ckpt_gui.core.pickles.risk import pickle_risk

imports = []
def audit(event, args):
    if event == "import":
        imports.append(args[0])
    if event in ("os.system", "os.exec", "os.posix_spawn", "subprocess.Popen"):
        imports.append("EVENT:" + event)
sys.addaudithook(audit)
tensors = 0
for name in sys.argv[1:]:
    checkpoint = open_checkpoint(Path(name))
    for tensor in checkpoint.tensors:
        compute_stats(checkpoint, tensor)
        tensors += 1
    run_to_completion(scan(checkpoint))
    pickle_risk(name)
print(json.dumps({"imports": sorted(set(imports)), "tensors": tensors,
                  "torch": "torch" in sys.modules, "transformers": "transformers" in sys.modules}))
"""
    done = subprocess.run(
        [sys.executable, "-c", script, *map(str, paths)],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["tensors"] > 50
    assert not result["torch"] and not result["transformers"]
    # Only our own modules, imported lazily; nothing the files name, nothing run.
    assert all(m.startswith("ckpt_gui.") for m in result["imports"]), result


def test_lightning_checkpoint_with_omegaconf_hyper_parameters(tmp_path: Path) -> None:
    import torch
    from omegaconf import OmegaConf

    config = OmegaConf.create({"model": {"lr": 0.001, "layers": [4, 3]}, "name": "run-1"})
    weights = torch.nn.Linear(3, 2).state_dict()
    path = tmp_path / "epoch=3.ckpt"
    torch.save({"state_dict": weights, "hyper_parameters": config, "epoch": 3}, path)
    checkpoint = open_checkpoint(path)
    assert_matches_torch(checkpoint, dict(weights))
    shown = checkpoint.metadata["hyper_parameters"]
    assert shown.pop("__class__") == "omegaconf.dictconfig.DictConfig"
    shown["model"].pop("__class__")
    assert shown == OmegaConf.to_container(config)


def test_torchscript_class_names_are_shown_unmangled(tmp_path: Path) -> None:
    """Tracing the same classes again in a process makes torch mangle their names."""
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    fx.torchscript_module(tmp_path / "a")
    path, _ = fx.torchscript_module(tmp_path / "b")
    with zipfile.ZipFile(path) as archive:
        pickled = b"".join(archive.read(n) for n in archive.namelist() if n.endswith("data.pkl"))
    assert b"___torch_mangle_" in pickled  # the file itself names the mangled classes
    classes = open_checkpoint(path).metadata["module_classes"]
    assert classes["0"] == classes["2"] == "torch.nn.modules.linear.Linear"
