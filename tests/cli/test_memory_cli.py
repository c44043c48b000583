"""``ckpt-gui memory`` as users run it: local folders, a config alone, a Hub repo."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tests.support.cli import assert_one_line_error, run_cli, run_python
from tests.support.fake_hub import FakeHub, folder_files
from tests.support.quant_fixtures import LLAMA_PARAMETERS, write_layout

REQUIRED = (
    "weights_bytes",
    "largest_layer_bytes",
    "training_adam_peak_bytes",
    "kv_cache_bytes_per_token",
    "kv_cache_bytes",
)


@pytest.fixture(scope="module")
def gptq_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_layout("gptq", tmp_path_factory.mktemp("mem_cli") / "gptq")


def test_json_has_the_documented_fields(gptq_dir: Path) -> None:
    result = run_cli("memory", str(gptq_dir), "--context", "100", "--batch", "2", "--json")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert all(key in data for key in REQUIRED)
    assert set(data["training_adam_peak_bytes"]) == {"float32", "bfloat16"}
    assert data["parameters"] == LLAMA_PARAMETERS
    # 2 layers x 2 (K and V) x 2 KV heads x head_dim 16 x 2 bytes (bfloat16).
    assert data["kv_cache_bytes_per_token"] == 2 * 2 * 2 * 16 * 2
    assert data["kv_cache_bytes"] == 100 * 2 * data["kv_cache_bytes_per_token"]
    assert data["quantization"] == "gptq 4-bit group 32"


def test_dtype_option_restates_the_weights(gptq_dir: Path) -> None:
    result = run_cli("memory", str(gptq_dir), "--dtype", "fp16", "--json")
    data = json.loads(result.stdout)
    assert data["weights_bytes"] == data["weights_bytes_by_dtype"]["float16"]
    assert data["largest_layer_bytes"] == data["largest_layer_bytes_by_dtype"]["float16"]


def test_safetensors_source_imports_no_torch(gptq_dir: Path) -> None:
    code = (
        "import sys, io, contextlib\n"
        "from ckpt_gui.cli import main\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        f"    assert main(['memory', {str(gptq_dir)!r}, '--json']) == 0\n"
        "print('torch' in sys.modules, 'transformers' in sys.modules)\n"
    )
    result = run_python(code)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["False", "False"]


def test_a_config_alone(gptq_dir: Path, tmp_path: Path) -> None:
    config = json.loads((gptq_dir / "config.json").read_text())
    del config["quantization_config"]
    config["dtype"] = "bfloat16"
    (tmp_path / "config.json").write_text(json.dumps(config))
    for target in (tmp_path / "config.json", tmp_path):
        result = run_cli("memory", str(target), "--json")
        assert result.returncode == 0, result.stderr
        data = json.loads(result.stdout)
        assert data["parameters"] == LLAMA_PARAMETERS
        assert data["weights_bytes"] == 2 * LLAMA_PARAMETERS  # config dtype bfloat16


def test_text_output_names_the_figures(gptq_dir: Path) -> None:
    result = run_cli("memory", str(gptq_dir))
    assert result.returncode == 0, result.stderr
    for fragment in ("weights", "largest layer", "Adam training", "KV cache", "LoRA"):
        assert fragment in result.stdout


def test_bad_input_is_one_line(gptq_dir: Path, tmp_path: Path) -> None:
    assert_one_line_error(run_cli("memory", str(gptq_dir), "--dtype", "fp7"), "unknown dtype")
    assert_one_line_error(run_cli("memory", str(gptq_dir), "--batch", "0"), "at least 1")
    assert_one_line_error(run_cli("memory", str(tmp_path / "nothing")), "no such file")


def test_hub_repo_reads_headers_only(hub: FakeHub, gptq_dir: Path, tmp_path: Path) -> None:
    hub.add_repo("org/tiny-gptq", folder_files(gptq_dir))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "HUGGING"))}
    env.update(
        HF_ENDPOINT=hub.endpoint,
        HF_HOME=str(tmp_path / "hf-home"),
        HF_HUB_CACHE=str(tmp_path / "hf-cache"),
        HF_HUB_DISABLE_TELEMETRY="1",
    )
    result = run_cli("memory", "org/tiny-gptq", "--json", env=env)
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["parameters"] == LLAMA_PARAMETERS
    assert data["weights_bytes"] < (gptq_dir / "model.safetensors").stat().st_size
    weights = [r for r in hub.log if r.path.endswith(".safetensors") and r.method == "GET"]
    assert weights and all(r.range is not None for r in weights)


def test_inspect_of_a_quantized_checkpoint_counts_and_imports_no_torch(gptq_dir: Path) -> None:
    code = (
        "import sys, io, json, contextlib\n"
        "from ckpt_gui.cli import main\n"
        "out = io.StringIO()\n"
        "with contextlib.redirect_stdout(out):\n"
        f"    assert main(['inspect', {str(gptq_dir)!r}, '--json']) == 0\n"
        "data = json.loads(out.getvalue())\n"
        "print(data['total_parameters'], data['quantization']['description'], 'torch' in sys.modules)\n"
    )
    result = run_python(code)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == [str(LLAMA_PARAMETERS), "gptq", "4-bit", "group", "32", "False"]


def test_gguf_source_counts_and_imports_no_torch(gguf_dir: Path) -> None:
    """A GGUF file: its parameters (the tiny Llama's own count), float32 size, KV cache
    from the GGUF metadata, and neither torch nor transformers imported."""
    from tests.support.gguf_fixtures import tiny_llama

    parameters = sum(p.numel() for p in tiny_llama().parameters())
    code = (
        "import sys, io, json, contextlib\n"
        "from ckpt_gui.cli import main\n"
        "out = io.StringIO()\n"
        "with contextlib.redirect_stdout(out):\n"
        f"    assert main(['memory', {str(gguf_dir / 'tiny-Q8_0.gguf')!r}, '--json']) == 0\n"
        "data = json.loads(out.getvalue())\n"
        "print(data['parameters'], data['weights_bytes_by_dtype']['float32'],\n"
        "      data['kv_cache_bytes_per_token'] is not None,\n"
        "      'torch' in sys.modules, 'transformers' in sys.modules)\n"
    )
    result = run_python(code)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == [str(parameters), str(4 * parameters), "True", "False", "False"]
