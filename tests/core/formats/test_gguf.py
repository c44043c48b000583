"""Listing GGUF files: checked against gguf's own reader and transformers' own load."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from ckpt_gui.core.formats import open_checkpoint
from ckpt_gui.core.gguf.naming import TENSORS_KEY
from tests.support.gguf_fixtures import GGUF_TYPES, oracle_state_dict

REPO = Path(__file__).resolve().parents[3]


@pytest.mark.parametrize("qtype", GGUF_TYPES)
def test_tensors_match_the_gguf_reader(gguf_dir: Path, qtype: str) -> None:
    from gguf import GGUFReader

    path = gguf_dir / f"tiny-{qtype}.gguf"
    checkpoint = open_checkpoint(path)
    reader = GGUFReader(path)
    table = checkpoint.metadata[TENSORS_KEY]
    assert checkpoint.format == "gguf"
    assert len(checkpoint.tensors) == len(reader.tensors)
    for info, tensor in zip(checkpoint.tensors, reader.tensors, strict=True):
        assert table[info.name]["gguf_name"] == tensor.name
        assert info.dtype == tensor.tensor_type.name
        assert info.shape == tuple(reversed([int(d) for d in tensor.shape]))
        assert info.nbytes == tensor.n_bytes
        assert info.offset == tensor.data_offset
        assert info.parameters == tensor.n_elements
    assert checkpoint.total_parameters == sum(int(t.n_elements) for t in reader.tensors)


@pytest.mark.parametrize("qtype", GGUF_TYPES)
def test_names_shapes_and_counts_match_transformers(gguf_dir: Path, qtype: str) -> None:
    name = f"tiny-{qtype}.gguf"
    checkpoint = open_checkpoint(gguf_dir / name)
    oracle = oracle_state_dict(gguf_dir, name)
    assert {t.name: t.shape for t in checkpoint.tensors} == {
        k: tuple(v.shape) for k, v in oracle.items()
    }
    # Logical values, not stored blocks: a Q8_0 file counts what the model holds.
    assert checkpoint.total_parameters == sum(v.numel() for v in oracle.values())


def test_tied_embeddings_leave_no_lm_head(gguf_dir: Path) -> None:
    checkpoint = open_checkpoint(gguf_dir / "tied-Q8_0.gguf")
    oracle = oracle_state_dict(gguf_dir, "tied-Q8_0.gguf")
    assert checkpoint.config is not None and checkpoint.config["tie_word_embeddings"] is True
    assert {t.name for t in checkpoint.tensors} == set(oracle) - {"lm_head.weight"}


@pytest.mark.parametrize("qtype", ["Q8_0", "Q4_K"])
def test_config_is_the_one_transformers_derives(gguf_dir: Path, qtype: str) -> None:
    from transformers import AutoConfig

    name = f"tiny-{qtype}.gguf"
    checkpoint = open_checkpoint(gguf_dir / name)
    assert checkpoint.config is not None
    ours = AutoConfig.for_model(
        **{k: v for k, v in checkpoint.config.items() if k != "architectures"}
    ).to_diff_dict()
    theirs = AutoConfig.from_pretrained(gguf_dir, gguf_file=name).to_diff_dict()
    for recorded in ("quantization_config", "_model_name_or_path"):
        theirs.pop(recorded, None)
    assert ours == theirs
    assert checkpoint.config["architectures"] == ["LlamaForCausalLM"]


def test_causal_lm_table_matches_transformers() -> None:
    from transformers.models.auto.modeling_auto import MODEL_FOR_CAUSAL_LM_MAPPING_NAMES

    from ckpt_gui.core.gguf.hf_config import CAUSAL_LM_CLASSES

    for model_type, cls in CAUSAL_LM_CLASSES.items():
        assert MODEL_FOR_CAUSAL_LM_MAPPING_NAMES[model_type] == cls, model_type


def test_metadata_summary_and_tree(gguf_dir: Path) -> None:
    from gguf import GGUFReader

    path = gguf_dir / "tiny-Q8_0.gguf"
    checkpoint = open_checkpoint(path)
    reader = GGUFReader(path)
    summary = checkpoint.metadata["gguf"]
    assert summary["architecture"] == "llama"
    assert summary["context_length"] == reader.fields["llama.context_length"].contents()
    assert (
        summary["attention.head_count_kv"]
        == reader.fields["llama.attention.head_count_kv"].contents()
    )
    assert summary["rope.freq_base"] == reader.fields["llama.rope.freq_base"].contents()
    tokens = reader.fields["tokenizer.ggml.tokens"].contents()
    assert summary["tokenizer"]["tokens"] == len(tokens)
    assert summary["tokenizer"]["eos_token"] == tokens[2]
    tree = checkpoint.metadata["gguf.fields"]
    assert (
        tree["llama"]["attention"]["head_count"]
        == reader.fields["llama.attention.head_count"].contents()
    )
    # 128 tokens are summarised, not listed.
    assert "128 entries" in tree["tokenizer"]["ggml"]["tokens"]
    json.dumps(checkpoint.to_json())  # the whole description stays JSON


def test_listing_imports_neither_torch_nor_transformers(gguf_dir: Path) -> None:
    code = (
        "import sys\n"
        "from ckpt_gui.core.formats import open_checkpoint\n"
        f"c = open_checkpoint({str(gguf_dir / 'tiny-Q8_0.gguf')!r})\n"
        "assert c.tensors[0].name == 'model.embed_tokens.weight', c.tensors[0].name\n"
        "print(sorted(m for m in ('torch', 'transformers') if m in sys.modules))\n"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True
    )
    assert out.stdout.strip() == "[]"


@pytest.mark.parametrize("qtype", GGUF_TYPES)
def test_values_are_transformers_values(gguf_dir: Path, qtype: str) -> None:
    """Dequantized chunks, q/k rows in transformers' order, for statistics and histograms."""
    from ckpt_gui.core.values.chunks import iter_chunks
    from ckpt_gui.core.values.stats import compute_stats

    name = f"tiny-{qtype}.gguf"
    checkpoint = open_checkpoint(gguf_dir / name)
    oracle = oracle_state_dict(gguf_dir, name)
    for tensor in checkpoint.tensors:
        # 256 values a chunk: several chunks per tensor, each whole blocks.
        ours = np.concatenate(list(iter_chunks(checkpoint, tensor, 256)))
        np.testing.assert_array_equal(ours, oracle[tensor.name].float().numpy().reshape(-1))
    q_proj = checkpoint.tensor("model.layers.0.self_attn.q_proj.weight")
    stats = compute_stats(checkpoint, q_proj)
    reference = oracle[q_proj.name].double()
    assert stats.mean == pytest.approx(float(reference.mean()), rel=1e-6, abs=1e-9)
    assert stats.max == pytest.approx(float(reference.max()))


def test_scan_finds_nan_in_a_quantized_tensor(tmp_path: Path) -> None:
    import torch

    from ckpt_gui.core.jobs import run_to_completion
    from ckpt_gui.core.values.scan import scan
    from tests.support.gguf_fixtures import tiny_llama, write_llama_gguf

    model = tiny_llama()
    with torch.no_grad():
        model.model.layers[1].mlp.up_proj.weight[3, 5] = float("nan")
    path = write_llama_gguf(model, tmp_path / "nan.gguf", "Q8_0")
    oracle = oracle_state_dict(tmp_path, "nan.gguf")
    report = run_to_completion(scan(open_checkpoint(path)))
    flagged = {t.name: t.nan for t in report.tensors if t.nan}
    expected = {k: int(v.isnan().sum()) for k, v in oracle.items() if v.isnan().any()}
    assert flagged == expected and flagged


def test_a_folder_of_gguf_files_opens_one(gguf_dir: Path) -> None:
    checkpoint = open_checkpoint(gguf_dir)
    first = sorted(p.name for p in gguf_dir.glob("*.gguf"))[0]
    assert [f.path for f in checkpoint.files] == [first]
    assert checkpoint.format == "gguf"
    assert any("GGUF files" in w and first in w for w in checkpoint.warnings)
    # No config.json in the folder: the file's own (derived) config stays.
    assert checkpoint.config == open_checkpoint(gguf_dir / first).config
    assert checkpoint.config is not None
