"""ckpt_gui.smoke: the --smoke-test that the build runs on the bundle and on the installed .deb."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from ckpt_gui import smoke

ROOT = Path(__file__).resolve().parents[2]
STEPS = ["qt", "generate", "open", "stats", "tree", "window", "compare", "convert"]


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


def test_real_smoke_test_passes() -> None:
    code, steps = run_smoke()
    assert code == 0, steps
    assert list(steps)[:-1] == STEPS
    assert "missing" in steps["compare"] and "mismatched" in steps["compare"]
    assert steps["convert"].startswith("PASS fp32 -> bf16")


def test_wrong_answers_fail(monkeypatch: pytest.MonkeyPatch) -> None:
    """A comparison that sees nothing and a conversion that converts nothing do not pass."""
    from ckpt_gui.core.check import matching
    from ckpt_gui.core.export import convert

    real_compare = matching.compare

    def blind_compare(checkpoint: Any, config: Any, **kwargs: Any) -> Any:
        report = real_compare(checkpoint, config, **kwargs)
        return type(
            "Blind", (), {"missing": (), "unexpected": (), "mismatched": (), "report": report}
        )()

    monkeypatch.setattr(matching, "compare", blind_compare)
    real_plan = convert.plan_convert
    monkeypatch.setattr(
        convert,
        "plan_convert",
        lambda target, out, dtype, **kw: real_plan(target, out, "F16", **kw),
    )
    monkeypatch.setattr("ckpt_gui.core.export.plan_convert", convert.plan_convert)
    code, steps = run_smoke()
    assert code == 1
    assert steps["compare"].startswith("FAIL a deeper, wider config went unnoticed")
    assert steps["convert"].startswith("FAIL") and "expected only BF16" in steps["convert"]
    assert steps["summary"] == "smoke: 2 of 8 steps failed"


def test_cli_flag_runs_the_smoke_test() -> None:
    """`ckpt-gui --smoke-test` reaches run_smoke_test and exits with its verdict."""
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
    # Libraries may print too (deepspeed, when installed, logs to stdout as
    # save_pretrained imports it): the verdict is in the "smoke:" lines.
    lines = [line for line in result.stdout.splitlines() if line.startswith("smoke: ")]
    assert [line.split(":")[1].split()[-1] for line in lines[:-1]] == STEPS, (
        result.stdout + result.stderr
    )
    assert "platform offscreen" in lines[0]
    assert result.returncode == 0, result.stdout + result.stderr
    assert lines[-1] == "smoke: all 8 steps passed"
