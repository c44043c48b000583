"""Checkpoints that would open and mislead: repeated names, sub-byte misfits, stray shards.

Each case is judged against the library that defines the format: the raw JSON
pairs (``object_pairs_hook``) for repeated names, ``safetensors.safe_open`` for
sub-byte dtypes, the index's ``weight_map`` (what transformers loads) for shards.
"""

from __future__ import annotations

import json
import shutil
import struct
from pathlib import Path

import pytest
from safetensors import safe_open

from ckpt_gui.core.errors import CheckpointError
from ckpt_gui.core.formats import open_checkpoint


def write_safetensors(path: Path, header_text: str, data_size: int) -> Path:
    raw = header_text.encode()
    raw += b" " * (-len(raw) % 8)
    path.write_bytes(struct.pack("<Q", len(raw)) + raw + b"\0" * data_size)
    return path


def json_pairs(header_text: str) -> list[tuple[str, object]]:
    pairs: list[tuple[str, object]] = []
    json.loads(header_text, object_pairs_hook=lambda p: pairs.extend(p) or dict(p))
    return pairs


def test_a_tensor_name_given_twice_is_refused(tmp_path: Path) -> None:
    entry = '{"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}'
    text = f'{{"w": {entry}, "w": {entry}}}'
    path = write_safetensors(tmp_path / "twice.safetensors", text, 4)
    # What a plain json.loads reader sees: one tensor, the repeat silently dropped.
    assert len(json.loads(text)) == 1
    assert [k for k, _ in json_pairs(text) if k == "w"] == ["w", "w"]
    with pytest.raises(CheckpointError) as caught:
        open_checkpoint(path)
    assert "tensor name 'w' appears twice in the header" in str(caught.value)
    assert str(path) in str(caught.value)


def test_a_key_given_twice_inside_an_entry_is_refused(tmp_path: Path) -> None:
    text = '{"w": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4], "data_offsets": [0, 4]}}'
    path = write_safetensors(tmp_path / "inner.safetensors", text, 4)
    with pytest.raises(CheckpointError, match="key 'data_offsets' appears twice in one header"):
        open_checkpoint(path)


def test_escaped_names_without_repeats_still_open(tmp_path: Path) -> None:
    # ensure_ascii writes \\u escapes: the exact (slower) check runs and finds nothing.
    header = {
        "caf\u00e9": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]},
        "b": {"dtype": "F32", "shape": [1], "data_offsets": [4, 8]},
    }
    path = write_safetensors(tmp_path / "escaped.safetensors", json.dumps(header), 8)
    with safe_open(path, "np") as reference:
        expected = set(reference.keys())
    assert {t.name for t in open_checkpoint(path).tensors} == expected


# (dtype, header shape, byte span): spans are the rounded-up size, as a careless writer makes them.
SUB_BYTE_CASES = [
    ("F4", [3], 2),
    ("F4", [1], 1),
    ("F4", [2, 3], 3),
    ("F6_E2M3", [3], 3),
    ("F6_E3M2", [5], 4),
    ("F6_E2M3", [4], 3),
    ("F6_E3M2", [2, 8], 12),
]


@pytest.mark.parametrize(("dtype", "shape", "span"), SUB_BYTE_CASES)
def test_sub_byte_tensors_open_exactly_when_safetensors_opens_them(
    tmp_path: Path, dtype: str, shape: list[int], span: int
) -> None:
    header = {"w": {"dtype": dtype, "shape": shape, "data_offsets": [0, span]}}
    path = write_safetensors(tmp_path / "packed.safetensors", json.dumps(header), span)
    try:
        with safe_open(path, "pt") as reference:
            library_shape: list[int] | None = list(reference.get_slice("w").get_shape())
    except Exception:
        library_shape = None
    if library_shape is None:
        with pytest.raises(CheckpointError, match="do not fill whole bytes") as caught:
            open_checkpoint(path)
        assert f"'w' is {dtype} {shape}" in str(caught.value)
    else:
        (tensor,) = open_checkpoint(path).tensors
        assert list(tensor.shape) == library_shape
        assert tensor.nbytes == span


def test_a_real_fp4_file_opens(tmp_path: Path) -> None:
    import torch
    from safetensors.torch import save_file

    packed = torch.arange(12, dtype=torch.uint8).view(torch.float4_e2m1fn_x2).reshape(3, 4)
    path = tmp_path / "fp4.safetensors"
    save_file({"w": packed}, path)
    with safe_open(path, "pt") as reference:
        expected = list(reference.get_slice("w").get_shape())
    (tensor,) = open_checkpoint(path).tensors
    assert (tensor.dtype, list(tensor.shape)) == ("F4", expected)


@pytest.fixture
def sharded_with_leftovers(tmp_path: Path, llama_sharded_dir: Path) -> Path:
    folder = tmp_path / "model"
    shutil.copytree(llama_sharded_dir, folder)
    first = sorted(folder.glob("model-*.safetensors"))[0]
    # Leftovers of earlier saves: another shard count, and the unsharded file.
    shutil.copy(first, folder / "model-00001-of-00099.safetensors")
    shutil.copy(first, folder / "model.safetensors")
    return folder


def test_shards_beside_the_index_but_not_in_it_are_named(sharded_with_leftovers: Path) -> None:
    index = json.loads((sharded_with_leftovers / "model.safetensors.index.json").read_text())
    listed = set(index["weight_map"].values())
    assert not {"model-00001-of-00099.safetensors", "model.safetensors"} & listed
    for target in (sharded_with_leftovers, sharded_with_leftovers / "model.safetensors.index.json"):
        checkpoint = open_checkpoint(target)
        assert [t.name for t in checkpoint.tensors] == list(index["weight_map"])
        (warning,) = [w for w in checkpoint.warnings if "not in it" in w]
        assert warning.startswith("model-00001-of-00099.safetensors (and 1 more) is beside")
        assert "not shown" in warning


def test_a_clean_sharded_folder_has_no_warning(llama_sharded_dir: Path) -> None:
    assert open_checkpoint(llama_sharded_dir).warnings == ()
