"""The welcome view: invites a drop, offers Open buttons and the recent checkpoints."""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QFrame,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QVBoxLayout,
    QWidget,
)


class WelcomeView(QWidget):
    """Shown when no tab is open. Emits ``open_requested(target)`` for a recent item."""

    open_requested = Signal(str)
    open_file_requested = Signal()
    open_folder_requested = Signal()
    demo_requested = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        drop = QFrame()
        drop.setObjectName("dropZone")
        drop.setStyleSheet(
            "#dropZone { border: 2px dashed #9aa7b8; border-radius: 14px; background: #f6f8fb; }"
        )
        drop_layout = QVBoxLayout(drop)
        drop_layout.setContentsMargins(32, 28, 32, 28)
        title = QLabel("Drop a checkpoint here")
        title.setAlignment(Qt.AlignmentFlag.AlignCenter)
        title.setStyleSheet("font-size: 20pt; font-weight: bold; color: #33415c;")
        hint = QLabel(
            "A .safetensors, .bin, .pt or .index.json file, a model folder, a folder of shards,"
            "\nseveral at once, or a Hugging Face repo id / URL dragged as text."
        )
        hint.setAlignment(Qt.AlignmentFlag.AlignCenter)
        hint.setStyleSheet("color: #5c677d;")
        drop_layout.addWidget(title)
        drop_layout.addWidget(hint)
        self._buttons = QHBoxLayout()
        self._buttons.addStretch(1)
        for text, signal in (
            ("Open File…", self.open_file_requested),
            ("Open Folder…", self.open_folder_requested),
            ("Open the demo", self.demo_requested),
        ):
            button = QPushButton(text)
            button.clicked.connect(signal.emit)
            self._buttons.addWidget(button)
        self._buttons.addStretch(1)
        drop_layout.addSpacing(10)
        drop_layout.addLayout(self._buttons)

        recent_title = QLabel("Recent")
        recent_title.setStyleSheet("font-size: 12pt; font-weight: bold; color: #33415c;")
        self.recent_list = QListWidget()
        self.recent_list.setAlternatingRowColors(True)
        self.recent_list.itemActivated.connect(self._activated)
        self.recent_list.itemClicked.connect(self._activated)
        self.empty_label = QLabel("Checkpoints you open will be listed here.")
        self.empty_label.setStyleSheet("color: #7d8597;")

        column = QVBoxLayout()
        column.addStretch(1)
        column.addWidget(drop)
        column.addSpacing(18)
        column.addWidget(recent_title)
        column.addWidget(self.recent_list, 2)
        column.addWidget(self.empty_label)
        column.addStretch(1)
        outer = QHBoxLayout(self)
        outer.addStretch(1)
        outer.addLayout(column, 6)
        outer.addStretch(1)

    def add_open_button(self, text: str, slot: Callable[[], object]) -> QPushButton:
        """A feature's way to open checkpoints (e.g. "Open from Hub…"), before the demo."""
        button = QPushButton(text)
        button.clicked.connect(lambda _checked=False: slot())
        # Last of the open buttons: before "Open the demo" and the trailing stretch.
        self._buttons.insertWidget(self._buttons.count() - 2, button)
        return button

    def set_recent(self, targets: list[str]) -> None:
        self.recent_list.clear()
        for target in targets:
            item = QListWidgetItem(target)
            item.setToolTip(target)
            self.recent_list.addItem(item)
        self.recent_list.setVisible(bool(targets))
        self.empty_label.setVisible(not targets)

    def _activated(self, item: QListWidgetItem) -> None:
        self.open_requested.emit(item.text())
