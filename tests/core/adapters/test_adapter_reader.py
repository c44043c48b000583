"""Adapter folders open as adapters: settings as peft wrote them, facts from the tensors."""

from __future__ import annotations

import json
import math
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from ckpt_gui.core.errors import CheckpointError
from ckpt_gui.core.targets import open_target
from tests.support.cli import REPO_ROOT
from tests.support.peft_fixtures import save_adapter, save_base


def _peft_model(base: Path, adapter: Path):
    import warnings

    from peft import PeftModel

    from tests.support.peft_fixtures import load_base

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return PeftModel.from_pretrained(load_base(base), adapter)


def test_settings_and_scales_match_peft(rich_pair: tuple[Path, Path]) -> None:
    base, adapter = rich_pair
    info = open_target(adapter).adapter
    assert info is not None
    model = _peft_model(base, adapter)
    config = model.peft_config["default"]
    assert info.settings.r == config.r
    assert info.settings.lora_alpha == config.lora_alpha
    assert info.settings.use_dora is True
    assert sorted(info.settings.target_modules) == sorted(config.target_modules)
    assert info.settings.modules_to_save == tuple(config.modules_to_save)
    assert info.settings.base_model == str(base)
    # Every LoRA layer peft built: its rank, scale, DoRA, as our summary says.
    from peft.tuners.lora import LoraLayer

    built = {
        name.removeprefix("base_model.model."): layer
        for name, layer in model.named_modules()
        if isinstance(layer, LoraLayer)
    }
    ours = info.module_map
    assert set(ours) == set(built)
    for name, layer in built.items():
        assert ours[name].r == layer.r["default"], name
        assert math.isclose(ours[name].scale, layer.scaling["default"]), name
        assert ours[name].dora == bool(layer.use_dora["default"]), name
    assert ours["model.embed_tokens"].kind == "embedding"
    assert info.replaced == ("lm_head.weight", "model.embed_tokens.weight")
    # Adapted parameters: what peft saved, counted by safetensors itself.
    from safetensors import safe_open

    with safe_open(str(adapter / "adapter_model.safetensors"), "pt") as f:
        names = list(f.keys())
        saved = sum(math.prod(f.get_slice(k).get_shape()) for k in names)
    assert info.adapted_parameters == saved


def test_rslora_scale_matches_peft(tmp_path: Path, lora_pair: tuple[Path, Path]) -> None:
    base, _ = lora_pair
    adapter = save_adapter(tmp_path / "rs", base, r=16, lora_alpha=8, use_rslora=True)
    info = open_target(adapter).adapter
    assert info is not None
    model = _peft_model(base, adapter)
    layer = model.base_model.model.model.layers[0].self_attn.q_proj
    assert math.isclose(info.settings.scale, layer.scaling["default"])
    assert math.isclose(info.settings.scale, 8 / math.sqrt(16))


def test_base_found_as_local_folder(lora_pair: tuple[Path, Path]) -> None:
    base, adapter = lora_pair
    info = open_target(adapter).adapter
    assert info is not None
    assert info.base_path == str(base) and info.base_found_by == "local folder"


def test_base_found_in_hf_cache(tmp_path: Path, lora_pair: tuple[Path, Path], monkeypatch) -> None:
    base, adapter = lora_pair
    commit = "a" * 40
    repo = tmp_path / "hub" / "models--org--tiny"
    shutil.copytree(base, repo / "snapshots" / commit)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(commit)
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    copy = tmp_path / "adapter"
    shutil.copytree(adapter, copy)
    config = json.loads((copy / "adapter_config.json").read_text())
    config["base_model_name_or_path"] = "org/tiny"
    (copy / "adapter_config.json").write_text(json.dumps(config))
    info = open_target(copy).adapter
    assert info is not None
    assert info.base_found_by == "Hugging Face cache"
    assert info.base_path == str(repo / "snapshots" / commit)


def test_inspect_json_adapter_object_without_torch(lora_pair: tuple[Path, Path]) -> None:
    _, adapter = lora_pair
    code = (
        "import json, sys\n"
        "from ckpt_gui.cli import main\n"
        f"main(['inspect', {str(adapter)!r}, '--json'])\n"
        "assert 'torch' not in sys.modules and 'peft' not in sys.modules\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env={"PYTHONPATH": str(REPO_ROOT), "PATH": "/usr/bin:/bin"},
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)["adapter"]
    saved = json.loads((adapter / "adapter_config.json").read_text())
    assert data["r"] == saved["r"] and data["lora_alpha"] == saved["lora_alpha"]
    assert sorted(data["target_modules"]) == sorted(saved["target_modules"])
    assert data["base_model"] == saved["base_model_name_or_path"]


def test_adapter_weight_and_config_files_open_the_folder(lora_pair: tuple[Path, Path]) -> None:
    _, adapter = lora_pair
    for path in (adapter / "adapter_config.json", adapter / "adapter_model.safetensors"):
        assert open_target(path).adapter is not None


def test_bin_adapter_reads_through_weights_only_loader(
    tmp_path: Path, lora_pair: tuple[Path, Path]
) -> None:
    import warnings

    from peft import PeftModel

    from tests.support.peft_fixtures import load_base

    base, adapter = lora_pair
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = PeftModel.from_pretrained(load_base(base), adapter)
        model.save_pretrained(tmp_path / "bin", safe_serialization=False)
    checkpoint = open_target(tmp_path / "bin")
    assert (tmp_path / "bin" / "adapter_model.bin").is_file()
    assert checkpoint.adapter is not None
    assert {m.module for m in checkpoint.adapter.modules} == {
        m.module
        for m in open_target(adapter).adapter.modules  # type: ignore[union-attr]
    }


def test_unknown_peft_type_opens_with_warning(tmp_path: Path, lora_pair: tuple[Path, Path]) -> None:
    _, adapter = lora_pair
    copy = tmp_path / "odd"
    shutil.copytree(adapter, copy)
    (copy / "adapter_config.json").write_text(json.dumps({"peft_type": "SPARKLE"}))
    checkpoint = open_target(copy)
    assert checkpoint.adapter is not None and not checkpoint.adapter.settings.supported
    assert any("unknown SPARKLE adapter" in w for w in checkpoint.warnings)


@pytest.mark.parametrize(
    ("content", "fragment"),
    [
        ("{not json", "is not valid JSON"),
        ("[1, 2]", "must be a JSON object"),
        ('{"peft_type": "LORA", "r": 0}', "r must be a positive integer"),
        ('{"peft_type": "LORA", "r": 4, "target_modules": "q_proj("}', "not a valid regular"),
        ('{"r": 4}', "has no peft_type"),
    ],
)
def test_bad_adapter_config_is_one_clear_error(
    tmp_path: Path, lora_pair: tuple[Path, Path], content: str, fragment: str
) -> None:
    _, adapter = lora_pair
    copy = tmp_path / "bad"
    shutil.copytree(adapter, copy)
    (copy / "adapter_config.json").write_text(content)
    with pytest.raises(CheckpointError, match=r"adapter_config\.json") as caught:
        open_target(copy)
    assert fragment in str(caught.value) and "\n" not in str(caught.value)


def test_other_base_sizes_do_not_matter_to_listing(tmp_path: Path) -> None:
    base = save_base(tmp_path / "base", hidden_size=16, num_attention_heads=2, intermediate_size=24)
    adapter = save_adapter(tmp_path / "a", base, r=2)
    info = open_target(adapter).adapter
    assert info is not None and {m.r for m in info.modules} == {2}
