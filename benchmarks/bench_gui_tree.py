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

from common import Result, measure, python

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
        Result(
            f"gui: open {TENSORS:,} tensors until usable",
            ours,
            baseline,
            note="baseline: QTreeWidget items on the GUI thread",
        )
    ]
