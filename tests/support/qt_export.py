"""Driving the export dialog in GUI tests: choose the output, wait for the plan, run it."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def wait_planned(qtbot: Any, dialog: Any) -> None:
    """Until the dialog has settled: a plan or an error, and no other plan due or running."""
    qtbot.waitUntil(
        lambda: (dialog.plan is not None or dialog.error is not None) and not dialog.is_planning,
        timeout=60_000,
    )


def plan_into(qtbot: Any, dialog: Any, out: Path) -> None:
    """Type ``out`` as the output folder, replan and wait for the plan (asserted made)."""
    dialog.output_edit.setText(str(out))
    dialog.output_edit.textEdited.emit(str(out))
    dialog.replan()
    wait_planned(qtbot, dialog)
    assert dialog.plan is not None, dialog.error


def start_and_finish(qtbot: Any, features: Any, dialog: Any) -> Any:
    """Click Start and wait for the job in the window's Jobs dock to finish; the job."""
    dialog.start_button.click()
    job = features.exports.queue.jobs[-1]
    qtbot.waitUntil(lambda: job.state.finished, timeout=120_000)
    return job
