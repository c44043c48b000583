"""The diff view: two checkpoints compared, structure at once, values in the background.

Flow: a Worker opens B (and A unless the tab already has it) and computes the
structure diff, which is header-only; the table shows every tensor with its
structural status straight away. If both checkpoints are on local disk a second
Worker runs ``diff_values``; each pair's result reaches the table through a
``ResultRelay`` (throttled batches), the progress bar follows the bytes read,
and Cancel stops both readers. When the job ends the module aggregates fill the
Modules page and ``statuses_ready`` offers per-row statuses for A's tree.
"""

from __future__ import annotations

import html
from collections.abc import Callable

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QComboBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QProgressBar,
    QPushButton,
    QStackedWidget,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from ckpt_gui.core.diff.report import aggregate_modules
from ckpt_gui.core.diff.values import DiffReport, StructureDiff, TensorDiff, diff_values
from ckpt_gui.core.formatting import human_bytes
from ckpt_gui.core.jobs import Progress
from ckpt_gui.core.model import Checkpoint
from ckpt_gui.qt.diff.diff_model import (
    ONLY_IN_B,
    DiffColumn,
    DiffTableModel,
    KindRole,
    ModuleColumn,
    ModuleDiffModel,
    SortRole,
    SourceSortProxy,
)
from ckpt_gui.qt.diff.diff_view_parts import (
    DIFF_COLUMN_WIDTHS,
    SHOW_CHOICES,
    DiffFilterProxy,
    ElideRightDelegate,
    LoadedPair,
    load_pair,
    make_table,
    renames_html,
    short_name,
    sources_html,
    summary_html,
    tree_statuses,
    value_diff_blocker,
)
from ckpt_gui.qt.runtime.result_relay import ResultRelay
from ckpt_gui.qt.runtime.workers import Worker, describe_error
from ckpt_gui.qt.widgets.busy_page import busy_page
from ckpt_gui.qt.widgets.cancellable import CancellableWorkerView

# Up to this many rows the table re-sorts as results arrive; above, once at the end.
LIVE_SORT_ROWS = 20_000


class DiffView(CancellableWorkerView, QWidget):
    """Compare ``a_target`` with ``b_target``; pass ``a`` when A is already open in a tab."""

    finished = Signal()  # values done, cancelled, failed, or not possible
    statuses_ready = Signal(dict)  # {A's tensor name: "changed" | "only_in_a"} for A's tree

    def __init__(
        self,
        a_target: str,
        b_target: str,
        a: Checkpoint | None = None,
        loader: Callable[[], LoadedPair] | None = None,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.a_target, self.b_target = a_target, b_target
        self.title = f"{short_name(a_target)} ⇄ {short_name(b_target)}"
        self.pair: LoadedPair | None = None
        self.report: DiffReport | None = None
        self.results: dict[str, TensorDiff] = {}
        self.error: str | None = None
        self.cancelled = False
        self._worker: Worker | None = None
        self._disposed = False
        self.model = DiffTableModel(parent=self)
        self.proxy = DiffFilterProxy(self)
        self.proxy.setSourceModel(self.model)
        self.module_model = ModuleDiffModel(self)
        self.module_proxy = SourceSortProxy(self)
        self.module_proxy.setSortRole(SortRole)
        self.module_proxy.setSourceModel(self.module_model)
        self.relay = ResultRelay(parent=self)
        self.relay.batch.connect(self._on_batch)

        self._stack = QStackedWidget()
        self._stack.addWidget(self._loading_page())
        self._stack.addWidget(self._content_page())
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self._stack)

        worker = Worker(loader) if loader is not None else Worker(load_pair, a_target, b_target, a)
        worker.returned.connect(self._on_loaded)
        worker.errored.connect(self._on_load_failed)
        worker.finished.connect(self._on_worker_finished)
        self._worker = worker
        worker.start()

    # -- public API ----------------------------------------------------------------------
    @property
    def is_busy(self) -> bool:
        return self._worker is not None

    # -- pages -----------------------------------------------------------------------------
    def _loading_page(self) -> QWidget:
        self.loading_label = QLabel(f"Opening {html.escape(self.b_target)} and matching tensors…")
        page, self._busy_bar = busy_page(self.loading_label)
        return page

    def _content_page(self) -> QWidget:
        page = QWidget()
        layout = QVBoxLayout(page)
        layout.setContentsMargins(8, 6, 8, 4)
        self.sources_label = QLabel()
        self.sources_label.setTextFormat(Qt.TextFormat.RichText)
        self.sources_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.sources_label.setWordWrap(True)
        layout.addWidget(self.sources_label)
        self.summary_label = QLabel()
        self.summary_label.setTextFormat(Qt.TextFormat.RichText)
        self.summary_label.setWordWrap(True)
        self.summary_label.setStyleSheet("font-size: 11pt; padding: 2px 0;")
        layout.addWidget(self.summary_label)
        self.renames_label = QLabel()
        self.renames_label.setTextFormat(Qt.TextFormat.RichText)
        self.renames_label.setWordWrap(True)
        layout.addWidget(self.renames_label)
        self.message_label = QLabel()
        self.message_label.setWordWrap(True)
        self.message_label.setStyleSheet(
            "background: #fff4e5; color: #7a4a00; border: 1px solid #f0c36d;"
            " border-radius: 4px; padding: 6px;"
        )
        self.message_label.setVisible(False)
        layout.addWidget(self.message_label)

        progress_row = QHBoxLayout()
        self.progress = QProgressBar()
        self.progress.setRange(0, 1000)
        self.progress.setTextVisible(True)
        self.progress_label = QLabel()
        self.progress_label.setStyleSheet("color: #666;")
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.clicked.connect(self.cancel)
        progress_row.addWidget(self.progress, 2)
        progress_row.addWidget(self.progress_label, 3)
        progress_row.addWidget(self.cancel_button)
        self.progress_row = QWidget()
        self.progress_row.setLayout(progress_row)
        progress_row.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.progress_row)

        filter_row = QHBoxLayout()
        self.filter_edit = QLineEdit()
        self.filter_edit.setPlaceholderText("Filter by name…")
        self.filter_edit.setClearButtonEnabled(True)
        self.show_box = QComboBox()
        self.show_box.addItems(list(SHOW_CHOICES))
        self.count_label = QLabel()
        self.count_label.setStyleSheet("color: #777;")
        filter_row.addWidget(QLabel("Show"))
        filter_row.addWidget(self.show_box)
        filter_row.addWidget(self.filter_edit, 1)
        filter_row.addWidget(self.count_label)
        layout.addLayout(filter_row)
        self.filter_edit.textChanged.connect(self._apply_filter)
        self.show_box.currentIndexChanged.connect(self._apply_filter)

        self.table = make_table(self.proxy)
        self.table.sortByColumn(DiffColumn.REL_L2, Qt.SortOrder.DescendingOrder)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(DiffColumn.NAME, QHeaderView.ResizeMode.Stretch)
        self.table.setItemDelegateForColumn(DiffColumn.NAME_B, ElideRightDelegate(self.table))
        for column, width in DIFF_COLUMN_WIDTHS.items():
            header.resizeSection(column, width)
        self.module_table = make_table(self.module_proxy)
        self.module_table.sortByColumn(ModuleColumn.REL_L2, Qt.SortOrder.DescendingOrder)
        self.module_table.horizontalHeader().setSectionResizeMode(
            ModuleColumn.MODULE, QHeaderView.ResizeMode.Stretch
        )
        self.pages = QTabWidget()
        self.pages.setDocumentMode(True)
        self.pages.addTab(self.table, "Tensors")
        self.pages.addTab(self.module_table, "Modules")
        self.pages.setTabEnabled(1, False)
        layout.addWidget(self.pages, 1)
        return page

    # -- loading -------------------------------------------------------------------------------
    def _on_loaded(self, pair: LoadedPair) -> None:
        if self._disposed:
            return
        self.pair = pair
        self.model.set_structure(pair.structure)
        self._show_sources(pair)
        self._show_renames(pair.structure)
        self._stack.setCurrentIndex(1)
        blocker = value_diff_blocker(pair.a, pair.b)
        if blocker:
            self.model.mark_unfinished()
            self.model.resort()
            self._show_message(blocker)
            self.progress_row.setVisible(False)
            self._update_summary()
            self._emit_statuses()
            return
        self._update_summary()
        self._apply_filter()

    def _on_load_failed(self, error: BaseException) -> None:
        message = describe_error(error)
        if self._disposed:
            return
        self.error = message
        self.loading_label.setText(
            f"<b>Could not compare</b><br><span style='color:#c62828'>{html.escape(message)}</span>"
        )
        self.loading_label.setTextFormat(Qt.TextFormat.RichText)
        self.loading_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self._busy_bar.setVisible(False)

    def _on_worker_finished(self) -> None:
        self._worker = None
        if self._disposed:
            return
        if self.pair is not None and self.report is None and not self._values_started():
            if value_diff_blocker(self.pair.a, self.pair.b):
                self.finished.emit()
            else:
                self._start_values()
        elif self.error is not None:
            self.finished.emit()

    def _values_started(self) -> bool:
        return bool(getattr(self, "_values_begun", False))

    # -- values ----------------------------------------------------------------------------------
    def _start_values(self) -> None:
        assert self.pair is not None
        self._values_begun = True
        pair = self.pair
        worker = Worker(diff_values, pair.a, pair.b, pair.structure, on_tensor=self.relay.push)
        worker.yielded.connect(self._on_progress)
        worker.returned.connect(self._on_values_done)
        worker.errored.connect(self._on_values_failed)
        worker.aborted.connect(self._on_values_aborted)
        worker.finished.connect(self._on_values_finished)
        self._worker = worker
        self.progress_label.setText("Comparing values…")
        worker.start()

    def _on_progress(self, progress: Progress) -> None:
        if self._disposed or not isinstance(progress, Progress):
            return
        fraction = progress.done / progress.total if progress.total else 0.0
        self.progress.setValue(int(fraction * 1000))
        self.progress.setFormat(f"{fraction:.0%}")
        self.progress_label.setText(
            f"{human_bytes(progress.done)} of {human_bytes(progress.total)} read"
        )

    def _on_batch(self, results: list[TensorDiff]) -> None:
        if self._disposed:
            return
        for result in results:
            self.results[result.key] = result
        self.model.apply_results(results)
        if self.model.rowCount() <= LIVE_SORT_ROWS:
            self.model.resort()
        self._update_summary()

    def _on_values_done(self, report: DiffReport) -> None:
        self.relay.flush()
        if self._disposed:
            return
        self.report = report
        self.model.apply_results(report.tensors)
        self.model.resort()
        self.module_model.set_modules(report.modules)
        self.pages.setTabEnabled(1, True)
        self.progress_row.setVisible(False)
        self._update_summary()
        self._emit_statuses()

    def _on_values_failed(self, error: BaseException) -> None:
        message = describe_error(error)
        self.relay.flush()
        if self._disposed:
            return
        self.error = message
        self._show_message(f"Comparing values stopped: {message}")
        self._partial_end()

    def _on_values_aborted(self) -> None:
        self.relay.flush()
        if self._disposed:
            return
        done = len(self.results)
        self._show_message(
            f"Cancelled: {done:,} tensor pair(s) were compared before you stopped; "
            "the rest are marked “not compared”. Module figures cover the compared pairs only."
        )
        self._partial_end()

    def _partial_end(self) -> None:
        self.model.mark_unfinished()
        self.model.resort()
        ordered = tuple(self.results.values())
        self.module_model.set_modules(aggregate_modules(ordered))
        self.pages.setTabEnabled(1, True)
        self.progress_row.setVisible(False)
        self._update_summary()
        self._emit_statuses()

    def _on_values_finished(self) -> None:
        self._worker = None
        if not self._disposed:
            self.finished.emit()

    # -- presentation -------------------------------------------------------------------------------
    def _show_sources(self, pair: LoadedPair) -> None:
        self.sources_label.setText(sources_html(pair))

    def _show_renames(self, structure: StructureDiff) -> None:
        if not structure.renames:
            self.renames_label.setVisible(False)
            return
        self.renames_label.setText(renames_html(structure))
        self.renames_label.setVisible(True)

    def _show_message(self, text: str) -> None:
        self.message_label.setText(text)
        self.message_label.setVisible(True)

    def _update_summary(self) -> None:
        dtype_changed = len(self.pair.structure.dtype_changed) if self.pair else 0
        self.summary_label.setText(summary_html(self.model.counts(), dtype_changed, self.report))
        self._update_count()

    def _apply_filter(self) -> None:
        self.proxy.set_filter(SHOW_CHOICES[self.show_box.currentText()], self.filter_edit.text())
        self._update_count()

    def _update_count(self) -> None:
        shown, total = self.proxy.rowCount(), self.model.rowCount()
        self.count_label.setText(
            f"{shown:,} of {total:,} rows" if shown != total else f"{total:,} rows"
        )

    def _emit_statuses(self) -> None:
        """Statuses for A's tree: what differs in B, by A's tensor name."""
        self.statuses_ready.emit(tree_statuses(self.model.rows()))

    def kind_of(self, key: str) -> str | None:
        """The row kind shown for A's tensor ``key`` (for tests and tools)."""
        for row in range(self.model.rowCount()):
            entry = self.model.row(row)
            if entry.key == key and entry.kind != ONLY_IN_B:
                return str(self.model.data(self.model.index(row, 0), KindRole))
        return None
