"""Diff of two checkpoints against torch's own arithmetic, on tiny real Llama models."""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from ckpt_gui.core.diff.values import diff_structure, diff_values
from ckpt_gui.core.formats import open_checkpoint
from ckpt_gui.core.jobs import run_to_completion
from tests.support.diffscan_data import PERTURBED

ROOT = Path(__file__).resolve().parents[3]


def run_diff(a: Path, b: Path, **kwargs):  # type: ignore[no-untyped-def]
    return run_to_completion(diff_values(open_checkpoint(a), open_checkpoint(b), **kwargs))


def test_finetune_changes_exactly_the_perturbed_tensors(
    llama_dir: Path, finetuned_dir: Path, llama_state_dict
) -> None:
    import torch

    finetuned = open_checkpoint(finetuned_dir / "model.safetensors")
    report = run_diff(llama_dir, finetuned_dir)
    assert {t.key for t in report.changed} == set(PERTURBED)
    assert len(report.identical) == len(llama_state_dict) - 2
    assert report.different
    for t in report.changed:
        a = llama_state_dict[t.key].double()
        from safetensors import safe_open

        with safe_open(finetuned_dir / "model.safetensors", "pt") as handle:
            b = handle.get_tensor(t.key).double()
        assert finetuned.tensor(t.key).nbytes == a.numel() * 4
        assert t.max_abs_diff == pytest.approx(float((a - b).abs().max()), rel=1e-6)
        assert t.rel_l2 == pytest.approx(float((a - b).norm() / a.norm()), rel=1e-5)
        cosine = float(torch.nn.functional.cosine_similarity(a.flatten(), b.flatten(), dim=0))
        assert 1 - t.cosine == pytest.approx(1 - cosine, rel=1e-4)
        assert t.cosine < 1.0
    layer0 = report.modules["model.layers.0"]
    assert (layer0.changed, layer0.identical) == (1, layer0.tensors - 1)
    assert report.modules["model.layers.0.mlp"].changed == 0
    assert report.modules["model.layers.0.mlp"].rel_l2 == 0.0
    whole = report.modules[""]
    diffs = sum(
        float((llama_state_dict[k].double() - _load(finetuned_dir, k)).norm() ** 2)
        for k in PERTURBED
    )
    norms = sum(float(v.double().norm() ** 2) for v in llama_state_dict.values())
    assert whole.rel_l2 == pytest.approx((diffs / norms) ** 0.5, rel=1e-5)


def _load(folder: Path, key: str):  # type: ignore[no-untyped-def]
    from safetensors import safe_open

    with safe_open(folder / "model.safetensors", "pt") as handle:
        return handle.get_tensor(key).double()


def test_chunk_size_does_not_change_the_result(llama_dir: Path, finetuned_dir: Path) -> None:
    big = run_diff(llama_dir, finetuned_dir)
    small = run_diff(llama_dir, finetuned_dir, chunk_elements=64)
    for x, y in zip(big.tensors, small.tensors, strict=True):
        assert (x.key, x.status) == (y.key, y.status)
        assert x.rel_l2 == pytest.approx(y.rel_l2, rel=1e-5, abs=1e-12)
        assert x.max_abs_diff == y.max_abs_diff


def test_identical_across_formats_and_layouts(
    llama_dir: Path, llama_bin_dir: Path, llama_sharded_dir: Path, llama_bin_sharded_dir: Path
) -> None:
    for other in (llama_bin_dir, llama_sharded_dir, llama_bin_sharded_dir):
        report = run_diff(llama_dir, other)
        assert not report.different, other
        assert len(report.identical) == len(report.tensors) > 0
        assert report.modules[""].rel_l2 == 0.0


def test_dtype_conversion(tmp_path: Path, llama_dir: Path, llama_state_dict) -> None:
    import torch
    from safetensors.torch import save_file

    save_file(
        {k: v.to(torch.bfloat16) for k, v in llama_state_dict.items()},
        tmp_path / "bf16.safetensors",
    )
    report = run_diff(llama_dir, tmp_path / "bf16.safetensors")
    assert len(report.structure.dtype_changed) == len(llama_state_dict)
    assert not report.structure.shape_changed and not report.structure.only_in_a
    norm_key = "model.norm.weight"  # all ones: exactly representable in bf16
    by_key = {t.key: t for t in report.tensors}
    assert by_key[norm_key].status == "equal_values"
    key = "model.embed_tokens.weight"
    original = llama_state_dict[key]
    rounded = original.to(torch.bfloat16).float()
    assert by_key[key].status == "changed"
    assert by_key[key].max_abs_diff == pytest.approx(float((original - rounded).abs().max()))
    data = report.to_json()
    entry = next(d for d in data["dtype_changed"] if d["key"] == norm_key)
    assert entry == {
        "key": norm_key,
        "key_b": norm_key,
        "a_dtype": "F32",
        "b_dtype": "BF16",
        "values_equal": True,
    }


def test_base_model_copy_is_matched_by_prefix(tmp_path: Path, llama_dir: Path, llama_model) -> None:
    from safetensors.torch import save_file

    base = {k: v.detach().clone().contiguous() for k, v in llama_model.model.state_dict().items()}
    save_file(base, tmp_path / "base.safetensors")
    report = run_diff(llama_dir, tmp_path / "base.safetensors")
    structure = report.structure
    assert [(r.a_prefix, r.b_prefix, r.count) for r in structure.renames] == [
        ("model.", "", len(base))
    ]
    assert [t.name for t in structure.only_in_a] == ["lm_head.weight"]
    assert not structure.only_in_b
    assert len(report.identical) == len(base)
    assert all(p.b.name == p.key.removeprefix("model.") for p in structure.pairs)


def test_ddp_prefix_in_a_pickle(tmp_path: Path, llama_dir: Path, llama_state_dict) -> None:
    import torch

    torch.save({"module." + k: v for k, v in llama_state_dict.items()}, tmp_path / "ddp.pt")
    report = run_diff(tmp_path / "ddp.pt", llama_dir)
    assert [(r.a_prefix, r.b_prefix) for r in report.structure.renames] == [("module.", "")]
    assert len(report.identical) == len(llama_state_dict)


def test_shape_change_only_in_and_unrelated_leftovers(tmp_path: Path, llama_state_dict) -> None:
    import torch
    from safetensors.torch import save_file

    a = dict(llama_state_dict)
    b = {k: v for k, v in llama_state_dict.items() if k != "model.norm.weight"}
    b["model.embed_tokens.weight"] = torch.zeros(130, 32)
    b["extra.adapter.weight"] = torch.zeros(4)
    save_file(a, tmp_path / "a.safetensors")
    save_file(b, tmp_path / "b.safetensors")
    structure = diff_structure(
        open_checkpoint(tmp_path / "a.safetensors"), open_checkpoint(tmp_path / "b.safetensors")
    )
    assert [t.name for t in structure.only_in_a] == ["model.norm.weight"]
    assert [t.name for t in structure.only_in_b] == ["extra.adapter.weight"]
    assert not structure.renames  # one unrelated leftover on each side is not a rename
    assert [p.key for p in structure.shape_changed] == ["model.embed_tokens.weight"]
    report = run_diff(tmp_path / "a.safetensors", tmp_path / "b.safetensors")
    assert "model.embed_tokens.weight" not in {t.key for t in report.tensors}
    assert not report.changed and report.different


def test_nan_in_b_is_changed_without_metrics(
    tmp_path: Path, llama_dir: Path, llama_state_dict
) -> None:
    from safetensors.torch import save_file

    b = dict(llama_state_dict)
    key = "model.layers.0.mlp.up_proj.weight"
    b[key] = b[key].clone()
    b[key][0, 0] = float("nan")
    save_file(b, tmp_path / "nan.safetensors")
    report = run_diff(llama_dir, tmp_path / "nan.safetensors")
    (changed,) = report.changed
    assert changed.key == key and changed.rel_l2 is None and "NaN" in changed.note
    assert report.modules["model.layers.0.mlp"].without_metrics == 1


def test_callback_and_progress(llama_dir: Path, finetuned_dir: Path) -> None:
    seen = []
    job = diff_values(
        open_checkpoint(llama_dir),
        open_checkpoint(finetuned_dir),
        chunk_elements=256,
        on_tensor=seen.append,
    )
    progress = []
    while True:
        try:
            progress.append(next(job))
        except StopIteration as stop:
            report = stop.value
            break
    assert [t.key for t in seen] != [] and {t.key for t in seen} == {t.key for t in report.tensors}
    assert progress[-1].done == progress[-1].total == 2 * open_checkpoint(llama_dir).total_bytes
    assert all(p.done <= q.done for p, q in itertools.pairwise(progress))


def test_cancel_stops_readers(llama_dir: Path, finetuned_dir: Path) -> None:
    job = diff_values(open_checkpoint(llama_dir), open_checkpoint(finetuned_dir), chunk_elements=64)
    for _ in range(5):
        next(job)
    assert any(t.name == "tensor-stream" for t in threading.enumerate())
    job.close()
    assert not any(t.name == "tensor-stream" for t in threading.enumerate())


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, "-m", "ckpt_gui", *args], capture_output=True, text=True, env=env
    )


def test_cli_diff(
    llama_dir: Path, llama_bin_dir: Path, finetuned_dir: Path, tmp_path: Path
) -> None:
    same = cli("diff", str(llama_dir), str(llama_bin_dir), "--json")
    assert same.returncode == 0, same.stderr
    assert json.loads(same.stdout)["changed"] == [] and same.stderr == ""

    different = cli("diff", str(llama_dir), str(finetuned_dir), "--json")
    assert different.returncode == 1, different.stderr
    data = json.loads(different.stdout)
    for field in (
        "only_in_a",
        "only_in_b",
        "shape_changed",
        "dtype_changed",
        "changed",
        "identical",
        "renames",
    ):
        assert field in data
    assert {c["key"] for c in data["changed"]} == set(PERTURBED)
    assert set(data["changed"][0]) >= {"key", "max_abs_diff", "rel_l2", "cosine"}

    text = cli("diff", str(llama_dir), str(finetuned_dir))
    assert (
        text.returncode == 1 and PERTURBED[0] in text.stdout and "result  different" in text.stdout
    )

    missing = cli("diff", str(llama_dir), str(tmp_path / "nope"))
    assert missing.returncode == 2 and missing.stdout == "" and "no such file" in missing.stderr


def test_cli_structure_only_and_no_renames(
    llama_dir: Path, finetuned_dir: Path, tmp_path: Path, llama_state_dict
) -> None:
    from safetensors.torch import save_file

    structure = cli("diff", str(llama_dir), str(finetuned_dir), "--structure-only", "--json")
    assert structure.returncode == 0, structure.stderr  # same names, shapes and dtypes
    assert "changed" not in json.loads(structure.stdout)

    save_file({"module." + k: v for k, v in llama_state_dict.items()}, tmp_path / "ddp.safetensors")
    matched = json.loads(
        cli("diff", str(llama_dir), str(tmp_path / "ddp.safetensors"), "--json").stdout
    )
    assert matched["renames"] == [
        {"a_prefix": "", "b_prefix": "module.", "count": len(llama_state_dict)}
    ]
    assert matched["identical"] == len(llama_state_dict) and matched["different"] is True
    unmatched = json.loads(
        cli(
            "diff", str(llama_dir), str(tmp_path / "ddp.safetensors"), "--json", "--no-renames"
        ).stdout
    )
    assert unmatched["renames"] == [] and len(unmatched["only_in_a"]) == len(llama_state_dict)
