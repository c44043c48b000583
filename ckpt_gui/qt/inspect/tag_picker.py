"""The DeepSpeed tag picker: which ``global_step<N>`` folder of a ZeRO checkpoint the tab shows.

A DeepSpeed folder holds one checkpoint per save (``global_step100/``,
``global_step200/``...) and a ``latest`` file naming the one DeepSpeed would
load; the tab opens that one. The picker sits in the weight-set row above the
tree and lists every tag, marking the one ``latest`` names; choosing another
reopens the folder at that tag on the tab's worker (``CheckpointTab.choose_tag``),
keeping the tab. Everything shown comes from the checkpoint's metadata, read on
the worker: building the picker touches no file. A tab opened on one step
folder shows its tag without a choice (the other tags lie outside the folder it
reads; the tooltip says to open the parent).
"""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtWidgets import QComboBox, QHBoxLayout, QLabel, QWidget

from ckpt_gui.core.formats.distributed.checkpoint import TagChoice


def tag_label(choice: TagChoice, tag: str) -> str:
    return f"{tag} (latest)" if tag == choice.latest else tag


class TagPicker(QWidget):
    """``Tag: [global_step2 (latest) ▾]``; ``choose(tag)`` is called when the user picks one."""

    def __init__(
        self, choice: TagChoice, choose: Callable[[str], None], parent: QWidget | None = None
    ) -> None:
        super().__init__(parent)
        self.choice = choice
        self._choose = choose
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 12, 0)
        layout.addWidget(QLabel("Tag:"))
        self.selector = QComboBox()
        for tag in choice.tags:
            self.selector.addItem(tag_label(choice, tag), tag)
        if choice.tag in choice.tags:
            self.selector.setCurrentIndex(choice.tags.index(choice.tag))
        self.selector.setEnabled(choice.choosable)
        if choice.step_folder:
            tip = (
                f"Opened from the folder of tag {choice.tag}: open its parent folder to "
                "choose another tag (CLI: --tag)"
            )
        else:
            tip = (
                "The global_step folders of this DeepSpeed checkpoint; latest names the one "
                "DeepSpeed loads (CLI: --tag)"
            )
        self.selector.setToolTip(tip)
        self.selector.activated.connect(self._activated)
        layout.addWidget(self.selector)

    def _activated(self, index: int) -> None:
        tag = self.selector.itemData(index)
        if isinstance(tag, str):
            self._choose(tag)
