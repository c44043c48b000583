"""Render the export GUI screenshots into docs/screenshots/ (offscreen).

    python scripts/export_screenshots.py [OUT_DIR]

export-dialog.png: the Convert dtype dialog with its shard plan for a small T5 going
to fp16 (its ``wo`` layers stay fp32, which the plan warns about);
export-jobs.png: the window with the Jobs dock holding a finished, a running
(paused half-way, so that the picture is deterministic) and a queued job.
"""

from __future__ import annotations

import os
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "scripts"))
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")


def wait_until(app, condition, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError("timed out")
        app.processEvents()
        time.sleep(0.02)


def make_t5(folder: Path) -> Path:
    import torch
    from transformers import T5Config, T5ForConditionalGeneration

    torch.manual_seed(0)
    config = T5Config(vocab_size=4096, d_model=256, d_kv=32, d_ff=1024, num_layers=4, num_heads=8)
    target = folder / "t5-small-ish"
    T5ForConditionalGeneration(config).save_pretrained(target, max_shard_size="20MB")
    return target


def paused_runner(gate: threading.Event, after: int):
    """run_plan, paused after ``after`` progress reports (shows a job mid-way)."""
    from ckpt_gui.core.export import run_plan

    def runner(plan, options):
        job = run_plan(plan, options)
        try:
            for _ in range(after):
                yield next(job)
                time.sleep(0.3)  # spread the reports so the speed reads like a real one
            gate.wait()
            return (yield from job)
        finally:
            job.close()

    return runner


def main(out_dir: Path) -> None:
    from ckpt_gui.qt.app import _prepare_offscreen

    _prepare_offscreen()
    from PySide6.QtWidgets import QApplication
    from screenshots import make_samples  # type: ignore[import-not-found]

    from ckpt_gui.core.export import ExportOptions, plan_convert, plan_safetensors
    from ckpt_gui.qt.app import build_window, configure_application
    from ckpt_gui.qt.export.job_queue import ExportJob

    out_dir.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="ckpt-gui-export-shots-"))
    sharded = make_samples(work)["sharded"]
    app = QApplication.instance() or QApplication([])
    configure_application(app)
    window, features = build_window(settings=None)
    window.resize(1280, 860)
    window.show()
    tab = window.open_targets([str(sharded)])[0]
    wait_until(app, lambda: tab.checkpoint is not None and window.is_idle())

    t5_dialog = features.exports.open_dialog("convert", source=str(make_t5(work)))
    t5_dialog.dtype_box.setCurrentIndex(t5_dialog.dtype_box.findData("F16"))
    t5_dialog.shard_box.setCurrentText("10MB")
    t5_dialog.replan()
    wait_until(app, lambda: t5_dialog.plan is not None or t5_dialog.error is not None)
    t5_dialog.resize(640, 690)
    app.processEvents()
    t5_dialog.grab().save(str(out_dir / "export-dialog.png"), "PNG")
    print("export-dialog.png", t5_dialog.error or "ok")
    t5_dialog.close()

    dialog = features.exports.open_dialog("convert", tab=tab)
    dialog.dtype_box.setCurrentIndex(dialog.dtype_box.findData("F32"))
    dialog.shard_box.setCurrentText("8MB")
    dialog.replan()
    wait_until(app, lambda: dialog.plan is not None or dialog.error is not None)
    dialog.start_button.click()
    queue = features.exports.queue
    first = queue.jobs[-1]
    wait_until(app, lambda: first.state.finished)

    gate = threading.Event()
    plan = plan_convert(sharded, work / "llama-sharded-f16", "F16", max_shard_size=2 * 10**6)
    running = queue.submit(
        ExportJob(plan, ExportOptions(fsync=False), runner=paused_runner(gate, 4))
    )
    queue.submit(ExportJob(plan_safetensors(sharded, work / "llama-copy"), ExportOptions()))
    wait_until(app, lambda: running.done > 0 and len(running._samples) >= 4, timeout=60)
    deadline = time.monotonic() + 0.5
    wait_until(app, lambda: time.monotonic() > deadline)  # let the throttled update land
    features.exports.dock.select(running)
    app.processEvents()
    window.grab().save(str(out_dir / "export-jobs.png"), "PNG")
    print("export-jobs.png")
    gate.set()
    queue.cancel_all()
    queue.wait()
    features.exports.shutdown()
    window.close()


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else REPO / "docs" / "screenshots")
