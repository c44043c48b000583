"""Scan panel: every tensor checked for NaN, Inf, all zeros and values beyond a dtype.

``start()`` runs the core ``scan`` job on a Worker (progress bar, Cancel); flagged
tensors are listed as they are found (throttled through a ``ResultRelay``) and
``statuses_ready`` offers tree statuses (``nan``/``inf``/``extreme``/``all_zero``)
for the tab's tree. Double-clicking a row emits ``tensor_activated(name)``.
"""

from __future__ import annotations

from PySide6.QtCore import QModelIndex, QSortFilterProxyModel, Qt, Signal
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QProgressBar,
    QPushButton,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from ckpt_gui.core.formatting import human_bytes, human_count
from ckpt_gui.core.jobs import Progress
from ckpt_gui.core.model import Checkpoint
from ckpt_gui.core.values.scan import ScanReport, TensorScan, scan
from ckpt_gui.qt.runtime.result_relay import ResultRelay
from ckpt_gui.qt.runtime.workers import Worker, describe_error
from ckpt_gui.qt.scan.scan_model import (
    PROBLEM_LABELS,
    ScanColumn,
    ScanTableModel,
    SortRole,
    worst_problem,
)
from ckpt_gui.qt.widgets.cancellable import CancellableWorkerView

# Target dtype choices: label -> core name (None: no range check).
TARGETS: dict[str, str | None] = {
    "F16 (|x| > 65504)": "F16",
    "BF16": "BF16",
    "F8_E4M3 (|x| > 448)": "F8_E4M3",
    "F8_E5M2 (|x| > 57344)": "F8_E5M2",
    "no range check": None,
}
_CLEAN_STYLE = (
    "background: #e8f5e9; color: #1b5e20; border: 1px solid #a5d6a7;"
    " border-radius: 4px; padding: 6px; font-size: 11pt;"
)
_FOUND_STYLE = (
    "background: #ffebee; color: #b71c1c; border: 1px solid #ef9a9a;"
    " border-radius: 4px; padding: 6px; font-size: 11pt;"
)
_NOTE_STYLE = (
    "background: #fff4e5; color: #7a4a00; border: 1px solid #f0c36d;"
    " border-radius: 4px; padding: 6px;"
)


class ScanPanel(CancellableWorkerView, QWidget):
    """Scan ``checkpoint``; results stay until the next scan."""

    finished = Signal()
    statuses_ready = Signal(dict)  # {tensor name: worst problem}
    tensor_activated = Signal(str)

    def __init__(self, checkpoint: Checkpoint, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.checkpoint = checkpoint
        self.report: ScanReport | None = None
        self.error: str | None = None
        self.cancelled = False
        self._worker: Worker | None = None
        self._disposed = False
        self._scanned = 0
        self.model = ScanTableModel(self)
        self.proxy = QSortFilterProxyModel(self)
        self.proxy.setSortRole(SortRole)
        self.proxy.setSourceModel(self.model)
        self.relay = ResultRelay(parent=self)
        self.relay.batch.connect(self._on_batch)

        self.target_box = QComboBox()
        self.target_box.addItems(list(TARGETS))
        self.target_box.setToolTip(
            "Values beyond this dtype's largest finite value become Inf when converted to it"
        )
        self.scan_button = QPushButton("Scan all tensors")
        self.scan_button.clicked.connect(self.start)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.clicked.connect(self.cancel)
        self.cancel_button.setVisible(False)
        self.progress = QProgressBar()
        self.progress.setRange(0, 1000)
        self.progress.setVisible(False)
        self.progress_label = QLabel()
        self.progress_label.setStyleSheet("color: #666;")
        bar = QHBoxLayout()
        bar.addWidget(QLabel("Extreme beyond"))
        bar.addWidget(self.target_box)
        bar.addWidget(self.scan_button)
        bar.addWidget(self.progress, 3)
        bar.addWidget(self.progress_label, 2)
        bar.addWidget(self.cancel_button)
        bar.addStretch(1)

        self.result_label = QLabel(
            f"Reads all {len(checkpoint.tensors):,} tensors "
            f"({human_bytes(checkpoint.total_bytes)}) once and lists those holding NaN, Inf, "
            "only zeros, or values too large for the chosen dtype."
        )
        self.result_label.setWordWrap(True)
        self.result_label.setTextFormat(Qt.TextFormat.RichText)
        self.result_label.setStyleSheet("color: #555; padding: 4px;")

        self.table = QTableView()
        self.table.setModel(self.proxy)
        self.table.setSortingEnabled(True)
        self.table.setAlternatingRowColors(True)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setTextElideMode(Qt.TextElideMode.ElideMiddle)
        self.table.setWordWrap(False)
        self.table.verticalHeader().setVisible(False)
        self.table.verticalHeader().setDefaultSectionSize(self.table.fontMetrics().height() + 8)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(ScanColumn.TENSOR, QHeaderView.ResizeMode.Stretch)
        for column, width in {
            ScanColumn.PROBLEMS: 110,
            ScanColumn.DTYPE: 60,
            ScanColumn.NAN: 56,
            ScanColumn.INF: 56,
            ScanColumn.ZEROS: 64,
            ScanColumn.MIN: 80,
            ScanColumn.MAX: 80,
            ScanColumn.BEYOND: 64,
        }.items():
            header.resizeSection(column, width)
        self.table.sortByColumn(ScanColumn.PROBLEMS, Qt.SortOrder.AscendingOrder)
        self.table.doubleClicked.connect(self._activated)
        self.table.setVisible(False)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addLayout(bar)
        layout.addWidget(self.result_label)
        layout.addWidget(self.table, 1)
        if checkpoint.root is None:
            self.scan_button.setEnabled(False)
            self.result_label.setStyleSheet(_NOTE_STYLE)
            self.result_label.setText(
                "This checkpoint is on the Hub: only its headers were read, so its values "
                "cannot be scanned. Download it (ckpt-gui download) and scan the local copy."
            )

    # -- public API ------------------------------------------------------------------------
    @property
    def is_busy(self) -> bool:
        return self._worker is not None

    @property
    def target_dtype(self) -> str | None:
        return TARGETS[self.target_box.currentText()]

    def set_target_dtype(self, dtype: str | None) -> None:
        for label, value in TARGETS.items():
            if value == dtype:
                self.target_box.setCurrentText(label)

    def start(self) -> None:
        """Scan in the background (ignored while a scan runs or for remote checkpoints)."""
        if self._worker is not None or self.checkpoint.root is None:
            return
        self.report, self.error, self.cancelled = None, None, False
        self._scanned = 0
        self.model.clear()
        self.model.target_label = self.target_dtype or "target"
        self.statuses_ready.emit({})
        worker = Worker(scan, self.checkpoint, self.target_dtype, on_tensor=self.relay.push)
        worker.yielded.connect(self._on_progress)
        worker.returned.connect(self._on_done)
        worker.errored.connect(self._on_failed)
        worker.aborted.connect(self._on_aborted)
        worker.finished.connect(self._on_finished)
        self._worker = worker
        self._set_running(True)
        self.result_label.setStyleSheet("color: #555; padding: 4px;")
        self.result_label.setText("Scanning…")
        worker.start()

    # -- worker slots ------------------------------------------------------------------------
    def _on_progress(self, progress: Progress) -> None:
        if self._disposed or not isinstance(progress, Progress):
            return
        fraction = progress.done / progress.total if progress.total else 0.0
        self.progress.setValue(int(fraction * 1000))
        self.progress_label.setText(
            f"{human_bytes(progress.done)} of {human_bytes(progress.total)}"
        )

    def _on_batch(self, results: list[TensorScan]) -> None:
        if self._disposed:
            return
        self._scanned += len(results)
        if self.model.add_results(results):
            self.table.setVisible(True)
            self._emit_statuses()
        self.result_label.setText(
            f"Scanning… {self._scanned:,} tensors checked, "
            f"<b>{self.model.rowCount():,}</b> flagged so far"
        )

    def _on_done(self, report: ScanReport) -> None:
        self.relay.flush()
        if self._disposed:
            return
        self.report = report
        self.model.add_results(report.flagged)
        self._emit_statuses()
        target = f"beyond {report.target_dtype} range" if report.target_dtype else "extreme"
        scanned = f"{len(report.tensors):,} tensors ({human_count(sum(t.count for t in report.tensors))} values)"
        skipped = f"; {len(report.skipped):,} skipped (empty or packed)" if report.skipped else ""
        if report.clean:
            self.table.setVisible(False)
            self.result_label.setStyleSheet(_CLEAN_STYLE)
            self.result_label.setText(
                f"✓ <b>Clean</b>: {scanned} scanned, no NaN, no Inf, no all-zero tensor, "
                f"nothing {target}{skipped}."
            )
            return
        counts = report.counts()
        found = ", ".join(
            f"{counts[p]} {PROBLEM_LABELS[p]}"
            for p in ("nan", "inf", "all_zero", "extreme")
            if counts[p]
        )
        self.table.setVisible(True)
        self.result_label.setStyleSheet(_FOUND_STYLE)
        self.result_label.setText(
            f"⚠ <b>{len(report.flagged):,} tensor(s) flagged</b> ({found}) "
            f"among {scanned}{skipped}. Double-click a row to show it in the tree."
        )

    def _on_failed(self, error: BaseException) -> None:
        message = describe_error(error)
        self.relay.flush()
        if self._disposed:
            return
        self.error = message
        self.result_label.setStyleSheet(_FOUND_STYLE)
        self.result_label.setText(f"Scan failed: {message}")

    def _on_aborted(self) -> None:
        self.relay.flush()
        if self._disposed:
            return
        self.result_label.setStyleSheet(_NOTE_STYLE)
        self.result_label.setText(
            f"Cancelled after {self._scanned:,} of {len(self.checkpoint.tensors):,} tensors; "
            f"{self.model.rowCount():,} flagged among those. The rest were not checked."
        )

    def _on_finished(self) -> None:
        self._worker = None
        if not self._disposed:
            self._set_running(False)
            self.finished.emit()

    # -- helpers --------------------------------------------------------------------------------
    def _set_running(self, running: bool) -> None:
        self.scan_button.setEnabled(not running)
        self.target_box.setEnabled(not running)
        self.progress.setVisible(running)
        self.progress.setValue(0)
        self.progress_label.setVisible(running)
        self.progress_label.setText("")
        self.cancel_button.setVisible(running)
        self.cancel_button.setEnabled(running)
        self.scan_button.setText("Scanning…" if running else "Scan again")

    def _emit_statuses(self) -> None:
        statuses = {}
        for scan_result in self.model.flagged():
            worst = worst_problem(scan_result)
            if worst is not None:
                statuses[scan_result.name] = worst
        self.statuses_ready.emit(statuses)

    def _activated(self, index: QModelIndex) -> None:
        source = self.proxy.mapToSource(index)
        if source.isValid():
            self.tensor_activated.emit(self.model.scan_at(source.row()).name)
