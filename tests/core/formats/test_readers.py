"""Readers agree with torch/safetensors on every layout they support."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import pytest

from ckpt_gui.core.dtypes import torch_dtype_name
from ckpt_gui.core.formats import open_checkpoint


def expected_facts(state_dict: dict) -> dict[str, tuple[str, tuple[int, ...]]]:
    return {k: (torch_dtype_name(v.dtype), tuple(v.shape)) for k, v in state_dict.items()}


def facts(checkpoint) -> dict[str, tuple[str, tuple[int, ...]]]:
    return {t.name: (t.dtype, t.shape) for t in checkpoint.tensors}


def test_single_safetensors_file_matches_safe_open(llama_dir: Path) -> None:
    from safetensors import safe_open

    checkpoint = open_checkpoint(llama_dir / "model.safetensors")
    with safe_open(llama_dir / "model.safetensors", "pt") as handle:
        keys = set(handle.keys())
        shapes = {k: tuple(handle.get_slice(k).get_shape()) for k in keys}
    assert checkpoint.format == "safetensors"
    assert set(checkpoint.tensor_map) == keys
    assert {t.name: t.shape for t in checkpoint.tensors} == shapes
    assert checkpoint.metadata == {"format": "pt"}


def test_safetensors_offsets_point_at_the_tensor_bytes(llama_dir: Path, llama_state_dict) -> None:
    import numpy as np

    checkpoint = open_checkpoint(llama_dir / "model.safetensors")
    tensor = checkpoint.tensor("model.norm.weight")
    raw = (llama_dir / "model.safetensors").read_bytes()[
        tensor.offset : tensor.offset + tensor.nbytes
    ]
    assert np.array_equal(
        np.frombuffer(raw, dtype=np.float32), llama_state_dict["model.norm.weight"].numpy()
    )


def test_folder_reads_config_and_weights(llama_dir: Path, llama_model) -> None:
    checkpoint = open_checkpoint(llama_dir)
    assert checkpoint.config is not None
    assert checkpoint.config["architectures"] == ["LlamaForCausalLM"]
    assert checkpoint.total_parameters == sum(p.numel() for p in llama_model.state_dict().values())
    assert checkpoint.total_bytes == checkpoint.total_parameters * 4
    assert checkpoint.parameters_by_dtype == {"F32": checkpoint.total_parameters}


def test_sharded_safetensors(llama_sharded_dir: Path, llama_state_dict) -> None:
    checkpoint = open_checkpoint(llama_sharded_dir)
    assert checkpoint.format == "safetensors-sharded"
    assert facts(checkpoint) == expected_facts(llama_state_dict)
    shard_files = {f.path for f in checkpoint.files if f.path.endswith(".safetensors")}
    assert len(shard_files) > 1
    assert {t.file for t in checkpoint.tensors} == shard_files


@pytest.mark.parametrize("legacy", [False, True], ids=["zip", "legacy"])
def test_pytorch_file(tmp_path: Path, llama_state_dict, legacy: bool) -> None:
    import torch

    path = tmp_path / "model.pt"
    torch.save(llama_state_dict, path, _use_new_zipfile_serialization=not legacy)
    checkpoint = open_checkpoint(path)
    assert checkpoint.format == ("pytorch-legacy" if legacy else "pytorch-zip")
    assert facts(checkpoint) == expected_facts(llama_state_dict)
    assert all(g.allowed for g in checkpoint.pickle_globals)
    assert any(g.name == "torch._utils._rebuild_tensor_v2" for g in checkpoint.pickle_globals)


def test_pytorch_bin_folder_and_shards(
    llama_bin_dir: Path, llama_bin_sharded_dir: Path, llama_state_dict
) -> None:
    single = open_checkpoint(llama_bin_dir)
    sharded = open_checkpoint(llama_bin_sharded_dir)
    assert single.format == "pytorch-zip"
    assert sharded.format == "pytorch-zip-sharded"
    assert facts(single) == facts(sharded) == expected_facts(llama_state_dict)


@pytest.mark.parametrize("key", ["state_dict", "model_state_dict", "model", "module"])
def test_nested_training_checkpoint(tmp_path: Path, llama_state_dict, key: str) -> None:
    import torch

    path = tmp_path / "last.ckpt"
    torch.save(
        {
            "epoch": 7,
            "global_step": 1234,
            key: llama_state_dict,
            "optimizer_states": [{"state": {}, "param_groups": [{"lr": 0.1}]}],
            "hyper_parameters": {"lr": 0.001, "name": "run-1"},
        },
        path,
    )
    checkpoint = open_checkpoint(path)
    assert facts(checkpoint) == expected_facts(llama_state_dict)
    assert checkpoint.metadata["state_dict_key"] == key
    assert checkpoint.metadata["epoch"] == 7
    assert checkpoint.metadata["global_step"] == 1234
    assert checkpoint.metadata["hyper_parameters"] == {"lr": 0.001, "name": "run-1"}
    assert checkpoint.metadata["optimizer_states"] == "list of 1 items"


def test_ddp_prefixed_keys_are_kept_verbatim(tmp_path: Path, llama_state_dict) -> None:
    import torch

    path = tmp_path / "ddp.pt"
    torch.save({"module": {f"module.{k}": v for k, v in llama_state_dict.items()}}, path)
    names = [t.name for t in open_checkpoint(path).tensors]
    assert all(n.startswith("module.") for n in names)


def test_hf_cache_snapshot(tmp_path: Path, llama_dir: Path) -> None:
    """A hand-built cache: blobs, a snapshot of symlinks, refs/main."""
    repo = tmp_path / "hub" / "models--tiny--llama"
    revision = "a" * 40
    snapshot = repo / "snapshots" / revision
    (repo / "blobs").mkdir(parents=True)
    snapshot.mkdir(parents=True)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(revision)
    for i, name in enumerate(["config.json", "model.safetensors"]):
        blob = repo / "blobs" / f"blob{i}"
        shutil.copy(llama_dir / name, blob)
        (snapshot / name).symlink_to(Path("../../blobs") / blob.name)
    for target in (repo, snapshot):
        checkpoint = open_checkpoint(target)
        assert checkpoint.root == snapshot
        assert len(checkpoint.tensors) == len(open_checkpoint(llama_dir).tensors)
    assert any("refs/main" in w for w in open_checkpoint(repo).warnings)


def test_sharded_safetensors_in_cache_with_symlinked_shards(
    tmp_path: Path, llama_sharded_dir: Path
) -> None:
    """Shards that are symlinks out of the snapshot folder are fine (they live in blobs/)."""
    blobs = tmp_path / "blobs"
    snapshot = tmp_path / "snap"
    blobs.mkdir()
    snapshot.mkdir()
    for file in llama_sharded_dir.iterdir():
        shutil.copy(file, blobs / file.name)
        (snapshot / file.name).symlink_to(blobs / file.name)
    assert open_checkpoint(snapshot).format == "safetensors-sharded"


def test_opening_safetensors_does_not_import_torch(llama_sharded_dir: Path) -> None:
    import subprocess

    code = (
        "import sys; from ckpt_gui.core.formats import open_checkpoint; "
        f"c = open_checkpoint({str(llama_sharded_dir)!r}); "
        "print(len(c.tensors), 'torch' in sys.modules, 'transformers' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    count, torch_loaded, transformers_loaded = out.stdout.split()
    assert int(count) > 0
    assert (torch_loaded, transformers_loaded) == ("False", "False")


def test_index_metadata_is_kept(llama_sharded_dir: Path) -> None:
    index = json.loads((llama_sharded_dir / "model.safetensors.index.json").read_text())
    checkpoint = open_checkpoint(llama_sharded_dir)
    assert checkpoint.metadata["index"] == index["metadata"]
