"""``ckpt-gui --smoke-test``: prove that an installed or bundled app really works, offscreen.

Each step prints one line (``smoke: PASS step: ...`` or ``smoke: FAIL step: ...``) and the
exit code is 0 only when every step passed. It exercises what a bundle most often loses: Qt's
platform plugin and image formats, the icons, torch and transformers (a tiny Llama is generated
in a temporary folder), the safetensors and pickle readers, numpy's vendored libraries (tensor
statistics), the tree model and the main window, the config comparison and a dtype conversion.

A step whose module is missing from a bundle fails and names it: a smoke test that passes
without testing is worse than none.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

# A tiny Llama (about 40 k parameters): real transformers code paths, generated in a second.
SMOKE_LLAMA: dict[str, Any] = {
    "vocab_size": 96,
    "hidden_size": 16,
    "intermediate_size": 32,
    "num_hidden_layers": 2,
    "num_attention_heads": 2,
    "num_key_value_heads": 1,
    "max_position_embeddings": 32,
    "tie_word_embeddings": False,
}

WINDOW_TIMEOUT_S = 60.0


class SmokeFailure(Exception):
    """A step found something wrong; the message says what, in one line."""


@dataclass
class SmokeContext:
    workdir: Path
    folder: Path | None = None  # save_pretrained output: config.json + model.safetensors
    bin_file: Path | None = None  # the same weights as a torch.save pickle
    tensor_names: list[str] = field(default_factory=list)
    tree_model: Any = None  # kept alive for the window step
    keep_alive: list[Any] = field(default_factory=list)

    def require_folder(self) -> Path:
        if self.folder is None:
            raise SmokeFailure("not run: needs the generated checkpoint")
        return self.folder


def run_smoke_test(out: TextIO | None = None) -> int:
    """Run every step, print one line each, return 0 when all passed, else 1."""
    stream = out if out is not None else sys.stdout
    from PySide6.QtWidgets import QApplication

    if QApplication.instance() is None:
        os.environ["QT_QPA_PLATFORM"] = "offscreen"
    steps: list[tuple[str, Callable[[SmokeContext], str]]] = [
        ("qt", _smoke_qt),
        ("generate", _smoke_generate),
        ("open", _smoke_open),
        ("stats", _smoke_stats),
        ("tree", _smoke_tree),
        ("window", _smoke_window),
        ("compare", _smoke_compare),
        ("convert", _smoke_convert),
    ]
    failures = 0
    with tempfile.TemporaryDirectory(prefix="ckpt-gui-smoke-") as tmp:
        context = SmokeContext(Path(tmp))
        for name, step in steps:
            started = time.perf_counter()
            try:
                detail, ok = step(context), True
            except SmokeFailure as exc:
                detail, ok = str(exc), False
            except Exception as exc:
                traceback.print_exc(file=sys.stderr)
                detail, ok = f"unexpected {type(exc).__name__}: {_one_line(str(exc))}", False
            failures += not ok
            seconds = time.perf_counter() - started
            verdict = "PASS" if ok else "FAIL"
            print(f"smoke: {verdict} {name}: {detail} ({seconds:.1f} s)", file=stream, flush=True)
        context.keep_alive.clear()
    if failures:
        print(f"smoke: {failures} of {len(steps)} steps failed", file=stream, flush=True)
        return 1
    print(f"smoke: all {len(steps)} steps passed", file=stream, flush=True)
    return 0


def _smoke_qt(context: SmokeContext) -> str:
    from PySide6.QtGui import QIcon, QImage
    from PySide6.QtWidgets import QApplication

    from ckpt_gui.resources import ICON_SIZES, icon_path

    app = QApplication.instance() or QApplication(sys.argv[:1])
    context.keep_alive.append(app)
    missing = [str(size) for size in ICON_SIZES if QImage(str(icon_path(size))).isNull()]
    if missing:
        raise SmokeFailure(f"icon PNGs missing or unreadable at sizes {', '.join(missing)}")
    icon = QIcon()
    for size in ICON_SIZES:
        icon.addFile(str(icon_path(size)))
    if icon.isNull():
        raise SmokeFailure("application icon did not load")
    platform = QApplication.platformName()
    return f"platform {platform}, icon at {len(ICON_SIZES)} sizes"


def _smoke_generate(context: SmokeContext) -> str:
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    model = LlamaForCausalLM(LlamaConfig(**SMOKE_LLAMA))
    folder = context.workdir / "tiny-llama"
    model.save_pretrained(folder)
    state = {k: v.detach().clone() for k, v in model.state_dict().items()}
    bin_file = context.workdir / "tiny-llama.bin"
    torch.save(state, bin_file)
    context.folder, context.bin_file = folder, bin_file
    context.tensor_names = sorted(state)
    params = sum(v.numel() for v in state.values())
    return f"tiny Llama with {len(state)} tensors, {params} parameters"


def _smoke_open(context: SmokeContext) -> str:
    from ckpt_gui.core.targets import open_target

    folder = context.require_folder()
    opened = {"folder": open_target(folder), ".bin": open_target(str(context.bin_file))}
    for label, checkpoint in opened.items():
        names = sorted(checkpoint.tensor_map)
        if names != context.tensor_names:
            extra = set(names) ^ set(context.tensor_names)
            raise SmokeFailure(
                f"{label}: tensor names differ from the model's: {sorted(extra)[:3]}"
            )
    formats = ", ".join(f"{label} as {c.format}" for label, c in opened.items())
    return f"{formats}; {len(context.tensor_names)} tensors each"


def _smoke_stats(context: SmokeContext) -> str:
    from safetensors import safe_open

    from ckpt_gui.core.targets import open_target
    from ckpt_gui.core.values.stats import compute_stats

    checkpoint = open_target(context.require_folder())
    tensor = max(checkpoint.tensors, key=lambda t: t.parameters)
    stats = compute_stats(checkpoint, tensor)
    with safe_open(str(checkpoint.path_of(tensor)), framework="pt") as handle:
        expected = handle.get_tensor(tensor.name).double()
    if stats.count != expected.numel() or abs(stats.mean - float(expected.mean())) > 1e-6:
        raise SmokeFailure(
            f"{tensor.name}: statistics disagree with torch (mean {stats.mean} vs {float(expected.mean())})"
        )
    # The plot is what a bundle most easily breaks (pyqtgraph needs QtOpenGL): draw it.
    from ckpt_gui.qt.widgets.histogram import HistogramPlot

    plot = HistogramPlot()
    plot.show_histogram(stats.histogram_counts, stats.histogram_edges)
    plot.resize(300, 200)
    if plot.grab().isNull():
        raise SmokeFailure("the histogram plot rendered an empty image")
    return f"{tensor.name}: mean {stats.mean:.4g}, std {stats.std:.4g}, {sum(stats.histogram_counts)} values binned and plotted"


def _smoke_tree(context: SmokeContext) -> str:
    from ckpt_gui.core.targets import open_target
    from ckpt_gui.core.tree.build import build_tree

    root = build_tree(open_target(context.require_folder()).tensors)
    model, source = _build_tree_model(root)
    context.tree_model = model
    names = _model_names(model)
    wanted = {child.name for child in root.children}
    if not wanted <= names:
        raise SmokeFailure(
            f"{source}: top-level modules missing from the model: {sorted(wanted - names)}"
        )
    return f"{source}: {len(names)} distinct names, top level {sorted(wanted)}"


def _build_tree_model(root: Any) -> tuple[Any, str]:
    from ckpt_gui.qt.models.tree_model import CheckpointTreeModel

    return CheckpointTreeModel(root), "CheckpointTreeModel"


def _model_names(model: Any) -> set[str]:
    """Every column-0 text of a Qt item model (or a QTreeWidget's model), fetching lazily loaded rows."""
    from PySide6.QtCore import QAbstractItemModel, QModelIndex, Qt

    item_model: QAbstractItemModel = (
        model if isinstance(model, QAbstractItemModel) else model.model()
    )
    names: set[str] = set()
    pending = [QModelIndex()]
    while pending:
        parent = pending.pop()
        while item_model.canFetchMore(parent):
            item_model.fetchMore(parent)
        for row in range(item_model.rowCount(parent)):
            index = item_model.index(row, 0, parent)
            names.add(str(item_model.data(index, Qt.ItemDataRole.DisplayRole)))
            pending.append(index)
    return names


def _smoke_window(context: SmokeContext) -> str:
    from PySide6.QtWidgets import QApplication, QTreeView

    from ckpt_gui.qt.app import build_window

    folder = context.require_folder()
    window, features = build_window(settings=None)
    context.keep_alive.append(features)
    window.open_targets([str(folder)])
    source = "MainWindow"
    context.keep_alive.append(window)
    window.resize(900, 600)
    window.show()
    # Loading may run on a worker thread: wait (without blocking events) until a tree has rows.
    deadline = time.monotonic() + WINDOW_TIMEOUT_S
    while True:
        QApplication.processEvents()
        views = [
            v for v in window.findChildren(QTreeView) if v.model() and v.model().rowCount() > 0
        ]
        if views:
            break
        if time.monotonic() > deadline:
            raise SmokeFailure(f"{source}: no tree with rows after {WINDOW_TIMEOUT_S:.0f} s")
        time.sleep(0.02)
    image = window.grab().toImage()
    if image.isNull() or image.width() == 0:
        raise SmokeFailure(f"{source}: rendering the window gave an empty image")
    sample = {
        image.pixel(x, y) for x in range(0, image.width(), 37) for y in range(0, image.height(), 29)
    }
    if len(sample) < 3:
        raise SmokeFailure(f"{source}: the rendered window is blank")
    window.close()
    return f"{source} rendered {image.width()}x{image.height()}, {len(sample)} colours sampled"


def _smoke_compare(context: SmokeContext) -> str:
    """The checkpoint against its own config is clean; a deeper, wider config is not."""
    from ckpt_gui.core.check.config_source import resolve_config
    from ckpt_gui.core.check.matching import compare as compare_report
    from ckpt_gui.core.targets import open_target

    folder = context.require_folder()
    checkpoint = open_target(folder)

    def compare(checkpoint: Any, config_path: Path) -> Any:
        return compare_report(checkpoint, resolve_config(config_path, checkpoint), use_cache=False)

    clean = compare(checkpoint, folder / "config.json")
    problems = {key: len(_field(clean, key)) for key in ("missing", "unexpected", "mismatched")}
    if any(problems.values()):
        raise SmokeFailure(f"checkpoint against its own config reports problems: {problems}")
    # One layer more and a wider MLP must show up as missing keys and shape mismatches.
    config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    config["num_hidden_layers"] += 1
    config["intermediate_size"] += 16
    other = context.workdir / "other-config.json"
    other.write_text(json.dumps(config), encoding="utf-8")
    broken = compare(checkpoint, other)
    missing, mismatched = len(_field(broken, "missing")), len(_field(broken, "mismatched"))
    if not missing or not mismatched:
        raise SmokeFailure(
            f"a deeper, wider config went unnoticed: {missing} missing, {mismatched} mismatched"
        )
    # The shipped templates are in the build and answer exactly as the model build did.
    from ckpt_gui.core.check.templates.template import (
        shipped_file,
        template_for,
        transformers_version,
    )

    summary = f"own config clean; altered config: {missing} missing, {mismatched} mismatched"
    if shipped_file(transformers_version()) is None:
        # Templates are keyed by transformers version: none for this one means the model
        # is built (as above), which is not a failure.
        return f"{summary} (no shipped template for transformers {transformers_version()})"
    altered = resolve_config(other, checkpoint)
    from_template = template_for(altered, None)
    if from_template is None:
        raise SmokeFailure("no shipped template answers for a Llama config (data files missing?)")
    served = compare_report(checkpoint, altered, expected=from_template)
    if served.to_json() != broken.to_json():
        raise SmokeFailure("the shipped template's comparison differs from the built model's")
    return f"{summary} (the same through the shipped template)"


def _smoke_convert(context: SmokeContext) -> str:
    """fp32 -> bf16 through the export job; every tensor comes out BF16."""
    from ckpt_gui.core.export import ExportOptions, plan_convert, run_plan
    from ckpt_gui.core.jobs import run_to_completion
    from ckpt_gui.core.targets import open_target

    folder = context.require_folder()
    out = context.workdir / "tiny-llama-bf16"
    run_to_completion(run_plan(plan_convert(folder, out, "BF16"), ExportOptions(fsync=False)))
    converted = open_target(out)
    if sorted(converted.tensor_map) != context.tensor_names:
        raise SmokeFailure(f"{out.name}: converted tensor names differ from the source's")
    wrong = sorted({t.dtype for t in converted.tensors} - {"BF16"})
    if wrong:
        raise SmokeFailure(f"{out.name}: expected only BF16 tensors, found {wrong}")
    return f"fp32 -> bf16: {len(converted.tensors)} tensors, {converted.total_bytes} bytes"


def _field(report: Any, key: str) -> Any:
    return getattr(report, key)


def _one_line(text: str) -> str:
    return " ".join(text.split())[:300]
