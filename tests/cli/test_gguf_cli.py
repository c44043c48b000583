"""GGUF through the CLI: inspect, check, diff, scan and export as a user runs them."""

from __future__ import annotations

import json
from pathlib import Path

import torch

from tests.support.cli import assert_one_line_error, run_cli
from tests.support.gguf_fixtures import oracle_state_dict


def _json(*args: str | Path) -> tuple[int, dict]:
    done = run_cli(*map(str, args), "--json", env={"HF_HUB_OFFLINE": "1"}, timeout=300)
    assert done.returncode in (0, 1), done.stderr
    return done.returncode, json.loads(done.stdout)


def test_inspect_lists_hf_names_and_keeps_gguf_names(gguf_dir: Path) -> None:
    code, data = _json("inspect", gguf_dir / "tiny-Q8_0.gguf")
    assert code == 0
    assert data["format"] == "gguf"
    names = {t["name"]: t for t in data["tensors"]}
    table = data["metadata"]["gguf.tensors"]
    assert table["model.layers.1.mlp.down_proj.weight"]["gguf_name"] == "blk.1.ffn_down.weight"
    assert names["model.embed_tokens.weight"]["dtype"] == "Q8_0"
    assert names["model.embed_tokens.weight"]["shape"] == [128, 64]
    assert data["config"]["architectures"] == ["LlamaForCausalLM"]
    assert data["metadata"]["gguf"]["tokenizer"]["tokens"] == 128


def test_check_without_config_uses_the_files_own(gguf_dir: Path) -> None:
    code, data = _json("check", gguf_dir / "tiny-Q8_0.gguf")
    assert code == 0 and data["clean"]
    assert data["architecture"] == "LlamaForCausalLM"
    assert {d["checkpoint_dtype"] for d in data["dtype_differences"]} == {"Q8_0"}


def test_check_against_an_hf_config_agrees_with_transformers(
    gguf_dir: Path, gguf_hf_dir: Path
) -> None:
    from transformers import AutoConfig, AutoModelForCausalLM

    code, clean = _json("check", gguf_dir / "tiny-Q8_0.gguf", "--config", gguf_hf_dir)
    assert code == 0 and clean["clean"], clean
    code, data = _json(
        "check", gguf_dir / "tiny-Q8_0.gguf", "--config", gguf_hf_dir, "--set", "vocab_size=200"
    )
    assert code == 1
    config = AutoConfig.from_pretrained(gguf_hf_dir, vocab_size=200)
    _, info = AutoModelForCausalLM.from_pretrained(
        gguf_dir,
        gguf_file="tiny-Q8_0.gguf",
        config=config,
        ignore_mismatched_sizes=True,
        output_loading_info=True,
    )
    oracle = {entry[0] for entry in info["mismatched_keys"]}
    assert (
        {m["key"] for m in data["mismatched"]}
        == oracle
        == {
            "model.embed_tokens.weight",
            "lm_head.weight",
        }
    )


def test_diff_against_the_hf_checkpoint(gguf_dir: Path, gguf_hf_dir: Path) -> None:
    # The F32 file holds the HF model's values exactly, q/k permutation undone.
    code, same = _json("diff", gguf_dir / "tiny-F32.gguf", gguf_hf_dir)
    assert code == 0, same
    # Q8_0 differs by quantization only: small, measured against transformers' load.
    code, data = _json("diff", gguf_dir / "tiny-Q8_0.gguf", gguf_hf_dir)
    assert code == 1
    oracle = oracle_state_dict(gguf_dir, "tiny-Q8_0.gguf")
    from safetensors.torch import load_file

    original = load_file(gguf_hf_dir / "model.safetensors")
    changed = {t["key"]: t["max_abs_diff"] for t in data["changed"]}
    expected = {}
    for key, value in oracle.items():
        difference = float((value - original[key]).abs().max())
        if difference:
            expected[key] = difference
    assert set(changed) == set(expected)
    for key, difference in expected.items():
        assert changed[key] == pytest_approx(difference), key


def pytest_approx(value: float) -> object:
    import pytest

    return pytest.approx(value, rel=1e-5, abs=1e-7)


def test_scan_a_gguf_file(gguf_dir: Path) -> None:
    code, data = _json("scan", gguf_dir / "tiny-Q4_K.gguf")
    assert code == 0
    # Every tensor read (quantized ones dequantized), none skipped; the oracle counts values.
    oracle = oracle_state_dict(gguf_dir, "tiny-Q4_K.gguf")
    assert data["scanned"] == len(oracle) and not data["skipped"] and data["clean"]
    assert data["scanned_parameters"] == sum(v.numel() for v in oracle.values())


def test_export_safetensors_with_dtype(tmp_path: Path, gguf_dir: Path) -> None:
    from safetensors.torch import load_file

    out = tmp_path / "out"
    code, data = _json("export", "safetensors", gguf_dir / "tiny-Q8_0.gguf", out, "--dtype", "bf16")
    assert code == 0
    assert data["plan"]["kind"] == "gguf-safetensors"
    assert sorted(data["result"]["files"]) == ["config.json", "model.safetensors"]
    oracle = oracle_state_dict(gguf_dir, "tiny-Q8_0.gguf", dtype=torch.bfloat16)
    ours = load_file(out / "model.safetensors")
    assert set(ours) == set(oracle)
    assert all(torch.equal(ours[k], v) for k, v in oracle.items())
    assert json.loads((out / "config.json").read_text())["dtype"] == "bfloat16"


def test_dtype_is_for_gguf_sources_only(tmp_path: Path, gguf_hf_dir: Path) -> None:
    done = run_cli(
        "export", "safetensors", str(gguf_hf_dir), str(tmp_path / "o"), "--dtype", "bf16"
    )
    assert_one_line_error(done, "--dtype applies to GGUF sources")


def test_damaged_file_is_one_line(tmp_path: Path, gguf_dir: Path) -> None:
    path = tmp_path / "short.gguf"
    path.write_bytes((gguf_dir / "tiny-Q8_0.gguf").read_bytes()[:-64])
    done = run_cli("inspect", str(path))
    assert_one_line_error(done, str(path), "runs past the end of the file")
