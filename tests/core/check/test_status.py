"""KeyStatus: one type for the comparison statuses; the JSON report keeps its strings."""

from __future__ import annotations

import json
from pathlib import Path

from ckpt_gui.core.check.config_source import resolve_config
from ckpt_gui.core.check.matching import compare
from ckpt_gui.core.check.status import KeyStatus
from ckpt_gui.core.targets import open_target

SPELLINGS = {"ok", "missing", "unexpected", "mismatched", "ignored"}


def test_members_are_the_report_strings_with_a_severity_order() -> None:
    assert {str(s) for s in KeyStatus} == SPELLINGS
    assert KeyStatus("mismatched") is KeyStatus.MISMATCHED and KeyStatus.OK == "ok"
    order = KeyStatus.by_severity()
    assert sorted(KeyStatus, key=lambda s: s.severity) == list(order)
    assert order[:3] == (KeyStatus.MISMATCHED, KeyStatus.MISSING, KeyStatus.UNEXPECTED)
    assert {s for s in KeyStatus if s.is_problem} == set(order[:3])
    assert max(KeyStatus, key=lambda s: s.severity) is KeyStatus.IGNORED


def test_report_statuses_are_typed_and_its_json_plain_strings(
    tmp_path: Path, llama_model: object
) -> None:
    """A checkpoint with one key dropped and one extra: statuses agree with the report's
    lists (transformers' names), and the JSON holds plain strings."""
    import torch
    from safetensors.torch import save_file

    state = {k: v.clone() for k, v in llama_model.state_dict().items()}  # type: ignore[attr-defined]
    dropped = "model.norm.weight"
    del state[dropped]
    state["extra.weight"] = torch.zeros(2)
    save_file(state, tmp_path / "model.safetensors")
    llama_model.config.save_pretrained(tmp_path)  # type: ignore[attr-defined]
    checkpoint = open_target(tmp_path)
    report = compare(checkpoint, resolve_config(tmp_path / "config.json", checkpoint))
    assert all(type(s) is KeyStatus for s in report.status_by_key.values())
    assert report.status_by_key[dropped] is KeyStatus.MISSING
    assert report.status_by_key["extra.weight"] is KeyStatus.UNEXPECTED
    # The report's lists use transformers' names; the ghost sits at the checkpoint's name.
    assert len(report.missing) == 1 and report.ghost_keys[report.missing[0]] == dropped
    problems = {k for k, s in report.status_by_key.items() if s.is_problem}
    assert problems == {report.ghost_keys[k] for k in report.missing} | {
        report.unexpected_sources[k] for k in report.unexpected
    }
    assert "extra.weight" in problems
    document = report.to_json()
    assert all(type(s) is str for s in document["status_by_key"].values())
    assert all(type(s) is str for s in document["counts"])
    assert list(document["counts"]) == ["ok", "missing", "unexpected", "mismatched", "ignored"]
    again = json.loads(json.dumps(document))
    assert again["status_by_key"][dropped] == "missing"
    assert again["counts"]["unexpected"] == len(report.unexpected) > 0
