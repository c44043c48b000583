"""DCP and DeepSpeed ZeRO checkpoints, written by the real libraries, read without them.

Oracles: torch's ``dcp_to_torch_save`` (DCP's default encoding), the full state
dict DCP itself gathers (the safetensors encoding, which ``dcp_to_torch_save``
cannot read), DeepSpeed's ``get_fp32_state_dict_from_zero_checkpoint`` (ZeRO-2
and ZeRO-3) and torch's own load of the module weights. Every tensor must be
equal bit for bit.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from ckpt_gui.core.errors import CheckpointError
from ckpt_gui.core.export.convert import plan_convert, plan_safetensors, run_plan
from ckpt_gui.core.formats import open_checkpoint
from ckpt_gui.core.jobs import run_to_completion
from ckpt_gui.core.values.stats import compute_stats
from tests.support.cli import REPO_ROOT
from tests.support.distributed_fixtures import zero_oracle


def _dcp_oracle(folder: Path, tmp_path: Path) -> dict[str, Any]:
    import torch
    from torch.distributed.checkpoint.format_utils import dcp_to_torch_save

    dcp_to_torch_save(folder, tmp_path / "oracle.pt")
    return dict(torch.load(tmp_path / "oracle.pt", weights_only=True)["model"])


def _zero_oracle(folder: Path, tmp_path: Path) -> dict[str, Any]:
    import torch

    return dict(torch.load(zero_oracle(folder, tmp_path / "zero.pt"), weights_only=True))


def _merged(folder: Path, out: Path, **options: Any) -> dict[str, Any]:
    from safetensors.torch import load_file

    plan = plan_safetensors(folder, out, **options)
    run_to_completion(run_plan(plan))
    index = out / "model.safetensors.index.json"
    shards = ["model.safetensors"]
    if index.exists():
        shards = sorted(set(json.loads(index.read_text())["weight_map"].values()))
    tensors: dict[str, Any] = {}
    for shard in shards:
        tensors.update(load_file(out / shard))
    return tensors


def _assert_equal(ours: dict[str, Any], oracle: dict[str, Any]) -> None:
    import torch

    assert set(ours) == set(oracle)
    for name, value in oracle.items():
        assert ours[name].dtype == value.dtype, name
        assert torch.equal(ours[name], value), name


def test_dcp_lists_the_full_tensors_of_the_model_group(dcp_dir: Path, tmp_path: Path) -> None:
    oracle = _dcp_oracle(dcp_dir, tmp_path)
    checkpoint = open_checkpoint(dcp_dir)
    assert checkpoint.format == "dcp"
    assert {t.name: t.shape for t in checkpoint.tensors} == {
        k: tuple(v.shape) for k, v in oracle.items()
    }
    assert {t.dtype for t in checkpoint.tensors} == {"F32"}
    assert checkpoint.total_parameters == sum(v.numel() for v in oracle.values())
    groups = checkpoint.metadata["dcp"]["groups"]
    assert set(groups) == {"model", "optim"}
    assert "exp_avg" in groups["optim"]["summary"]
    # FSDP2 shards every weight over both ranks: two chunks in two files.
    chunks = checkpoint.metadata["chunks"]["model.layers.0.mlp.up_proj.weight"]
    assert chunks == {"count": 2, "files": ["__0_0.distcp", "__1_0.distcp"]}


def test_dcp_merge_equals_dcp_to_torch_save(dcp_dir: Path, tmp_path: Path) -> None:
    oracle = _dcp_oracle(dcp_dir, tmp_path)
    _assert_equal(_merged(dcp_dir, tmp_path / "out", max_shard_size=40_000), oracle)


def test_dcp_safetensors_encoding_equals_the_gathered_state_dict(
    dcp_safetensors_dir: Path, tmp_path: Path
) -> None:
    import torch

    reference = torch.load(
        dcp_safetensors_dir.parent / "checkpoint-reference.pt", weights_only=True
    )
    _assert_equal(_merged(dcp_safetensors_dir, tmp_path / "out"), dict(reference))


def test_dcp_merge_with_config_loads_in_transformers(dcp_dir: Path, tmp_path: Path) -> None:
    import torch
    from transformers import AutoModelForCausalLM

    out = tmp_path / "hf"
    plan = plan_safetensors(dcp_dir, out, config=dcp_dir.parent / "checkpoint-config")
    run_to_completion(run_plan(plan))
    model, info = AutoModelForCausalLM.from_pretrained(out, output_loading_info=True)
    assert info["missing_keys"] == set() or not info["missing_keys"]
    assert not info["unexpected_keys"] and not info["mismatched_keys"]
    oracle = _dcp_oracle(dcp_dir, tmp_path)
    for name, value in model.state_dict().items():
        assert torch.equal(value, oracle[name]), name


def test_dcp_convert_to_bf16(dcp_dir: Path, tmp_path: Path) -> None:
    import torch
    from safetensors.torch import load_file

    oracle = _dcp_oracle(dcp_dir, tmp_path)
    run_to_completion(run_plan(plan_convert(dcp_dir, tmp_path / "bf16", "BF16")))
    written = load_file(tmp_path / "bf16" / "model.safetensors")
    for name, value in oracle.items():
        assert torch.equal(written[name], value.to(torch.bfloat16)), name


def test_statistics_of_a_dcp_tensor(dcp_dir: Path, tmp_path: Path) -> None:
    oracle = _dcp_oracle(dcp_dir, tmp_path)
    checkpoint = open_checkpoint(dcp_dir)
    name = "model.layers.1.self_attn.o_proj.weight"
    stats = compute_stats(checkpoint, checkpoint.tensor(name))
    value = oracle[name].double()
    assert stats.min == pytest.approx(float(value.min()))
    assert stats.max == pytest.approx(float(value.max()))
    assert stats.mean == pytest.approx(float(value.mean()), rel=1e-6, abs=1e-9)


@pytest.mark.parametrize("stage", [1, 2, 3])
def test_zero_fp32_weights_equal_deepspeeds_own(stage: int, request: pytest.FixtureRequest, tmp_path: Path) -> None:
    folder: Path = request.getfixturevalue(f"zero{stage}_dir")
    oracle = _zero_oracle(folder, tmp_path)
    checkpoint = open_checkpoint(folder)
    assert checkpoint.format == f"deepspeed-zero{stage}"
    assert checkpoint.metadata["deepspeed"]["tag"] == "global_step1"
    assert checkpoint.metadata["weight_set"] == "fp32"
    assert {t.name: t.shape for t in checkpoint.tensors} == {
        k: tuple(v.shape) for k, v in oracle.items()
    }
    _assert_equal(_merged(folder, tmp_path / "out", max_shard_size=30_000), oracle)


def test_zero2_module_weights_equal_torchs_load(zero2_dir: Path) -> None:
    import torch

    from ckpt_gui.core.formats.distributed.checkpoint import read

    states = torch.load(
        zero2_dir / "global_step1" / "mp_rank_00_model_states.pt", weights_only=True
    )["module"]
    checkpoint = read(zero2_dir, "deepspeed", weight_set="module")
    assert {t.name: (t.dtype, t.shape) for t in checkpoint.tensors} == {
        k: ("BF16", tuple(v.shape)) for k, v in states.items()
    }


def test_listing_imports_neither_torch_nor_deepspeed(dcp_dir: Path, zero3_dir: Path) -> None:
    probe = (
        "import sys\n"
        "from ckpt_gui.core.formats import open_checkpoint\n"
        f"assert len(open_checkpoint({str(dcp_dir)!r}).tensors) > 0\n"
        f"assert len(open_checkpoint({str(zero3_dir)!r}).tensors) > 0\n"
        "assert 'torch' not in sys.modules and 'deepspeed' not in sys.modules, 'imported'\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, cwd=REPO_ROOT, timeout=120
    )
    assert done.returncode == 0, done.stderr


# -- bad input ----------------------------------------------------------------------------


def _copy(folder: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "copy"
    shutil.copytree(folder, copy)
    return copy


def test_missing_rank_file(dcp_dir: Path, tmp_path: Path) -> None:
    copy = _copy(dcp_dir, tmp_path)
    (copy / "__1_0.distcp").unlink()
    (copy / "__9_0.distcp").write_bytes(b"")  # still looks like a DCP folder
    with pytest.raises(CheckpointError, match=r"__1_0\.distcp: missing: the metadata places \d+"):
        open_checkpoint(copy)


def test_truncated_rank_file(dcp_dir: Path, tmp_path: Path) -> None:
    copy = _copy(dcp_dir, tmp_path)
    data = (copy / "__0_0.distcp").read_bytes()
    (copy / "__0_0.distcp").write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match=r"__0_0\.distcp: the metadata points at byte"):
        open_checkpoint(copy)
    assert not (tmp_path / "out").exists()
    with pytest.raises(CheckpointError):
        plan_safetensors(copy, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_corrupted_chunk_fails_the_export_and_writes_nothing(dcp_dir: Path, tmp_path: Path) -> None:
    from ckpt_gui.core.formats.distributed.dcp import read_metadata

    copy = _copy(dcp_dir, tmp_path)
    layout = read_metadata(copy).tensors["model.model.norm.weight"]
    piece = next(p for p in layout.pieces if p.file == "__1_0.distcp")
    path = copy / piece.file
    data = bytearray(path.read_bytes())
    # The chunk's torch archive loses its central directory: no longer readable.
    data[piece.offset + piece.length - 22 : piece.offset + piece.length] = bytes(22)
    path.write_bytes(bytes(data))
    plan = plan_safetensors(copy, tmp_path / "out")
    with pytest.raises(CheckpointError, match=r"__1_0\.distcp"):
        run_to_completion(run_plan(plan))
    assert not (tmp_path / "out").exists()


def test_stray_rank_file_is_reported(dcp_dir: Path, tmp_path: Path) -> None:
    copy = _copy(dcp_dir, tmp_path)
    shutil.copyfile(copy / "__1_0.distcp", copy / "__2_0.distcp")
    checkpoint = open_checkpoint(copy)
    assert any("__2_0.distcp" in w and "not in the metadata" in w for w in checkpoint.warnings)


def test_metadata_that_is_not_dcp(dcp_dir: Path, tmp_path: Path) -> None:
    copy = _copy(dcp_dir, tmp_path)
    (copy / ".metadata").write_bytes(b"\x80\x04K\x01.")  # a pickled int
    with pytest.raises(CheckpointError, match=r"\.metadata: not DCP metadata \(holds int\)"):
        open_checkpoint(copy)


def test_zero_rank_count_that_disagrees_with_the_files(zero2_dir: Path, tmp_path: Path) -> None:
    copy = _copy(zero2_dir, tmp_path)
    (copy / "global_step1" / "bf16_zero_pp_rank_1_mp_rank_00_optim_states.pt").unlink()
    with pytest.raises(CheckpointError, match=r"say 2 ranks, but the folder has 1"):
        open_checkpoint(copy)


def test_zero_latest_naming_a_missing_tag(zero2_dir: Path, tmp_path: Path) -> None:
    copy = _copy(zero2_dir, tmp_path)
    (copy / "latest").write_text("global_step7")
    with pytest.raises(CheckpointError, match=r"latest: names tag 'global_step7'"):
        open_checkpoint(copy)


def test_dcp_with_the_model_at_top_level(tmp_path: Path) -> None:
    """torchtitan saves the model's weights at the top of the state dict, beside other groups."""
    import torch
    import torch.distributed.checkpoint as dcp

    from tests.support.make_distributed import tiny_llama

    _, model = tiny_llama()
    weights = {k: v.detach().clone() for k, v in model.state_dict().items()}
    dcp.save({**weights, "train_state": {"step": torch.tensor(7)}}, checkpoint_id=tmp_path / "t")
    checkpoint = open_checkpoint(tmp_path / "t")
    assert checkpoint.metadata["weight_set"] == "(top level)"
    assert {t.name for t in checkpoint.tensors} == set(weights)
    _assert_equal(_merged(tmp_path / "t", tmp_path / "out"), weights)


# -- DeepSpeed tags ------------------------------------------------------------------------


def test_zero_tags_each_equal_deepspeeds_own_at_that_tag(zero2_two_tags_dir: Path, tmp_path: Path) -> None:
    import torch

    folder = zero2_two_tags_dir
    default = open_checkpoint(folder)
    facts = default.metadata["deepspeed"]
    assert facts["tags"] == ["global_step1", "global_step2"]
    assert facts["tag"] == facts["latest"] == "global_step2" == (folder / "latest").read_text().strip()
    merged = {}
    for tag in ("global_step1", "global_step2"):
        oracle = dict(torch.load(zero_oracle(folder, tmp_path / f"{tag}.pt", tag), weights_only=True))
        checkpoint = open_checkpoint(folder, tag=tag)
        assert checkpoint.metadata["deepspeed"]["tag"] == tag
        assert checkpoint.metadata["deepspeed"]["latest"] == "global_step2"
        merged[tag] = _merged(folder, tmp_path / tag, tag=tag)
        _assert_equal(merged[tag], oracle)
    name = "model.layers.1.self_attn.o_proj.weight"
    assert not torch.equal(merged["global_step1"][name], merged["global_step2"][name])


def test_zero_step_folder_reads_its_own_tag_and_refuses_another(zero2_two_tags_dir: Path) -> None:
    step = zero2_two_tags_dir / "global_step1"
    checkpoint = open_checkpoint(step)
    facts = checkpoint.metadata["deepspeed"]
    assert (facts["tag"], facts["step_folder"], facts["latest"]) == ("global_step1", True, "global_step2")
    # Its values are read from the step folder itself (this used to look for global_step1/ inside it).
    name = "model.layers.0.mlp.up_proj.weight"
    top = open_checkpoint(zero2_two_tags_dir, tag="global_step1")
    ours = compute_stats(checkpoint, checkpoint.tensor(name))
    assert ours.count == checkpoint.tensor(name).parameters
    assert ours == compute_stats(top, top.tensor(name))
    assert open_checkpoint(step, tag="global_step1").metadata["deepspeed"]["tag"] == "global_step1"
    with pytest.raises(CheckpointError, match=r"global_step1: is the folder of tag 'global_step1'; open .* to choose tag 'global_step2'"):
        open_checkpoint(step, tag="global_step2")


def test_zero_unknown_tag_and_tag_elsewhere(zero2_two_tags_dir: Path, dcp_dir: Path) -> None:
    with pytest.raises(CheckpointError, match=r"no tag 'global_step9' \(have global_step1, global_step2\)"):
        open_checkpoint(zero2_two_tags_dir, tag="global_step9")
    with pytest.raises(CheckpointError, match=r"--tag chooses a DeepSpeed tag; this is a dcp folder"):
        open_checkpoint(dcp_dir, tag="global_step1")
