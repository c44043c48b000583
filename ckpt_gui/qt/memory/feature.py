"""Wires the Memory panel into every checkpoint tab.

``register(shell)`` uses only the shell's ``tab_opened`` signal: each new tab gets
a "Memory" page under its tree, filled when the checkpoint has loaded and updated
with the tree's selection.
"""

from __future__ import annotations

from ckpt_gui.core.model import Checkpoint
from ckpt_gui.qt.inspect.checkpoint_tab import CheckpointTab
from ckpt_gui.qt.memory.panel import MemoryPanel
from ckpt_gui.qt.shell import Shell


class MemoryFeature:
    def __init__(self) -> None:
        self.panels: dict[int, MemoryPanel] = {}

    def attach(self, tab: CheckpointTab) -> MemoryPanel:
        panel = MemoryPanel()
        tab.add_panel(panel, "Memory")
        self.panels[id(tab)] = panel

        def loaded(checkpoint: Checkpoint) -> None:
            panel.set_checkpoint(checkpoint)
            if tab.tree is not None:
                tab.tree.node_selected.connect(panel.set_node)

        tab.loaded.connect(loaded)
        tab.destroyed.connect(lambda *_: self.panels.pop(id(tab), None))
        if tab.checkpoint is not None:
            loaded(tab.checkpoint)
        return panel


def register(shell: Shell) -> MemoryFeature:
    feature = MemoryFeature()
    shell.tab_opened.connect(feature.attach)
    return feature
