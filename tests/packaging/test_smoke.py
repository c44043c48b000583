"""ckpt_gui.smoke: the --smoke-test that the build runs on the bundle and on the installed .deb.

The comparison and export modules come from other branches; these tests stand in for them with
small honest implementations of the planned APIs (and with broken ones), so the smoke test's
verdicts are checked both ways whatever is merged.
"""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import sys
import types
from pathlib import Path

import pytest

from ckpt_gui import smoke
from ckpt_gui.core.jobs import Progress

ROOT = Path(__file__).resolve().parents[2]
MATCHING, EXPORT = smoke.PLANNED_COMPARE[0], smoke.PLANNED_CONVERT[0]


def run_smoke() -> tuple[int, dict[str, str]]:
    out = io.StringIO()
    code = smoke.run_smoke_test(out)
    lines = out.getvalue().splitlines()
    steps = {}
    for line in lines[:-1]:
        verdict, rest = line.removeprefix("smoke: ").split(" ", 1)
        name, detail = rest.split(": ", 1)
        steps[name] = f"{verdict} {detail}"
    steps["summary"] = lines[-1]
    return code, steps


def fake_matching(blind: bool = False) -> types.ModuleType:
    """compare() as planned: the expected state dict from a meta-device model vs the tensors."""

    def compare(checkpoint, config_path):
        import torch
        from transformers import LlamaConfig, LlamaForCausalLM

        if blind:
            return {"missing": [], "unexpected": [], "mismatched": []}
        with torch.device("meta"):
            model = LlamaForCausalLM(LlamaConfig.from_json_file(str(config_path)))
        expected = {k: tuple(v.shape) for k, v in model.state_dict().items()}
        actual = {t.name: t.shape for t in checkpoint.tensors}
        return types.SimpleNamespace(
            missing=sorted(expected.keys() - actual.keys()),
            unexpected=sorted(actual.keys() - expected.keys()),
            mismatched=[k for k in expected.keys() & actual.keys() if expected[k] != actual[k]],
        )

    module = types.ModuleType(MATCHING)
    module.compare = compare  # type: ignore[attr-defined]
    return module


def fake_export(target_dtype: str = "bfloat16") -> types.ModuleType:
    """convert() as planned: a job yielding Progress that writes the converted folder."""

    def convert(source, out, dtype):
        import torch
        from safetensors.torch import load_file, save_file

        assert dtype == "bf16"
        tensors = load_file(Path(source) / "model.safetensors")
        yield Progress(0, len(tensors), "converting")
        Path(out).mkdir()
        converted = {k: v.to(getattr(torch, target_dtype)) for k, v in tensors.items()}
        save_file(converted, Path(out) / "model.safetensors", metadata={"format": "pt"})
        shutil.copyfile(Path(source) / "config.json", Path(out) / "config.json")
        yield Progress(len(tensors), len(tensors), "done")

    module = types.ModuleType(EXPORT)
    module.convert = convert  # type: ignore[attr-defined]
    return module


def test_missing_parts_fail_and_are_named(monkeypatch: pytest.MonkeyPatch) -> None:
    # None in sys.modules makes the import fail as if the module did not exist.
    monkeypatch.setitem(sys.modules, MATCHING, None)
    monkeypatch.setitem(sys.modules, EXPORT, None)
    code, steps = run_smoke()
    assert code == 1
    assert steps["compare"].startswith("FAIL config comparison is missing")
    assert "ckpt_gui.core.matching is not importable" in steps["compare"]
    assert steps["convert"].startswith("FAIL export (dtype conversion) is missing")
    assert "ckpt_gui.core.export is not importable" in steps["convert"]
    for name in ("qt", "generate", "open", "stats", "tree", "window"):
        assert steps[name].startswith("PASS"), steps[name]
    assert steps["summary"] == "smoke: 2 of 8 steps failed"


def test_passes_when_every_part_works(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, MATCHING, fake_matching())
    monkeypatch.setitem(sys.modules, EXPORT, fake_export())
    code, steps = run_smoke()
    assert code == 0, steps
    assert steps["summary"] == "smoke: all 8 steps passed"
    assert "missing" in steps["compare"] and "mismatched" in steps["compare"]
    assert steps["convert"].startswith("PASS fp32 -> bf16")


def test_wrong_answers_fail(monkeypatch: pytest.MonkeyPatch) -> None:
    """A comparison that sees nothing and a conversion that converts nothing do not pass."""
    monkeypatch.setitem(sys.modules, MATCHING, fake_matching(blind=True))
    monkeypatch.setitem(sys.modules, EXPORT, fake_export(target_dtype="float32"))
    code, steps = run_smoke()
    assert code == 1
    assert steps["compare"].startswith("FAIL a deeper, wider config went unnoticed")
    assert steps["convert"].startswith("FAIL") and "expected only BF16" in steps["convert"]


def test_module_without_the_planned_function_fails(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, MATCHING, types.ModuleType(MATCHING))
    with pytest.raises(smoke.SmokeFailure, match=r"has no compare\(\); wire the smoke test"):
        smoke._planned(smoke.PLANNED_COMPARE, "config comparison")


def test_module_with_a_missing_dependency_is_a_failure_not_an_absence(
    tmp_path, monkeypatch
) -> None:
    """In a bundle, a module that exists but cannot import a dependency must not read as 'not merged'."""
    (tmp_path / "smoke_probe_mod.py").write_text("import a_dependency_left_out_of_the_bundle\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(smoke.SmokeFailure, match="needs a_dependency_left_out_of_the_bundle"):
        smoke._optional_module("smoke_probe_mod")
    assert smoke._optional_module("smoke_probe_absent_mod") is None


@pytest.mark.skipif(
    not smoke.planned_parts_available(),
    reason="ckpt_gui.core.matching.compare / ckpt_gui.core.export.convert not merged yet",
)
def test_real_smoke_test_passes() -> None:
    code, steps = run_smoke()
    assert code == 0, steps


def test_cli_flag_runs_the_smoke_test() -> None:
    """`ckpt-gui --smoke-test` reaches run_smoke_test (through run_gui) and exits with its verdict."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("QT_QPA_PLATFORM", None)  # the smoke test must choose offscreen by itself
    result = subprocess.run(
        [sys.executable, "-m", "ckpt_gui", "--smoke-test"],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        cwd=ROOT,
    )
    lines = result.stdout.splitlines()
    assert [line.split(":")[1].split()[-1] for line in lines[:-1]] == [
        "qt",
        "generate",
        "open",
        "stats",
        "tree",
        "window",
        "compare",
        "convert",
    ], result.stdout + result.stderr
    assert "platform offscreen" in lines[0]
    expected = 0 if smoke.planned_parts_available() else 1
    assert result.returncode == expected, result.stdout + result.stderr
    assert lines[-1] == (
        "smoke: all 8 steps passed" if expected == 0 else "smoke: 2 of 8 steps failed"
    )
