"""What a PyTorch pickle holds besides the weights shown: the weight-set choice and its contents.

``WeightSetBar`` (above the tree) says which weight set the tab shows, what the
embedded config loads into, and lets the user pick another set (model, ema,
optimizer state...): the tab reopens the file with that key on its worker.
``ContentsPanel`` (a page below the tree) shows the rest of the file as a tree
of plain values: epoch, args, configs, optimizer summaries, placeholders with
their class name and state. Everything shown was computed by the core reader
on the worker; building these widgets touches no file.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from PySide6.QtWidgets import (
    QComboBox,
    QHBoxLayout,
    QLabel,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from ckpt_gui.core.formatting import human_count
from ckpt_gui.core.model import Checkpoint

MAX_ROWS = 5000  # the core already bounds the tree; this keeps a huge one cheap to show


def weight_sets(checkpoint: Checkpoint) -> list[Mapping[str, Any]]:
    sets = checkpoint.metadata.get("weight_sets")
    return [s for s in sets if isinstance(s, Mapping)] if isinstance(sets, list | tuple) else []


def loads_into(checkpoint: Checkpoint) -> str | None:
    """ "BertForSequenceClassification (bert)" from the config, or None without one."""
    config = checkpoint.config
    if not config:
        return None
    architectures = config.get("architectures") or []
    name = str(architectures[0]) if architectures else "AutoModel"
    model_type = config.get("model_type")
    return f"{name} ({model_type})" if model_type else name


def set_label(entry: Mapping[str, Any]) -> str:
    key = str(entry.get("key") or "<top level>")
    pickled_as = entry.get("class")
    kind = str(pickled_as).rsplit(".", 1)[-1] if pickled_as else str(entry.get("kind", ""))
    return f"{key} — {kind}, {entry.get('tensors', 0)} tensors, {human_count(int(entry.get('parameters', 0)))}"


class WeightSetBar(QWidget):
    """The weight set shown, the others to pick from, and what the config loads into."""

    def __init__(
        self,
        checkpoint: Checkpoint,
        choose: Callable[[str], None],
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self._choose = choose
        self.sets = weight_sets(checkpoint)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(8, 0, 8, 0)
        layout.addWidget(QLabel("Weight set:"))
        self.selector = QComboBox()
        chosen = str(checkpoint.metadata.get("weight_set", ""))
        for entry in self.sets:
            self.selector.addItem(set_label(entry), str(entry.get("key", "")))
        keys = [str(s.get("key", "")) for s in self.sets]
        if chosen in keys:
            self.selector.setCurrentIndex(keys.index(chosen))
        self.selector.setEnabled(len(self.sets) > 1)
        self.selector.setToolTip(
            "The file holds these weight sets; the default is the one training code loads "
            "(CLI: --key)"
        )
        self.selector.activated.connect(self._activated)
        layout.addWidget(self.selector)
        target = loads_into(checkpoint)
        # A pickle's config is the one pickled with the model; a folder's is its config.json.
        where = "embedded config" if checkpoint.format.startswith("pytorch") else "config.json"
        self.loads_into = QLabel(f"loads into <b>{target}</b> ({where})" if target else "")
        self.loads_into.setVisible(bool(target))
        layout.addWidget(self.loads_into)
        layout.addStretch(1)

    def prepend(self, widget: QWidget) -> None:
        """Put ``widget`` first in the row (the DeepSpeed tag picker: a choice above the set)."""
        row = self.layout()
        if isinstance(row, QHBoxLayout):
            row.insertWidget(0, widget)

    def _activated(self, index: int) -> None:
        key = self.selector.itemData(index)
        if isinstance(key, str):
            self._choose(key)


class ContentsPanel(QWidget):
    """The file's contents besides the weights, as a tree of plain values."""

    def __init__(self, checkpoint: Checkpoint, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        self.tree = QTreeWidget()
        self.tree.setHeaderLabels(["Key", "Value"])
        self.tree.setColumnWidth(0, 260)
        self.rows = 0
        contents = checkpoint.metadata.get("pickle_contents")
        self._fill(self.tree.invisibleRootItem(), contents)
        self.tree.expandToDepth(0)
        layout.addWidget(self.tree)

    def _fill(self, parent: QTreeWidgetItem, value: Any) -> None:
        if isinstance(value, Mapping):
            items: list[tuple[str, Any]] = [(str(k), v) for k, v in value.items()]
        elif isinstance(value, list | tuple):
            items = [(f"[{i}]", v) for i, v in enumerate(value)]
        else:
            self._add(parent, "(value)", value)
            return
        for key, item in items:
            self._add(parent, key, item)

    def _add(self, parent: QTreeWidgetItem, key: str, value: Any) -> None:
        if self.rows >= MAX_ROWS:
            return
        self.rows += 1
        if isinstance(value, Mapping):
            label = str(value.get("__class__", f"{len(value)} entries"))
            node = QTreeWidgetItem(parent, [key, label])
            self._fill(node, {k: v for k, v in value.items() if k != "__class__"})
        elif isinstance(value, list | tuple):
            node = QTreeWidgetItem(parent, [key, f"{len(value)} items"])
            self._fill(node, value)
        else:
            QTreeWidgetItem(parent, [key, "None" if value is None else str(value)])
