"""Application entry: builds the QApplication and the main window."""

from __future__ import annotations

import argparse
import sys

from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication, QMainWindow, QTreeWidget, QTreeWidgetItem

from ckpt_gui.core.formatting import human_bytes, human_count
from ckpt_gui.core.targets import open_target
from ckpt_gui.core.tree import ModuleNode, build_tree
from ckpt_gui.resources import application_icon


def _fill(parent: QTreeWidgetItem | QTreeWidget, node: ModuleNode) -> None:
    for child in node.children:
        tensor = child.tensor
        item = QTreeWidgetItem(
            [
                child.name,
                str(list(tensor.shape)) if tensor else "",
                tensor.dtype if tensor else "",
                human_count(child.parameters),
                human_bytes(child.nbytes),
            ]
        )
        if isinstance(parent, QTreeWidget):
            parent.addTopLevelItem(item)
        else:
            parent.addChild(item)
        _fill(item, child)


def run_gui(args: argparse.Namespace) -> int:
    if args.smoke_test:  # before any QApplication exists: the smoke test runs offscreen
        from ckpt_gui.smoke import run_smoke_test

        return run_smoke_test()
    from ckpt_gui.core.demo import demo_checkpoint

    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setApplicationName("ckpt-gui")
    # Every window gets the icon; the desktop file name links windows to ckpt-gui.desktop
    # (Wayland docks and task bars take the icon from there).
    QApplication.setWindowIcon(application_icon())
    QApplication.setDesktopFileName("ckpt-gui")
    target = args.targets[0] if args.targets else str(demo_checkpoint())
    window = QMainWindow()
    window.setWindowTitle(f"ckpt-gui — {target}")
    tree = QTreeWidget()
    tree.setHeaderLabels(["Name", "Shape", "DType", "Parameters", "Size"])
    _fill(tree, build_tree(open_target(target).tensors))
    tree.expandToDepth(1)
    window.setCentralWidget(tree)
    window.resize(1000, 700)
    window.show()
    if args.screenshot:
        QTimer.singleShot(200, lambda: (window.grab().save(args.screenshot), app.quit()))
    return app.exec()
