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
from typing import Any, NamedTuple

from PySide6.QtCore import QModelIndex, QPersistentModelIndex, QSortFilterProxyModel, Qt, Signal
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QProgressBar,
    QPushButton,
    QStackedWidget,
    QStyledItemDelegate,
    QStyleOptionViewItem,
    QTableView,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from ckpt_gui.core.diff import DiffReport, StructureDiff, TensorDiff, diff_structure, diff_values
from ckpt_gui.core.diff_report import aggregate_modules
from ckpt_gui.core.formatting import human_bytes
from ckpt_gui.core.jobs import Progress
from ckpt_gui.core.model import Checkpoint
from ckpt_gui.core.targets import open_target
from ckpt_gui.qt.models.diff_model import (
    CHANGED,
    EQUAL_VALUES,
    IDENTICAL,
    KIND_COLORS,
    NOT_COMPARED,
    ONLY_IN_A,
    ONLY_IN_B,
    SHAPE_CHANGED,
    DiffColumn,
    DiffTableModel,
    KindRole,
    ModuleColumn,
    ModuleDiffModel,
    SortRole,
    SourceSortProxy,
)
from ckpt_gui.qt.result_relay import ResultRelay
from ckpt_gui.qt.workers import Worker

# "Show" choices: label -> row kinds shown (None: all).
SHOW_CHOICES: dict[str, frozenset[str] | None] = {
    "All tensors": None,
    "Differences": frozenset({CHANGED, NOT_COMPARED, ONLY_IN_A, ONLY_IN_B, SHAPE_CHANGED}),
    "Changed values": frozenset({CHANGED}),
    "Identical": frozenset({IDENTICAL, EQUAL_VALUES}),
    "Only in A": frozenset({ONLY_IN_A}),
    "Only in B": frozenset({ONLY_IN_B}),
    "Shape changed": frozenset({SHAPE_CHANGED}),
}


# Up to this many rows the table re-sorts as results arrive; above, once at the end.
LIVE_SORT_ROWS = 20_000


class LoadedPair(NamedTuple):
    a: Checkpoint
    b: Checkpoint
    structure: StructureDiff


def load_pair(a_target: str, b_target: str, a: Checkpoint | None = None) -> LoadedPair:
    """Runs on a Worker: open what is not open yet, then the (header-only) structure diff."""
    a = a if a is not None else open_target(a_target)
    b = open_target(b_target)
    return LoadedPair(a, b, diff_structure(a, b))


def value_diff_blocker(a: Checkpoint, b: Checkpoint) -> str:
    """Why values cannot be compared ("" when they can)."""
    remote = [c.source for c in (a, b) if c.root is None]
    if not remote:
        return ""
    which = " and ".join(remote)
    return (
        f"{which} {'is' if len(remote) == 1 else 'are'} on the Hub: only the headers were read, "
        "so the structure is compared but the values cannot be. Download the checkpoint "
        "(ckpt-gui download) and compare the local copy to see value differences."
    )


class _ElideRightDelegate(QStyledItemDelegate):
    """B's name differs from A's at the start (the renamed prefix): keep that visible."""

    def initStyleOption(self, option: QStyleOptionViewItem, index: QModelIndex) -> None:  # type: ignore[override]
        super().initStyleOption(option, index)
        option.textElideMode = Qt.TextElideMode.ElideRight


class DiffFilterProxy(SourceSortProxy):
    """Filter by row kind (the Show box) and by a name substring."""

    def __init__(self, parent: Any = None) -> None:
        super().__init__(parent)
        self.kinds: frozenset[str] | None = None
        self.text = ""
        self.setSortRole(SortRole)

    def set_filter(self, kinds: frozenset[str] | None, text: str) -> None:
        self.beginFilterChange()
        self.kinds, self.text = kinds, text.strip().lower()
        self.endFilterChange()

    def filterAcceptsRow(
        self, source_row: int, source_parent: QModelIndex | QPersistentModelIndex
    ) -> bool:
        model = self.sourceModel()
        if not isinstance(model, DiffTableModel):
            return True
        row = model.row(source_row)
        if self.kinds is not None and row.kind not in self.kinds:
            return False
        return not self.text or self.text in row.key.lower() or self.text in row.key_b.lower()


class DiffView(QWidget):
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
        self.title = f"{_short(a_target)} ⇄ {_short(b_target)}"
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

    def cancel(self) -> None:
        """Stop the value comparison (results so far stay)."""
        if self._worker is not None:
            self.cancelled = True
            self._worker.quit()
            self.cancel_button.setEnabled(False)
            self.progress_label.setText("Cancelling…")

    def dispose(self) -> None:
        """Called when the tab closes: stop background work, drop late results."""
        self._disposed = True
        if self._worker is not None:
            self._worker.quit()

    # -- pages -----------------------------------------------------------------------------
    def _loading_page(self) -> QWidget:
        page = QWidget()
        layout = QVBoxLayout(page)
        layout.addStretch(1)
        self.loading_label = QLabel(f"Opening {html.escape(self.b_target)} and matching tensors…")
        self.loading_label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.loading_label.setWordWrap(True)
        layout.addWidget(self.loading_label)
        busy = self._busy_bar = QProgressBar()
        busy.setRange(0, 0)
        busy.setMaximumWidth(320)
        row = QHBoxLayout()
        row.addStretch(1)
        row.addWidget(busy)
        row.addStretch(1)
        layout.addLayout(row)
        layout.addStretch(2)
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

        self.table = _table(self.proxy)
        self.table.sortByColumn(DiffColumn.REL_L2, Qt.SortOrder.DescendingOrder)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(DiffColumn.NAME, QHeaderView.ResizeMode.Stretch)
        self.table.setItemDelegateForColumn(DiffColumn.NAME_B, _ElideRightDelegate(self.table))
        widths = {
            DiffColumn.STATUS: 112,
            DiffColumn.NAME_B: 150,
            DiffColumn.SHAPE: 110,
            DiffColumn.DTYPE: 90,
            DiffColumn.PARAMETERS: 84,
            DiffColumn.MAX_ABS: 84,
            DiffColumn.REL_L2: 84,
            DiffColumn.COSINE: 110,
        }
        for column, width in widths.items():
            header.resizeSection(column, width)
        self.module_table = _table(self.module_proxy)
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

    def _on_load_failed(self, message: str) -> None:
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

    def _on_values_failed(self, message: str) -> None:
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
        def line(letter: str, checkpoint: Checkpoint) -> str:
            return (
                f"<b>{letter}</b>&nbsp; {html.escape(checkpoint.source)} "
                f"<span style='color:#777'>· {html.escape(checkpoint.format)} · "
                f"{len(checkpoint.tensors):,} tensors · {human_bytes(checkpoint.total_bytes)}</span>"
            )

        self.sources_label.setText(line("A", pair.a) + "<br>" + line("B", pair.b))

    def _show_renames(self, structure: StructureDiff) -> None:
        if not structure.renames:
            self.renames_label.setVisible(False)
            return
        parts = [
            f"<code>{html.escape(r.a_prefix or '(none)')}</code> → "
            f"<code>{html.escape(r.b_prefix or '(none)')}</code> ({r.count:,} tensors)"
            for r in structure.renames
        ]
        self.renames_label.setText(
            "<span style='color:#1565c0'><b>Renamed keys matched:</b></span> " + ", ".join(parts)
        )
        self.renames_label.setVisible(True)

    def _show_message(self, text: str) -> None:
        self.message_label.setText(text)
        self.message_label.setVisible(True)

    def _update_summary(self) -> None:
        counts = self.model.counts()
        identical = counts[IDENTICAL] + counts[EQUAL_VALUES]
        compared = identical + counts[CHANGED] + counts[NOT_COMPARED]
        pairs = compared + counts["pending"]

        def chip(kind: str, text: str, count: int) -> str:
            color = KIND_COLORS[kind].name() if count else "#9e9e9e"
            return f"<span style='color:{color}'><b>{count:,}</b> {text}</span>"

        parts = [
            chip(CHANGED, "changed", counts[CHANGED]),
            chip(IDENTICAL, "identical", identical),
            chip(ONLY_IN_A, "only in A", counts[ONLY_IN_A]),
            chip(ONLY_IN_B, "only in B", counts[ONLY_IN_B]),
            chip(SHAPE_CHANGED, "shape changed", counts[SHAPE_CHANGED]),
        ]
        dtype_changed = len(self.pair.structure.dtype_changed) if self.pair else 0
        if dtype_changed:
            parts.append(chip(SHAPE_CHANGED, "dtype changed", dtype_changed))
        if counts[NOT_COMPARED]:
            parts.append(chip(NOT_COMPARED, "not compared", counts[NOT_COMPARED]))
        verdict = ""
        if self.report is not None:
            verdict = (
                "<span style='color:#d84315'><b>Different</b></span> · "
                if self.report.different
                else "<span style='color:#2e7d32'><b>Identical</b></span> · "
            )
        pending = f" · {counts['pending']:,} of {pairs:,} pairs to go" if counts["pending"] else ""
        self.summary_label.setText(verdict + " · ".join(parts) + pending)
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
        statuses: dict[str, str] = {}
        for row in self.model.rows():
            if row.kind in (CHANGED, SHAPE_CHANGED):
                statuses[row.key] = "changed"
            elif row.kind == ONLY_IN_A:
                statuses[row.key] = "only_in_a"
        self.statuses_ready.emit(statuses)

    def kind_of(self, key: str) -> str | None:
        """The row kind shown for A's tensor ``key`` (for tests and tools)."""
        for row in range(self.model.rowCount()):
            entry = self.model.row(row)
            if entry.key == key and entry.kind != ONLY_IN_B:
                return str(self.model.data(self.model.index(row, 0), KindRole))
        return None


def _table(model: QSortFilterProxyModel) -> QTableView:
    table = QTableView()
    table.setModel(model)
    table.setSortingEnabled(True)
    table.setAlternatingRowColors(True)
    table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
    table.setWordWrap(False)
    table.setTextElideMode(Qt.TextElideMode.ElideMiddle)
    table.verticalHeader().setVisible(False)
    table.verticalHeader().setDefaultSectionSize(table.fontMetrics().height() + 8)
    table.horizontalHeader().setHighlightSections(False)
    return table


def _short(target: str) -> str:
    from pathlib import Path

    name = Path(target).name or target
    return name if len(name) <= 28 else name[:12] + "…" + name[-12:]
