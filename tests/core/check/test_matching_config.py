"""CONFIG resolution, remote-code refusal, training checkpoints and cheap imports."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from ckpt_gui.core.check.config_source import apply_overrides, parse_override, resolve_config
from ckpt_gui.core.check.key_groups import group_keys
from ckpt_gui.core.check.matching import compare
from ckpt_gui.core.errors import CheckpointError
from ckpt_gui.core.targets import open_target
from tests.support.matching_oracle import build_model, oracle, ours, state_dict_of, write_folder

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="module")
def llama_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    model = build_model("LlamaForCausalLM")
    return write_folder(tmp_path_factory.mktemp("llama"), model, state_dict_of(model))


def custom_code_folder(tmp_path: Path, llama_folder: Path, **config_changes: object) -> Path:
    """A folder whose config asks for remote code that would leave a marker if ever run."""
    folder = tmp_path / "custom"
    folder.mkdir()
    (folder / "model.safetensors").write_bytes((llama_folder / "model.safetensors").read_bytes())
    config = json.loads((llama_folder / "config.json").read_text())
    config.update(config_changes)
    (folder / "config.json").write_text(json.dumps(config))
    marker = tmp_path / "EXECUTED"
    code = f"open({str(marker)!r}, 'w').write('remote code ran')\n"
    for name in ("modeling_custom.py", "configuration_custom.py"):
        (folder / name).write_text(code)
    return folder


@pytest.mark.parametrize(
    "changes",
    [
        {
            "auto_map": {
                "AutoConfig": "configuration_custom.CustomConfig",
                "AutoModelForCausalLM": "modeling_custom.CustomForCausalLM",
            },
            "architectures": ["CustomForCausalLM"],
        },
        {"model_type": "totally_custom", "architectures": None},
        {"architectures": ["CustomForCausalLM"]},
    ],
    ids=["auto_map", "unknown_model_type", "unknown_architecture"],
)
def test_remote_code_is_refused_and_never_run(
    tmp_path: Path, llama_folder: Path, changes: dict
) -> None:
    folder = custom_code_folder(tmp_path, llama_folder, **changes)
    checkpoint = open_target(folder)
    with pytest.raises(CheckpointError) as error:
        compare(checkpoint, resolve_config(None, checkpoint))
    assert "custom code" in str(error.value)
    assert "--config LlamaForCausalLM" in str(error.value)
    assert str(folder) in str(error.value)
    # The offered way out works: compare with a built-in architecture.
    report = compare(checkpoint, resolve_config("LlamaForCausalLM", checkpoint))
    assert report.architecture == "LlamaForCausalLM"
    assert not (tmp_path / "EXECUTED").exists()


def test_architecture_name_uses_the_checkpoints_values(llama_folder: Path) -> None:
    checkpoint = open_target(llama_folder)
    report = compare(checkpoint, resolve_config("LlamaForCausalLM", checkpoint))
    assert report.clean and not report.warnings


def test_architecture_of_another_family_uses_its_defaults(llama_folder: Path) -> None:
    checkpoint = open_target(llama_folder)
    config = resolve_config("GPT2LMHeadModel", checkpoint, {"n_layer": 1})
    report = compare(checkpoint, config)
    assert report.architecture == "GPT2LMHeadModel"
    assert any("gpt2 defaults" in w for w in report.warnings)
    assert "transformer.h.0.attn.c_attn.weight" in report.missing
    assert "transformer.h.1.attn.c_attn.weight" not in report.missing  # override applied


def test_bad_config_specs(
    tmp_path: Path, llama_folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # no test touches the network
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf-cache"))
    checkpoint = open_target(llama_folder)
    with pytest.raises(CheckpointError, match="not a model architecture"):
        compare(checkpoint, resolve_config("NotAModelAtAll", checkpoint))
    with pytest.raises(
        CheckpointError, match=r"some-org/some-model.*HF_HUB_OFFLINE is set.*not in the local cache"
    ) as offline:
        resolve_config("some-org/some-model", checkpoint)
    assert "\n" not in str(offline.value)
    with pytest.raises(CheckpointError, match="no such file"):
        resolve_config("./missing/config.json", checkpoint)
    broken = tmp_path / "config.json"
    broken.write_text("{not json")
    with pytest.raises(CheckpointError, match="not valid JSON") as error:
        resolve_config(broken, checkpoint)
    assert str(broken) in str(error.value)
    (tmp_path / "list.json").write_text("[1, 2]")
    with pytest.raises(CheckpointError, match="JSON object"):
        resolve_config(tmp_path / "list.json", checkpoint)
    (tmp_path / "empty").mkdir()
    with pytest.raises(CheckpointError, match=r"has no config\.json"):
        resolve_config(tmp_path / "empty", checkpoint)


def test_checkpoint_without_config_needs_one(tmp_path: Path, llama_folder: Path) -> None:
    (tmp_path / "model.safetensors").write_bytes((llama_folder / "model.safetensors").read_bytes())
    checkpoint = open_target(tmp_path / "model.safetensors")
    with pytest.raises(CheckpointError, match="--config"):
        resolve_config(None, checkpoint)
    report = compare(checkpoint, resolve_config(llama_folder, checkpoint))
    assert report.clean


def test_config_folder_and_file_are_equivalent(llama_folder: Path) -> None:
    checkpoint = open_target(llama_folder)
    by_folder = compare(checkpoint, resolve_config(llama_folder, checkpoint))
    by_file = compare(checkpoint, resolve_config(llama_folder / "config.json", checkpoint))
    assert by_folder.to_json()["status_by_key"] == by_file.to_json()["status_by_key"]


def test_overrides() -> None:
    assert parse_override("vocab_size=32001") == ("vocab_size", 32001)
    assert parse_override("hidden_act=gelu") == ("hidden_act", "gelu")
    assert parse_override("tie_word_embeddings=true") == ("tie_word_embeddings", True)
    with pytest.raises(CheckpointError, match="key=value"):
        parse_override("vocab_size")
    values = apply_overrides(
        {"text_config": {"hidden_size": 8}, "a": 1}, {"text_config.hidden_size": 16}
    )
    assert values == {"text_config": {"hidden_size": 16}, "a": 1}


def test_nested_training_checkpoint(tmp_path: Path) -> None:
    """A Lightning-style .ckpt: weights under 'state_dict' with a 'model.' attribute prefix."""
    import torch

    model = build_model("BertForMaskedLM")
    inner = {"model." + k: v for k, v in state_dict_of(model).items()}
    folder = tmp_path / "training"
    folder.mkdir()
    model.config.to_json_file(folder / "config.json")
    torch.save(
        {"state_dict": inner, "epoch": 3, "optimizer_states": [{"lr": 0.1}]},
        folder / "last.ckpt",
    )
    got, report = ours(folder, "BertForMaskedLM")
    # transformers' answer for the same weights as a plain state dict:
    flat = write_folder(tmp_path / "flat", model, inner)
    assert got == oracle(flat, "BertForMaskedLM")
    assert any("'state_dict'" in w for w in report.warnings)
    assert [s.rename.old for s in report.suggestions] == ["model."]


def test_pytorch_bin_checkpoint(llama_bin_dir: Path, tmp_path: Path) -> None:
    import json
    import shutil

    checkpoint = open_target(llama_bin_dir)
    report = compare(checkpoint, resolve_config("LlamaForCausalLM", checkpoint))
    assert report.clean and report.counts["ok"] == len(checkpoint.tensors)
    # A config.json that names no architecture: like AutoModel, the base model is used.
    folder = shutil.copytree(llama_bin_dir, tmp_path / "no-architectures")
    config = json.loads((folder / "config.json").read_text())
    config.pop("architectures", None)
    (folder / "config.json").write_text(json.dumps(config))
    checkpoint = open_target(folder)
    base = compare(checkpoint, resolve_config(None, checkpoint))
    assert base.architecture == "LlamaModel" and base.unexpected == ("lm_head.weight",)


def test_dtype_differences_are_informational(tmp_path: Path) -> None:
    import torch

    model = build_model("LlamaForCausalLM")
    state = {k: v.to(torch.bfloat16) for k, v in state_dict_of(model).items()}
    model.config.dtype = "float16"
    folder = write_folder(tmp_path / "ckpt", model, state)
    _, report = ours(folder, None)
    assert report.clean
    assert report.model_dtype == "F16"
    assert {(d.checkpoint_dtype, d.model_dtype) for d in report.dtype_differences} == {
        ("BF16", "F16")
    }
    assert len(report.dtype_differences) == len(state)


def test_importing_matching_is_cheap() -> None:
    code = (
        "import sys, ckpt_gui.core.check.matching, ckpt_gui.commands.check_cmd;"
        "heavy = [m for m in ('torch', 'transformers', 'PySide6') if m in sys.modules];"
        "print(heavy); sys.exit(1 if heavy else 0)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_group_keys() -> None:
    keys = [f"model.layers.{i}.mlp.up_proj.weight" for i in range(32)]
    keys += ["lm_head.weight", "model.layers.3.x.weight", "model.layers.7.x.weight"]
    groups = group_keys(keys)
    assert [(g.pattern, len(g.keys)) for g in groups] == [
        ("model.layers.{0..31}.mlp.up_proj.weight", 32),
        ("lm_head.weight", 1),
        ("model.layers.{3,7}.x.weight", 2),
    ]


@pytest.mark.parametrize(
    ("override", "problem"),
    [
        ({"hidden_size": 30}, "not a multiple of the number of attention heads"),
        ({"vocab_size": "many"}, "expected int"),
    ],
)
def test_config_that_cannot_be_built_is_a_clean_error(
    llama_folder: Path, override: dict, problem: str
) -> None:
    checkpoint = open_target(llama_folder)
    with pytest.raises(CheckpointError, match="cannot build LlamaForCausalLM") as error:
        compare(checkpoint, resolve_config(None, checkpoint, override), use_cache=False)
    assert problem in str(error.value) and "\n" not in str(error.value)
    assert str(error.value).startswith(str(llama_folder))


def test_zero_layers_config_reports_every_layer_unexpected(llama_folder: Path) -> None:
    """transformers accepts num_hidden_layers=-1 (no layers); so do we, and say what follows."""
    checkpoint = open_target(llama_folder)
    report = compare(checkpoint, resolve_config(None, checkpoint, {"num_hidden_layers": -1}))
    assert report.unexpected and all(".layers." in k for k in report.unexpected)
    assert not report.missing


def test_architecture_registry_for_the_picker() -> None:
    from ckpt_gui.core.check.expected import available_architectures, default_config_values

    names = available_architectures()
    assert {"LlamaForCausalLM", "BertForMaskedLM", "T5ForConditionalGeneration"} <= set(names)
    values = default_config_values("LlamaForCausalLM")
    assert values["model_type"] == "llama" and values["hidden_size"] == 4096
    with pytest.raises(CheckpointError, match="not a model architecture"):
        default_config_values("NoSuchModel")
