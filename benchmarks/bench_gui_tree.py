"""Open a 100,000-tensor (MoE-shaped) safetensors file in the window until it is usable.

Ours: ``ckpt-gui FILE --screenshot OUT.png`` (offscreen window, background open, lazy tree
model, first tensor selected with its statistics). Baseline: the naive way, a
QTreeWidget filled with one item per module and tensor on the GUI thread (what
the first prototype did). Scale with CKPT_GUI_BENCH_TENSORS (default 100000).
"""

from __future__ import annotations

import json
import os
import struct
from pathlib import Path

from common import Measurement, Result, measure, python

TENSORS = int(os.environ.get("CKPT_GUI_BENCH_TENSORS", "100000"))

BASELINE = """
import sys
import ckpt_gui.qt  # the None-refcount guard: addChild() would otherwise crash PySide6 6.12
from PySide6.QtWidgets import QApplication, QTreeWidget, QTreeWidgetItem
from ckpt_gui.core.targets import open_target
from ckpt_gui.core.tree.build import build_tree
app = QApplication([])
tree = QTreeWidget()
tree.setHeaderLabels(["Name", "Shape", "DType", "Parameters", "Size"])
def fill(parent, node):
    for child in node.children:
        t = child.tensor
        item = QTreeWidgetItem([child.name, str(list(t.shape)) if t else "", t.dtype if t else "",
                                str(child.parameters), str(child.nbytes)])
        if parent is tree:
            tree.addTopLevelItem(item)
        else:
            parent.addChild(item)
        fill(item, child)
fill(tree, build_tree(open_target(sys.argv[1]).tensors))
tree.expandToDepth(1)
tree.resize(1000, 700)
tree.show()
app.processEvents()
"""


def write_moe_safetensors(path: Path, count: int) -> None:
    header: dict[str, object] = {}
    offset = 0
    layer = 0
    while len(header) < count:
        for expert in range(64):
            for proj in ("gate_proj", "up_proj", "down_proj"):
                name = f"model.layers.{layer}.mlp.experts.{expert}.{proj}.weight"
                header[name] = {
                    "dtype": "BF16",
                    "shape": [8, 4],
                    "data_offsets": [offset, offset + 64],
                }
                offset += 64
        layer += 1
    names = list(header)[:count]
    # Offsets must tile the data section exactly: renumber the kept tensors.
    kept = {}
    for i, name in enumerate(names):
        kept[name] = {"dtype": "BF16", "shape": [8, 4], "data_offsets": [i * 64, i * 64 + 64]}
    raw = json.dumps(kept).encode()
    with path.open("wb") as stream:
        stream.write(struct.pack("<Q", len(raw)))
        stream.write(raw)
        stream.write(os.urandom(64 * len(names)))


def run(workdir: Path) -> list[Result]:
    target = workdir / "moe.safetensors"
    write_moe_safetensors(target, TENSORS)
    env = {"QT_QPA_PLATFORM": "offscreen"}
    ours = measure(
        python("-m", "ckpt_gui", str(target), "--screenshot", str(workdir / "shot.png")),
        env=env,
        repeat=3,
    )
    baseline = measure(python("-c", BASELINE, str(target)), env=env, repeat=3)
    return [
        *run_flat(workdir),
        Result(
            f"gui: open {TENSORS:,} tensors until usable",
            ours,
            baseline,
            note="baseline: QTreeWidget items on the GUI thread",
        ),
    ]


# -- a flat 200,000-tensor file: open time vs a tiny one, and the longest GUI-thread freeze ---
FLAT_TENSORS = int(os.environ.get("CKPT_GUI_BENCH_FLAT_TENSORS", "200000"))
REPEAT = int(os.environ.get("CKPT_GUI_BENCH_REPEAT", "3"))
FREEZE_TARGET_S = 0.2  # the issue: no GUI-thread freeze over 200 ms when sorting or filtering

FREEZE = """
import sys, time
import ckpt_gui.qt
from PySide6.QtCore import QEventLoop, QTimer, Qt
from PySide6.QtWidgets import QApplication
from ckpt_gui.core.formats import open_checkpoint
from ckpt_gui.core.tree.build import build_tree
from ckpt_gui.qt.inspect.tree_panel import TreePanel
from ckpt_gui.qt.runtime.gui_gc import collect_garbage_on_gui_thread
app = QApplication([])
collect_garbage_on_gui_thread()  # as the app does: the collector runs on the GUI thread
panel = TreePanel(build_tree(open_checkpoint(sys.argv[1]).tensors))
panel.resize(1000, 700)
panel.show()
# A 10 ms heartbeat on the GUI thread: the longest gap between its beats is the longest
# freeze. The GUI thread sits in a real event loop meanwhile, as in the app.
last = [time.perf_counter()]
gaps = []
def beat():
    now = time.perf_counter()
    gaps.append(now - last[0])
    last[0] = now
timer = QTimer()
timer.setTimerType(Qt.TimerType.PreciseTimer)
timer.setInterval(10)
timer.timeout.connect(beat)
timer.start()
def run_loop(ms):
    loop = QEventLoop()
    QTimer.singleShot(ms, loop.quit)
    loop.exec()
run_loop(500)
def step(name, action):
    run_loop(300)
    gaps.clear()
    last[0] = started = time.perf_counter()
    QTimer.singleShot(0, action)
    run_loop(50)
    while panel.busy:  # until the sort or filter shows...
        run_loop(20)
    settled = time.perf_counter() - started
    run_loop(200)  # ...and the view has laid it out and painted
    print(f"FREEZE {name}\t{max(gaps):.4f}\t{settled:.3f}", flush=True)
step("sort by name", lambda: panel.view.sortByColumn(0, Qt.SortOrder.AscendingOrder))
step("sort by parameters", lambda: panel.view.sortByColumn(3, Qt.SortOrder.DescendingOrder))
def set_filter(text):
    panel.filter_edit.setText(text)
    panel.apply_filter()
step("filter 'w00001'", lambda: set_filter("w00001"))
step("filter 'w0' (all)", lambda: set_filter("w0"))
step("clear filter", lambda: set_filter(""))
"""


def write_flat(path: Path, count: int) -> None:
    header = {
        f"w{i:07d}": {"dtype": "F16", "shape": [2], "data_offsets": [4 * i, 4 * i + 4]}
        for i in range(count)
    }
    raw = json.dumps(header).encode()
    with path.open("wb") as stream:
        stream.write(struct.pack("<Q", len(raw)))
        stream.write(raw)
        stream.write(os.urandom(4 * count))


def run_flat(workdir: Path) -> list[Result]:
    import subprocess
    import sys

    from common import ROOT

    big, tiny = workdir / "flat.safetensors", workdir / "tiny.safetensors"
    write_flat(big, FLAT_TENSORS)
    write_flat(tiny, 10)
    env = {"QT_QPA_PLATFORM": "offscreen"}

    def shot(target: Path) -> list[str]:
        return python("-m", "ckpt_gui", str(target), "--screenshot", str(workdir / "flat.png"))

    ours = measure(shot(big), env=env, repeat=REPEAT)
    baseline = measure(shot(tiny), env=env, repeat=REPEAT)
    freeze = subprocess.run(
        [sys.executable, "-c", FREEZE, str(big)],
        capture_output=True,
        text=True,
        env={**os.environ, **env, "PYTHONPATH": str(ROOT)},
        check=False,
    )
    if freeze.returncode:
        print(freeze.stderr[-2000:])
    freezes = []
    for line in freeze.stdout.splitlines():
        if line.startswith("FREEZE "):
            name, gap, settled = line.removeprefix("FREEZE ").split("\t")
            print(
                f"{name}: longest GUI-thread freeze {float(gap) * 1000:.0f} ms, shown after {settled} s"
            )
            # "ours" is the longest freeze, "baseline" the 200 ms target: a ratio >= 1 meets it.
            freezes.append(
                Result(
                    f"gui freeze: {name}",
                    Measurement(float(gap), 0),
                    Measurement(FREEZE_TARGET_S, 0),
                    target_speedup=1.0,
                    note=f"base = the {FREEZE_TARGET_S * 1000:.0f} ms target; rows shown after {settled} s",
                )
            )
    return [
        *freezes,
        Result(
            f"gui: open {FLAT_TENSORS:,} flat tensors vs 10",
            ours,
            baseline,
            target_speedup=1 / 6,  # within 6x of the tiny file's time
            note="baseline: the same window on a 10-tensor file",
        ),
    ]
