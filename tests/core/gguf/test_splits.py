"""Split GGUF sets (gguf's writer with split_max_tensors, as convert_hf_to_gguf.py splits).

transformers cannot load a split set, so the oracle is transformers' load of the same
model written unsplit: our conversion of the split set must equal it bit for bit.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from ckpt_gui.core.errors import CheckpointError
from ckpt_gui.core.export.gguf_source import gguf_to_safetensors
from ckpt_gui.core.formats import open_checkpoint
from ckpt_gui.core.jobs import run_to_completion
from ckpt_gui.core.values.scan import scan
from tests.support.gguf_fixtures import oracle_state_dict, tiny_llama, write_llama_gguf


@pytest.fixture(scope="module")
def split_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("gguf_split")
    model = tiny_llama()
    write_llama_gguf(model, folder / "whole.gguf", "Q8_0")
    first = write_llama_gguf(model, folder / "tiny.gguf", "Q8_0", split_max_tensors=8)
    assert first.name == "tiny-00001-of-00003.gguf"
    return folder


def _parts(folder: Path) -> list[Path]:
    return sorted(folder.glob("tiny-*-of-*.gguf"))


@pytest.mark.parametrize("part", [0, 2])
def test_any_part_opens_the_whole_model(split_dir: Path, part: int) -> None:
    from gguf import GGUFReader

    parts = _parts(split_dir)
    assert len(parts) == 3
    checkpoint = open_checkpoint(parts[part])
    whole = open_checkpoint(split_dir / "whole.gguf")
    assert [f.path for f in checkpoint.files] == [p.name for p in parts]
    assert {t.name: t.shape for t in checkpoint.tensors} == {t.name: t.shape for t in whole.tensors}
    assert checkpoint.config == whole.config
    # Each tensor's file is the part gguf's reader finds it in.
    where = {t.name: p.name for p in parts for t in GGUFReader(p).tensors}
    gguf_names = checkpoint.metadata["gguf.tensors"]
    for tensor in checkpoint.tensors:
        assert tensor.file == where[gguf_names[tensor.name]["gguf_name"]]
    assert len({t.file for t in checkpoint.tensors}) == 3


def test_export_equals_transformers_unsplit(tmp_path: Path, split_dir: Path) -> None:
    out = tmp_path / "out"
    run_to_completion(gguf_to_safetensors(_parts(split_dir)[0], out))
    ours = load_file(out / "model.safetensors")
    oracle = oracle_state_dict(split_dir, "whole.gguf")
    assert set(ours) == set(oracle)
    for key, value in oracle.items():
        assert torch.equal(ours[key], value), key


def test_scan_reads_every_part(split_dir: Path) -> None:
    whole_checkpoint = open_checkpoint(split_dir / "whole.gguf")
    report = run_to_completion(scan(open_checkpoint(_parts(split_dir)[1])))
    whole = run_to_completion(scan(whole_checkpoint))
    assert len(report.tensors) == len(whole_checkpoint.tensors)
    assert sorted(report.tensors, key=lambda t: t.name) == sorted(
        whole.tensors, key=lambda t: t.name
    )


def test_missing_part_is_one_line(tmp_path: Path, split_dir: Path) -> None:
    for part in _parts(split_dir)[:2]:
        shutil.copy(part, tmp_path / part.name)
    with pytest.raises(
        CheckpointError, match=r"split 3 of 3 is missing \(tiny-00003-of-00003.gguf\)"
    ):
        open_checkpoint(tmp_path / "tiny-00001-of-00003.gguf")


def test_inconsistent_parts_are_one_line(tmp_path: Path, split_dir: Path) -> None:
    parts = _parts(split_dir)
    for part in parts:
        shutil.copy(part, tmp_path / part.name)
    # Part 2 under part 3's name, and the reverse.
    (tmp_path / parts[1].name).write_bytes(parts[2].read_bytes())
    (tmp_path / parts[2].name).write_bytes(parts[1].read_bytes())
    with pytest.raises(CheckpointError, match="says it is part 3, its name says 2 of 3"):
        open_checkpoint(tmp_path / parts[0].name)


def test_renamed_part_cannot_find_the_others(tmp_path: Path, split_dir: Path) -> None:
    shutil.copy(_parts(split_dir)[0], tmp_path / "renamed.gguf")
    with pytest.raises(CheckpointError, match="split 1 of 3, but the file name"):
        open_checkpoint(tmp_path / "renamed.gguf")


def test_check_and_diff_over_all_parts(split_dir: Path, gguf_hf_dir: Path) -> None:
    """The CLI as a user runs it on the first part: the whole model is checked and compared."""
    import json

    from tests.support.cli import run_cli

    first = str(_parts(split_dir)[0])
    done = run_cli("check", first, "--json", env={"HF_HUB_OFFLINE": "1"}, timeout=300)
    assert done.returncode == 0, done.stderr
    check = json.loads(done.stdout)
    assert check["clean"] and not check["missing"]
    done = run_cli(
        "diff", first, str(split_dir / "whole.gguf"), "--json", env={"HF_HUB_OFFLINE": "1"}
    )
    assert done.returncode == 0, done.stdout  # identical values, every tensor compared
    diff = json.loads(done.stdout)
    assert diff["identical"] == diff["common"] == 21  # every tensor of the tiny Llama
    assert diff["only_in_a"] == diff["only_in_b"] == diff["changed"] == []


def test_folder_of_one_split_set_opens_it_whole(tmp_path: Path, split_dir: Path) -> None:
    for part in _parts(split_dir):
        shutil.copy(part, tmp_path / part.name)
    checkpoint = open_checkpoint(tmp_path)
    assert len(checkpoint.files) == 3
    assert not any("GGUF files" in w for w in checkpoint.warnings)  # one model, not three
