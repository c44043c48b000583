"""The export dialog's plan preview: what will be written, shard by shard, and warnings."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QAbstractItemView,
    QGroupBox,
    QHeaderView,
    QLabel,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
)

from ckpt_gui.core.export import ExportPlan
from ckpt_gui.core.formatting import human_bytes, human_count

PLANNING = "Planning…"
WARNING_STYLE = "color: #b26a00;"


class PlanPreview(QGroupBox):
    """Summary line, a table of the output shards, and the plan's warnings."""

    def __init__(self) -> None:
        super().__init__("Plan")
        self.summary_label = QLabel(PLANNING)
        self.summary_label.setWordWrap(True)
        self.shard_table = QTableWidget(0, 3)
        self.shard_table.setHorizontalHeaderLabels(["File", "Tensors", "Size"])
        self.shard_table.verticalHeader().setVisible(False)
        self.shard_table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.shard_table.setSelectionMode(QAbstractItemView.SelectionMode.NoSelection)
        header = self.shard_table.horizontalHeader()
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        for column in (1, 2):
            header.setSectionResizeMode(column, QHeaderView.ResizeMode.ResizeToContents)
        self.shard_table.setMinimumHeight(120)
        self.warnings_label = QLabel()
        self.warnings_label.setWordWrap(True)
        self.warnings_label.setStyleSheet(WARNING_STYLE)
        layout = QVBoxLayout(self)
        layout.addWidget(self.summary_label)
        layout.addWidget(self.shard_table, 1)
        layout.addWidget(self.warnings_label)

    def show_plan(self, plan: ExportPlan) -> None:
        self.summary_label.setText(_summary(plan))
        shards = plan.shards
        self.shard_table.setRowCount(len(shards))
        for row, shard in enumerate(shards):
            cells = (shard.filename, f"{len(shard.tensors):,}", human_bytes(shard.file_size))
            for column, text in enumerate(cells):
                item = QTableWidgetItem(text)
                if column:
                    item.setTextAlignment(
                        Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter
                    )
                self.shard_table.setItem(row, column, item)
        self.warnings_label.setText("\n".join(f"⚠ {w}" for w in plan.warnings))
        self.warnings_label.setVisible(bool(plan.warnings))

    def show_nothing(self, message: str) -> None:
        self.summary_label.setText(message)
        self.shard_table.setRowCount(0)
        self.warnings_label.setVisible(False)


def _summary(plan: ExportPlan) -> str:
    shards = plan.shards
    raw = sum(t.nbytes for t in plan.tensors if t.raw_copy)
    parts = [
        f"<b>{human_bytes(plan.estimated_bytes)}</b> to write",
        f"{len(plan.tensors):,} tensors",
        f"{human_count(plan.total_parameters)} parameters",
        f"{len(shards)} shard{'s' if len(shards) != 1 else ''}",
    ]
    if plan.total_size and raw:
        parts.append(f"{raw * 100 // plan.total_size}% copied without decoding")
    extra = [name for _, name in plan.copied_files] + [n for n, _ in plan.generated_files]
    text = " · ".join(parts)
    if extra:
        text += "<br>Also writes: " + ", ".join(sorted(extra))
    if plan.kind == "random-init":
        text += f"<br>Architecture: {plan.extra.get('architecture')}"
    return text
