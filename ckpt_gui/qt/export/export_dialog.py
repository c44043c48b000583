"""The export dialog: options for one job, and its plan (size, shards, warnings) before starting.

Every change of an option re-plans after a short pause, on a Worker (planning a
random init imports transformers and builds the meta model). Only the latest
plan counts; a plan error is shown inline as one line and disables Start.
``start_requested`` fires with the dialog when the user starts; the caller
reads ``plan`` and ``export_options()``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from pathlib import Path

from PySide6.QtCore import QTimer, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from ckpt_gui.core.export import ExportOptions, ExportPlan, RenameRule
from ckpt_gui.core.formatting import parse_size
from ckpt_gui.qt.export import choices
from ckpt_gui.qt.export.choices import KINDS
from ckpt_gui.qt.export.export_plan_view import PLANNING, PlanPreview
from ckpt_gui.qt.export.request import (
    ExportRequest,
    as_rename,
    default_output,
    make_plan,
    prefix_fields,
)
from ckpt_gui.qt.runtime.signals import signals_blocked
from ckpt_gui.qt.runtime.workers import Worker, describe_error
from ckpt_gui.qt.widgets.elided_label import ElidedLabel

__all__ = ["KINDS", "ExportDialog", "ExportRequest", "make_plan", "prefix_fields"]

PLAN_DELAY_MS = 250
ERROR_STYLE = "color: #c62828;"


class ExportDialog(QDialog):
    """Options + plan preview for one export job (see the module doc)."""

    start_requested = Signal(object)
    planned = Signal(object)  # the ExportPlan, or None after an error (tests wait on it)

    def __init__(
        self,
        kind: str = "convert",
        source: str = "",
        *,
        subtree: str | None = None,
        renames: Iterable[RenameRule | tuple[str, str]] = (),
        base: str = "",
        tag: str | None = None,
        weights_key: str | None = None,
        parent: QWidget | None = None,
        planner: Callable[[ExportRequest], ExportPlan] = make_plan,
    ) -> None:
        super().__init__(parent)
        self.setWindowTitle("Export")
        self.plan: ExportPlan | None = None
        self.error: str | None = None
        self._planner = planner
        self._generation = 0
        self._worker: Worker | None = None
        self._replan_after = False
        self._output_edited = False

        self.kind_box = QComboBox()
        for key, label in KINDS.items():
            self.kind_box.addItem(label, key)
        self.source_edit = QLineEdit(source)
        self.source_edit.setPlaceholderText("checkpoint file or model folder")
        self.base_edit = QLineEdit(base)
        self.base_edit.setPlaceholderText("the base model folder the adapter was trained on")
        self.subtree_edit = QLineEdit(subtree or "")
        self.subtree_edit.setPlaceholderText("whole checkpoint (or a module, e.g. model.layers.0)")
        self.output_edit = QLineEdit()
        # A DeepSpeed tab's tag: the export reads the global_step folder the tab shows.
        self._has_tag = tag is not None
        self.tag_edit = QLineEdit(tag or "")
        self.tag_edit.setPlaceholderText("the tag the folder's latest file names")
        self.tag_edit.setToolTip("The global_step folder of the DeepSpeed checkpoint to export")
        # The weight set the tab shows (a pickle's EMA, DeepSpeed's module weights): exported as shown.
        self.weights_key = weights_key
        self.weight_set_label = QLabel(weights_key or "")
        self.config_edit = QLineEdit()
        self.config_edit.setPlaceholderText(
            "config.json written beside the weights (default: the source's own, if any)"
        )
        self.config_edit.setToolTip(
            "Distributed checkpoints (DCP, DeepSpeed) carry no config: name one so that "
            "from_pretrained loads the merged model"
        )
        self.dtype_box = QComboBox()
        self.shard_box = QComboBox()
        self.shard_box.setEditable(True)
        self.shard_box.addItems(choices.SHARD_PRESETS)
        self.shard_box.setToolTip("KB/MB/GB are powers of 1000, KiB/MiB/GiB of 1024")
        self.seed_box = QSpinBox()
        self.seed_box.setRange(0, 2**31 - 1)
        self.overflow_box = QComboBox()
        for key, label in choices.OVERFLOW_CHOICES:
            self.overflow_box.addItem(label, key)
        self.strip_edit = QLineEdit()
        self.strip_edit.setPlaceholderText("e.g. module (removes 'module.')")
        self.add_edit = QLineEdit()
        self.add_edit.setPlaceholderText("e.g. model (prepends 'model.')")
        self.renames_edit = QPlainTextEdit()
        self.renames_edit.setPlaceholderText("REGEX=REPLACEMENT, one per line (applied after)")
        self.renames_edit.setFixedHeight(self.fontMetrics().lineSpacing() * 3 + 12)
        self.overwrite_box = QCheckBox("Replace the output folder if it exists")

        strip, add, rest = prefix_fields([as_rename(r) for r in renames])
        self.strip_edit.setText(strip)
        self.add_edit.setText(add)
        self.renames_edit.setPlainText("\n".join(f"{r.pattern}={r.replacement}" for r in rest))

        self.form = QFormLayout()
        self.form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.ExpandingFieldsGrow)
        self.form.addRow("Job", self.kind_box)
        self.form.addRow("Source", self._with_browse(self.source_edit, self._browse_source))
        self.form.addRow("Base model", self._with_browse(self.base_edit, self._browse_base))
        self.form.addRow("DeepSpeed tag", self.tag_edit)
        self.form.addRow("Weight set", self.weight_set_label)
        self.form.addRow("Subtree", self.subtree_edit)
        self.form.addRow("Output folder", self._with_browse(self.output_edit, self._browse_output))
        self.form.addRow("Config", self.config_edit)
        self.form.addRow("Target dtype", self.dtype_box)
        self.form.addRow("Max shard size", self.shard_box)
        self.form.addRow("Seed", self.seed_box)
        self.form.addRow("On overflow", self.overflow_box)
        self.form.addRow("Strip prefix", self.strip_edit)
        self.form.addRow("Add prefix", self.add_edit)
        self.form.addRow("Other renames", self.renames_edit)
        self.form.addRow("", self.overwrite_box)

        self.preview = PlanPreview()
        # The preview's parts, by the names tests and callers use.
        self.summary_label = self.preview.summary_label
        self.shard_table = self.preview.shard_table
        self.error_label = ElidedLabel(ERROR_STYLE)

        self.buttons = QDialogButtonBox()
        self.start_button = self.buttons.addButton(
            "Start export", QDialogButtonBox.ButtonRole.AcceptRole
        )
        self.buttons.addButton(QDialogButtonBox.StandardButton.Cancel)
        self.start_button.setEnabled(False)
        self.buttons.accepted.connect(self._start)
        self.buttons.rejected.connect(self.reject)

        layout = QVBoxLayout(self)
        layout.addLayout(self.form)
        layout.addWidget(self.preview, 1)
        layout.addWidget(self.error_label)
        layout.addWidget(self.buttons)
        self.resize(640, 720)

        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(PLAN_DELAY_MS)
        self._timer.timeout.connect(self.replan)
        self.kind_box.setCurrentIndex(max(0, self.kind_box.findData(kind)))
        self._kind_changed()
        self.kind_box.currentIndexChanged.connect(self._kind_changed)
        self.dtype_box.currentIndexChanged.connect(self._output_inputs_changed)
        self.source_edit.textChanged.connect(self._output_inputs_changed)
        self.subtree_edit.textChanged.connect(self._output_inputs_changed)
        self.base_edit.textChanged.connect(self.schedule_plan)
        self.output_edit.textEdited.connect(self._output_typed)
        for signal in (
            self.shard_box.currentTextChanged,
            self.seed_box.valueChanged,
            self.strip_edit.textChanged,
            self.add_edit.textChanged,
            self.renames_edit.textChanged,
            self.config_edit.textChanged,
            self.tag_edit.textChanged,
            self.overwrite_box.toggled,
        ):
            signal.connect(self.schedule_plan)
        self.schedule_plan()

    # -- public ---------------------------------------------------------------------------------
    @property
    def kind(self) -> str:
        return str(self.kind_box.currentData())

    @property
    def is_planning(self) -> bool:
        """A plan is due (typing restarts a short delay) or being made on a worker."""
        return self._timer.isActive() or self._worker is not None or self._replan_after

    def export_options(self) -> ExportOptions:
        overflow = str(self.overflow_box.currentData()) if self.kind == "convert" else "inf"
        return ExportOptions(overwrite=self.overwrite_box.isChecked(), overflow=overflow)

    def request(self) -> ExportRequest:
        """The options as typed; raises ValueError (one line) for invalid fields."""
        kind = self.kind
        source = self.source_edit.text().strip()
        output = self.output_edit.text().strip()
        if not source:
            raise ValueError("choose a config" if kind == "random-init" else "choose a source")
        if not output:
            raise ValueError("choose an output folder")
        shard_text = self.shard_box.currentText().strip()
        try:
            max_shard_size = parse_size(shard_text)
        except ValueError as exc:
            raise ValueError(f"max shard size: {exc}") from None
        dtype = self.dtype_box.currentData()
        merge = kind == "merge-lora"
        if merge and not self.base_edit.text().strip():
            raise ValueError("choose the base model to merge the adapter into")
        return ExportRequest(
            kind=kind,
            source=source,
            output=output,
            dtype=str(dtype) if dtype and kind in choices.DTYPE_KINDS else None,
            max_shard_size=max_shard_size,
            seed=self.seed_box.value(),
            overwrite=self.overwrite_box.isChecked(),
            subtree=(self.subtree_edit.text().strip() or None)
            if kind not in ("random-init", "gguf-safetensors", "merge-lora")
            else None,
            renames=[] if merge else self.renames(),
            config=(self.config_edit.text().strip() or None)
            if kind not in ("random-init", "merge-lora", "gguf-safetensors")
            else None,
            base=self.base_edit.text().strip() if merge else None,
            tag=(self.tag_edit.text().strip() or None)
            if self._has_tag and kind in choices.TAG_KINDS
            else None,
            weights_key=self.weights_key if kind in choices.TAG_KINDS else None,
        )

    def renames(self) -> list[RenameRule]:
        rules: list[RenameRule] = []
        if strip := self.strip_edit.text().strip():
            rules.append(RenameRule.strip_prefix(strip))
        if add := self.add_edit.text().strip():
            rules.append(RenameRule.add_prefix(add))
        for line in self.renames_edit.toPlainText().splitlines():
            if line.strip():
                rule = RenameRule.parse(line.strip())
                try:
                    re.compile(rule.pattern)
                except re.error as exc:
                    raise ValueError(f"rename {rule.pattern!r}: {exc}") from None
                rules.append(rule)
        return rules

    def schedule_plan(self) -> None:
        self._generation += 1  # a plan in flight is now stale
        self.plan = None
        self.start_button.setEnabled(False)
        self._timer.start()

    def replan(self) -> None:
        """Plan now (typing waits PLAN_DELAY_MS first)."""
        self._timer.stop()
        self._generation += 1
        generation = self._generation
        self.plan = None
        self.start_button.setEnabled(False)
        try:
            request = self.request()
        except ValueError as exc:
            self._show_error(str(exc))
            return
        self.summary_label.setText(PLANNING)
        self.error = None
        self.error_label.set_full_text("")
        if self._worker is not None and self._worker.is_running:
            # One plan in flight at a time (a random-init plan takes seconds of CPU): the
            # running one's result is stale, and the newest options are planned after it.
            self._replan_after = True
            return
        self._replan_after = False
        worker = Worker(self._planner, request)
        worker.returned.connect(lambda plan: self._planned(generation, plan))
        worker.errored.connect(lambda error: self._plan_failed(generation, error))
        worker.finished.connect(lambda: self._plan_finished(worker))
        self._worker = worker
        worker.start()

    def _plan_finished(self, worker: Worker) -> None:
        if worker is self._worker:
            self._worker = None
        if self._replan_after:
            self.replan()

    def done(self, result: int) -> None:
        self._timer.stop()
        self._replan_after = False
        self._generation += 1
        if self._worker is not None:
            self._worker.quit()
            self._worker = None
        super().done(result)

    # -- plan display ---------------------------------------------------------------------------
    def _planned(self, generation: int, plan: ExportPlan) -> None:
        if generation != self._generation:
            return
        self.plan, self.error = plan, None
        self.preview.show_plan(plan)
        self.error_label.set_full_text("")
        self.start_button.setEnabled(True)
        self.planned.emit(plan)

    def _plan_failed(self, generation: int, error: BaseException) -> None:
        if generation != self._generation:
            return
        self._show_error(describe_error(error))

    def _show_error(self, message: str) -> None:
        self.plan, self.error = None, " ".join(message.split())
        self.preview.show_nothing("No plan: fix the problem below.")
        self.error_label.set_full_text(self.error)
        self.start_button.setEnabled(False)
        self.planned.emit(None)

    # -- options --------------------------------------------------------------------------------
    def _kind_changed(self) -> None:
        kind = self.kind
        random_init = kind == "random-init"
        gguf = kind == "gguf-safetensors"
        merge = kind == "merge-lora"
        base_holder = self.base_edit.parentWidget()
        if base_holder is not None:
            self.form.setRowVisible(base_holder, merge)
        self.form.setRowVisible(self.subtree_edit, not random_init and not gguf and not merge)
        self.form.setRowVisible(self.tag_edit, self._has_tag and kind in choices.TAG_KINDS)
        self.form.setRowVisible(self.weight_set_label, bool(self.weights_key) and kind in choices.TAG_KINDS)
        for edit in (self.strip_edit, self.add_edit, self.renames_edit):
            self.form.setRowVisible(edit, not merge)
        self.form.setRowVisible(self.dtype_box, kind in choices.DTYPE_KINDS)
        self.form.setRowVisible(self.config_edit, not random_init and not gguf and not merge)
        self.form.setRowVisible(self.seed_box, random_init)
        self.form.setRowVisible(self.overflow_box, kind == "convert")
        holder = self.source_edit.parentWidget()
        label = self.form.labelForField(holder) if holder is not None else None
        if isinstance(label, QLabel):
            label.setText("Config" if random_init else "Adapter" if merge else "Source")
        self.source_edit.setPlaceholderText(
            "config.json or a folder holding one"
            if random_init
            else "peft adapter folder (adapter_config.json)"
            if merge
            else "checkpoint file or folder"
        )
        current = self.dtype_box.currentData()
        with signals_blocked(self.dtype_box):
            self.dtype_box.clear()
            if random_init:
                self.dtype_box.addItem("As in the config", None)
            if merge:
                self.dtype_box.addItem("As in the base", None)
            for dtype in choices.GGUF_DTYPES if gguf else choices.CONVERT_DTYPES:
                self.dtype_box.addItem(dtype, dtype)
            index = self.dtype_box.findData(current)
            self.dtype_box.setCurrentIndex(max(0, index))
        self.shard_box.setCurrentText(choices.DEFAULT_SHARD.get(kind, "5GB"))
        self.setWindowTitle(f"Export: {KINDS[kind]}")
        self._output_inputs_changed()

    def _output_inputs_changed(self) -> None:
        if not self._output_edited:
            dtype = self.dtype_box.currentData()
            self.output_edit.setText(
                default_output(
                    self.kind,
                    self.source_edit.text().strip(),
                    str(dtype) if dtype else None,
                    self.subtree_edit.text().strip() or None,
                )
            )
        self.schedule_plan()

    def _output_typed(self) -> None:
        self._output_edited = True
        self.schedule_plan()

    def _with_browse(self, edit: QLineEdit, browse: Callable[[], None]) -> QWidget:
        holder = QWidget()
        row = QHBoxLayout(holder)
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(edit, 1)
        button = QPushButton("Browse…")
        button.setAutoDefault(False)
        button.clicked.connect(browse)
        row.addWidget(button)
        return holder

    def _browse_source(self) -> None:
        if self.kind == "random-init":
            path, _ = QFileDialog.getOpenFileName(
                self, "Config", self.source_edit.text(), "Config (*.json);;All files (*)"
            )
        else:
            path = QFileDialog.getExistingDirectory(self, "Model folder", self.source_edit.text())
        if path:
            self.source_edit.setText(path)

    def _browse_base(self) -> None:
        path = QFileDialog.getExistingDirectory(self, "Base model folder", self.base_edit.text())
        if path:
            self.base_edit.setText(path)

    def _browse_output(self) -> None:
        """Pick the folder to write into; the output keeps its name inside it."""
        current = Path(self.output_edit.text() or "export")
        parent = QFileDialog.getExistingDirectory(
            self, "Write the export into", str(current.parent)
        )
        if parent:
            self.output_edit.setText(str(Path(parent) / current.name))
            self._output_typed()

    def _start(self) -> None:
        if self.plan is None:
            return
        self.start_requested.emit(self)
        self.accept()
