"""``check --config`` and ``export random-init`` refuse an impossible config in one line."""

from __future__ import annotations

import json
from pathlib import Path

from tests.core.check.test_size_guard import ABSURD_LLAMA
from tests.support.cli import assert_one_line_error, run_cli


def test_check_and_random_init_refuse_the_issue_config(tmp_path: Path, llama_dir: Path) -> None:
    config = tmp_path / "config.json"
    config.write_text(json.dumps(ABSURD_LLAMA))
    # timeout: a hang guard (the issue saw no answer after 60 s), not a speed check.
    checked = run_cli("check", str(llama_dir), "--config", str(config), timeout=120)
    assert_one_line_error(checked, str(config), "config asks for over 10^24 parameters")
    checked_json = run_cli("check", str(llama_dir), "--config", str(config), "--json")
    assert_one_line_error(checked_json, "10^24 parameters")
    out = tmp_path / "out"
    made = run_cli("export", "random-init", str(config), str(out), timeout=120)
    assert_one_line_error(made, str(config), "config asks for over 10^24 parameters")
    assert not out.exists()
