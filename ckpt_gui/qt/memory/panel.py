"""The Memory panel: what the whole model and the selected subtree need.

The figures are header arithmetic (``core.memory``: no file is read, no torch), so
they are computed on the GUI thread; the largest-layer search builds one tree per
checkpoint and is kept with it.
"""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QComboBox,
    QFormLayout,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QSpinBox,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from ckpt_gui.core.errors import CheckpointError
from ckpt_gui.core.formatting import human_bytes, human_count
from ckpt_gui.core.memory.estimate import MemoryEstimate, estimate_memory
from ckpt_gui.core.memory.kv_cache import default_context
from ckpt_gui.core.memory.weights import DTYPE_BYTES
from ckpt_gui.core.model import Checkpoint
from ckpt_gui.core.tree.build import ModuleNode
from ckpt_gui.qt.runtime.signals import signals_blocked

STORED = "as stored"
KV_DTYPES = ("bfloat16", "float16", "float32", "float8")
DEFAULT_CONTEXT = 4096


class MemoryPanel(QWidget):
    """Figures for the whole model (left column) and the selection (right column)."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.checkpoint: Checkpoint | None = None
        self.node: ModuleNode | None = None
        self.whole: MemoryEstimate | None = None
        self.selection: MemoryEstimate | None = None

        self.dtype = QComboBox()
        self.dtype.addItems([STORED, *DTYPE_BYTES])
        self.kv_dtype = QComboBox()
        self.kv_dtype.addItems(KV_DTYPES)
        self.context = QSpinBox()
        self.context.setRange(1, 100_000_000)
        self.context.setGroupSeparatorShown(True)
        self.batch = QSpinBox()
        self.batch.setRange(1, 65_536)
        self.lora_rank = QSpinBox()
        self.lora_rank.setRange(1, 4096)
        self.lora_rank.setValue(8)
        controls = QHBoxLayout()
        for label, widget in (
            ("Weights in", self.dtype),
            ("Context", self.context),
            ("Batch", self.batch),
            ("KV cache in", self.kv_dtype),
            ("LoRA rank", self.lora_rank),
        ):
            form = QFormLayout()
            form.addRow(label, widget)
            controls.addLayout(form)
        controls.addStretch(1)

        self.table = QTableWidget(0, 3)
        self.table.setHorizontalHeaderLabels(["", "Whole model", "Selection"])
        self.table.verticalHeader().setVisible(False)
        # Compact rows: the page shares the space under the tree with other panels.
        self.table.verticalHeader().setDefaultSectionSize(self.fontMetrics().height() + 6)
        self.table.horizontalHeader().setSectionResizeMode(
            0, QHeaderView.ResizeMode.ResizeToContents
        )
        self.table.horizontalHeader().setSectionResizeMode(1, QHeaderView.ResizeMode.Stretch)
        self.table.horizontalHeader().setSectionResizeMode(2, QHeaderView.ResizeMode.Stretch)
        self.table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self.note = QLabel()
        self.note.setWordWrap(True)
        self.note.setStyleSheet("color:#777")

        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addLayout(controls)
        layout.addWidget(self.table, 1)
        layout.addWidget(self.note)
        for spin in (self.context, self.batch, self.lora_rank):
            spin.valueChanged.connect(self.refresh)
        for combo in (self.dtype, self.kv_dtype):
            combo.currentIndexChanged.connect(self.refresh)

    def set_checkpoint(self, checkpoint: Checkpoint | None) -> None:
        self.checkpoint, self.node = checkpoint, None
        context = default_context(checkpoint.config) if checkpoint is not None else None
        with signals_blocked(self.context):
            self.context.setValue(min(context or DEFAULT_CONTEXT, self.context.maximum()))
        self.refresh()

    def set_node(self, node: ModuleNode | None) -> None:
        self.node = node
        self.selection = self._estimate(node) if node is not None else None
        self._fill()

    def refresh(self) -> None:
        self.whole = self._estimate(None) if self.checkpoint is not None else None
        self.selection = self._estimate(self.node) if self.node is not None else None
        self._fill()

    # -- helpers ---------------------------------------------------------------------------
    def _estimate(self, node: ModuleNode | None) -> MemoryEstimate | None:
        if self.checkpoint is None or (node is not None and not node.path):
            return None
        scope: tuple[str, ...] = ()
        if node is not None:
            members = getattr(node, "members", None)
            scope = tuple(m.path for m in members) if members else (node.path,)
        dtype = self.dtype.currentText()
        try:
            return estimate_memory(
                self.checkpoint,
                dtype=None if dtype == STORED else dtype,
                context=self.context.value(),
                batch=self.batch.value(),
                kv_dtype=self.kv_dtype.currentText(),
                lora_rank=self.lora_rank.value(),
                scope=scope,
            )
        except CheckpointError:
            return None  # a ghost row: nothing stored under it

    def _fill(self) -> None:
        rows = _rows(self.whole, self.selection)
        self.table.setRowCount(len(rows))
        for row, (label, whole, selected) in enumerate(rows):
            for column, text in enumerate((label, whole, selected)):
                item = QTableWidgetItem(text)
                if column:
                    item.setTextAlignment(
                        Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter
                    )
                self.table.setItem(row, column, item)
        self.table.setHorizontalHeaderLabels(
            ["", "Whole model", self.selection.scope if self.selection else "Selection"]
        )
        warnings = self.whole.warnings if self.whole else ()
        self.note.setText(
            "Adam training at batch 1, activations not included (as accelerate's estimate)."
            + "".join(f"\n⚠ {w}" for w in warnings[:2])
        )


def _rows(
    whole: MemoryEstimate | None, selected: MemoryEstimate | None
) -> list[tuple[str, str, str]]:
    def both(get: object) -> tuple[str, str]:
        assert callable(get)
        return (get(whole) if whole else "—", get(selected) if selected else "—")

    def size(value: int | None) -> str:
        return human_bytes(value) if value is not None else "—"

    rows: list[tuple[str, str, str]] = [
        ("Parameters", *both(lambda e: f"{human_count(e.parameters)} ({e.parameters:,})")),
        ("Weights", *both(lambda e: f"{size(e.weights_bytes)} ({e.to_json()['dtype']})")),
        ("Weights stored", *both(lambda e: size(e.stored_bytes))),
    ]
    for name in ("float32", "bfloat16", "float8", "int4"):
        rows.append((f"  in {name}", *both(lambda e, n=name: size(e.weights_bytes_by_dtype[n]))))
    rows += [
        ("Largest layer", *both(lambda e: _layer(e))),
        ("Adam, float32", *both(lambda e: size(e.training["float32"].peak))),
        ("Adam, bf16 mixed", *both(lambda e: size(e.training["bfloat16"].peak))),
        ("KV cache / token", *both(lambda e: size(e.kv_cache_bytes_per_token))),
        ("KV cache", *both(lambda e: _kv(e))),
        ("Inference", *both(lambda e: size(e.inference_bytes) if e.kv else "—")),
        ("LoRA fine-tune", *both(lambda e: _lora(e))),
    ]
    if whole is not None and whole.quantization:
        rows.insert(1, ("Quantized", whole.quantization, ""))
    return rows


def _layer(estimate: MemoryEstimate) -> str:
    layer = estimate.largest_layer
    if layer is None or estimate.largest_layer_bytes is None:
        return "—"
    return f"{human_bytes(estimate.largest_layer_bytes)} ({layer.name})"


def _kv(estimate: MemoryEstimate) -> str:
    if estimate.kv_cache_bytes is None or estimate.context is None:
        return "—"
    sliding = estimate.kv.to_json()["sliding_layers"] if estimate.kv else 0
    note = f", {sliding} sliding layers" if sliding else ""
    return f"{human_bytes(estimate.kv_cache_bytes)} ({estimate.context:,} x {estimate.batch}{note})"


def _lora(estimate: MemoryEstimate) -> str:
    lora = estimate.lora
    if lora is None:
        return "—"
    return (
        f"{human_bytes(lora.training_peak_bytes)} ({human_count(lora.trainable_parameters)} "
        f"trainable, r={lora.rank})"
    )
