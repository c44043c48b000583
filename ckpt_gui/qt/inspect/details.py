"""The details panel: a tensor's facts and statistics, or a module's parameter breakdown."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QFormLayout,
    QGridLayout,
    QGroupBox,
    QHeaderView,
    QLabel,
    QPushButton,
    QScrollArea,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from ckpt_gui.core.formatting import human_bytes, human_count
from ckpt_gui.core.gguf.naming import gguf_name
from ckpt_gui.core.model import Checkpoint, TensorInfo
from ckpt_gui.core.tree.build import ModuleNode
from ckpt_gui.core.tree.ghosts import is_ghost
from ckpt_gui.core.tree.grouping import GroupNode
from ckpt_gui.core.values.stats import TensorStats, compute_stats
from ckpt_gui.qt.models.tree_model import shape_text
from ckpt_gui.qt.runtime.workers import Worker, describe_error
from ckpt_gui.qt.widgets.histogram import HistogramPlot

# Statistics start by themselves below this many elements (a fraction of a second).
AUTO_STATS_ELEMENTS = 1 << 20


def _exact(value: int) -> str:
    return f"{human_count(value)}  ({value:,})"


class DetailsPanel(QScrollArea):
    """Shows the selected node; computes tensor statistics on a Worker."""

    stats_ready = Signal(object)  # TensorStats, after it is shown
    stats_failed = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWidgetResizable(True)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.setMinimumWidth(280)
        self._checkpoint: Checkpoint | None = None
        self._node: ModuleNode | None = None
        self._worker: Worker | None = None
        self.last_stats: TensorStats | None = None

        body = QWidget()
        layout = QVBoxLayout(body)
        self.title = QLabel("Select a module or tensor")
        self.title.setWordWrap(True)
        self.title.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.title.setStyleSheet("font-weight: bold; font-size: 11pt;")
        layout.addWidget(self.title)

        self.facts = QFormLayout()
        self.facts.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        layout.addLayout(self.facts)

        self.breakdown_box = QGroupBox("Parameters by child")
        self.breakdown = _table(["Child", "Parameters", "Share"])
        QVBoxLayout(self.breakdown_box).addWidget(self.breakdown)
        layout.addWidget(self.breakdown_box)
        self.dtype_box = QGroupBox("Parameters by dtype")
        self.dtype_table = _table(["DType", "Parameters", "Share"])
        QVBoxLayout(self.dtype_box).addWidget(self.dtype_table)
        layout.addWidget(self.dtype_box)

        self.stats_box = QGroupBox("Statistics")
        stats_layout = QVBoxLayout(self.stats_box)
        self.stats_button = QPushButton("Compute statistics")
        self.stats_button.clicked.connect(self.compute_statistics)
        stats_layout.addWidget(self.stats_button)
        self.stats_status = QLabel()
        self.stats_status.setWordWrap(True)
        stats_layout.addWidget(self.stats_status)
        self.stats_grid = QGridLayout()
        self.stats_grid.setHorizontalSpacing(10)
        stats_layout.addLayout(self.stats_grid)
        self.histogram = HistogramPlot()
        stats_layout.addWidget(self.histogram)
        layout.addWidget(self.stats_box)
        layout.addStretch(1)
        self.setWidget(body)
        self.show_node(None)

    # -- public API ---------------------------------------------------------------------
    def set_checkpoint(self, checkpoint: Checkpoint | None) -> None:
        self._checkpoint = checkpoint
        self.show_node(None)

    @property
    def stats_running(self) -> bool:
        return self._worker is not None

    def show_node(self, node: ModuleNode | None) -> None:
        self._cancel_stats()
        self._node = node
        self.last_stats = None
        _clear_form(self.facts)
        _clear_layout(self.stats_grid)
        self.histogram.clear_plot()
        self._set_status("")
        self.breakdown_box.setVisible(False)
        self.dtype_box.setVisible(False)
        self.stats_box.setVisible(False)
        if node is None:
            self.title.setText("Select a module or tensor")
            return
        # Zero-width spaces after dots let long dotted names wrap instead of widening the panel.
        self.title.setText((node.path or "(checkpoint)").replace(".", ".\u200b"))
        if node.tensor is not None:
            self._show_tensor(node.tensor)
        else:
            self._show_module(node)

    def compute_statistics(self) -> None:
        """Start computing the selected tensor's statistics in the background."""
        node, checkpoint = self._node, self._checkpoint
        if node is None or node.tensor is None or checkpoint is None or self._worker:
            return
        if checkpoint.root is None:
            self._set_status("Statistics need the checkpoint on local disk.")
            return
        tensor = node.tensor
        worker = Worker(lambda: compute_stats(checkpoint, tensor, should_stop=stop_requested))
        stop_requested = worker.stop_requested
        worker.returned.connect(lambda stats: self._stats_done(worker, stats))
        worker.errored.connect(lambda error: self._stats_error(worker, describe_error(error)))
        worker.finished.connect(lambda: self._stats_finished(worker))
        self._worker = worker
        self.stats_button.setEnabled(False)
        self._set_status(f"Reading {human_bytes(tensor.nbytes)}…")
        worker.start()

    # -- tensor / module ---------------------------------------------------------------------
    def _show_tensor(self, tensor: TensorInfo) -> None:
        if is_ghost(tensor):
            # A ghost row of a comparison: nothing to read, only what the model expects.
            _add_row(self.facts, "Status", "missing: the model expects it, the checkpoint lacks it")
            _add_row(self.facts, "Model shape", shape_text(tensor.shape))
            _add_row(self.facts, "Model dtype", tensor.dtype)
            return
        rows = [
            ("Shape", shape_text(tensor.shape)),
            ("DType", tensor.dtype),
            ("Parameters", _exact(tensor.parameters)),
            ("Bytes", f"{human_bytes(tensor.nbytes)}  ({tensor.nbytes:,})"),
            ("File", tensor.file),
            ("Offset", "—" if tensor.offset is None else f"{tensor.offset:,}"),
        ]
        if self._checkpoint is not None and self._checkpoint.format == "gguf":
            rows.insert(0, ("GGUF name", gguf_name(self._checkpoint, tensor)))
        for label, value in rows:
            _add_row(self.facts, label, value)
        self.stats_box.setVisible(True)
        self.stats_button.setEnabled(True)
        self.stats_button.setVisible(True)
        if tensor.parameters <= AUTO_STATS_ELEMENTS:
            self.compute_statistics()

    def _show_module(self, node: ModuleNode) -> None:
        _add_row(self.facts, "Tensors", f"{node.tensor_count:,}")
        _add_row(self.facts, "Parameters", _exact(node.parameters))
        _add_row(self.facts, "Bytes", f"{human_bytes(node.nbytes)}  ({node.nbytes:,})")
        if isinstance(node, GroupNode):
            _add_row(self.facts, "Blocks", f"{len(node.members)} identical blocks")
        total = node.parameters or 1
        # A group's children describe one block: scale them to all of its blocks.
        repeat = len(node.members) if isinstance(node, GroupNode) else 1
        children = sorted(node.children, key=lambda c: -c.parameters)
        _fill_table(
            self.breakdown,
            [(c.name, c.parameters * repeat, c.parameters * repeat / total) for c in children],
        )
        by_dtype: dict[str, int] = {}
        for leaf in node.walk():
            if leaf.tensor is not None:
                by_dtype[leaf.tensor.dtype] = by_dtype.get(leaf.tensor.dtype, 0) + leaf.parameters
        by_dtype = {k: v * repeat for k, v in by_dtype.items()}
        _fill_table(
            self.dtype_table,
            [(d, n, n / total) for d, n in sorted(by_dtype.items(), key=lambda kv: -kv[1])],
        )
        self.breakdown_box.setVisible(True)
        self.dtype_box.setVisible(True)

    # -- statistics results ------------------------------------------------------------------
    def _stats_done(self, worker: Worker, stats: TensorStats) -> None:
        if worker is not self._worker:
            return
        self.last_stats = stats
        self._set_status("")
        rows = [
            ("Min", _number(stats.min)),
            ("Max", _number(stats.max)),
            ("Mean", _number(stats.mean)),
            ("Std", _number(stats.std)),
            ("Abs max", _number(stats.abs_max)),
            ("Zeros", f"{stats.zeros_fraction:.2%}"),
            ("NaN", f"{stats.nan:,}"),
            ("Inf", f"{stats.inf:,}"),
        ]
        muted = "color: #5c677d;"
        for i, (label, value) in enumerate(rows):
            name = QLabel(f"{label}:")
            name.setStyleSheet(muted)
            field = QLabel(value)
            field.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
            self.stats_grid.addWidget(name, i // 2, (i % 2) * 2)
            self.stats_grid.addWidget(field, i // 2, (i % 2) * 2 + 1)
        self.stats_button.setVisible(False)
        self.histogram.show_histogram(stats.histogram_counts, stats.histogram_edges)
        self.stats_ready.emit(stats)

    def _stats_error(self, worker: Worker, message: str) -> None:
        if worker is self._worker:
            self._set_status(f"Could not compute statistics: {message}")
            self.stats_failed.emit(message)

    def _stats_finished(self, worker: Worker) -> None:
        if worker is self._worker:
            self._worker = None
            self.stats_button.setEnabled(self.last_stats is None)

    def cancel(self) -> None:
        """Stop a running statistics computation; its result will be ignored."""
        self._cancel_stats()

    def _set_status(self, text: str) -> None:
        self.stats_status.setText(text)
        self.stats_status.setVisible(bool(text))

    def _cancel_stats(self) -> None:
        if self._worker is not None:
            self._worker.quit()
            self._worker = None


def _number(value: float) -> str:
    return "—" if value != value else f"{value:.6g}"


def _table(headers: list[str]) -> QTableWidget:
    table = QTableWidget(0, len(headers))
    table.setHorizontalHeaderLabels(headers)
    table.verticalHeader().setVisible(False)
    table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
    table.setSelectionMode(QTableWidget.SelectionMode.NoSelection)
    table.horizontalHeader().setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
    for column in range(1, len(headers)):
        table.horizontalHeader().setSectionResizeMode(
            column, QHeaderView.ResizeMode.ResizeToContents
        )
    rows = table.verticalHeader()
    rows.setSectionResizeMode(QHeaderView.ResizeMode.Fixed)
    rows.setDefaultSectionSize(table.fontMetrics().height() + 6)
    return table


def _fill_table(table: QTableWidget, rows: list[tuple[str, int, float]]) -> None:
    table.setRowCount(len(rows))
    right = Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter
    for row, (name, count, share) in enumerate(rows):
        cells: list[tuple[str, Any]] = [
            (name, None),
            (human_count(count), right),
            (f"{share:.1%}", right),
        ]
        for column, (text, align) in enumerate(cells):
            item = QTableWidgetItem(text)
            if align is not None:
                item.setTextAlignment(align)
            table.setItem(row, column, item)
    visible = min(len(rows), 8)  # longer lists scroll
    row_height = table.verticalHeader().defaultSectionSize()
    header_height = table.horizontalHeader().sizeHint().height()
    table.setFixedHeight(header_height + visible * row_height + 2 * table.frameWidth())


def _add_row(form: QFormLayout, label: str, value: str) -> None:
    field = QLabel(value)
    field.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
    field.setWordWrap(True)
    form.addRow(f"{label}:", field)


def _clear_form(form: QFormLayout) -> None:
    while form.rowCount():
        form.removeRow(0)


def _clear_layout(layout: QGridLayout) -> None:
    while layout.count():
        item = layout.takeAt(0)
        widget = item.widget() if item is not None else None
        if widget is not None:
            widget.deleteLater()
