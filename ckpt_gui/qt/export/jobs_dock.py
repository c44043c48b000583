"""The Jobs dock: every export with its progress bar, speed, ETA, Cancel and result actions."""

from __future__ import annotations

from PySide6.QtCore import QModelIndex, QPersistentModelIndex, QRect, Qt, QUrl, Signal
from PySide6.QtGui import QDesktopServices, QPainter
from PySide6.QtWidgets import (
    QAbstractItemView,
    QApplication,
    QDockWidget,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QStyle,
    QStyledItemDelegate,
    QStyleOptionProgressBar,
    QStyleOptionViewItem,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from ckpt_gui.qt.export.job_queue import ExportJob, JobQueue, JobState
from ckpt_gui.qt.export.jobs_model import FractionRole, JobColumn, JobsModel, details_text


class ProgressDelegate(QStyledItemDelegate):
    """Paints the Progress column as a progress bar."""

    def paint(
        self,
        painter: QPainter,
        option: QStyleOptionViewItem,
        index: QModelIndex | QPersistentModelIndex,
    ) -> None:
        fraction = index.data(FractionRole)
        if not isinstance(fraction, float):
            super().paint(painter, option, index)
            return
        bar = QStyleOptionProgressBar()
        rect = QRect(option.rect)
        bar.rect = rect.adjusted(3, 3, -3, -3)
        bar.minimum = 0
        bar.maximum = 1000
        bar.progress = int(fraction * 1000)
        bar.text = f"{fraction * 100:.0f}%"
        bar.textVisible = True
        bar.state = QStyle.StateFlag.State_Enabled | QStyle.StateFlag.State_Horizontal
        style = QApplication.style()
        style.drawControl(QStyle.ControlElement.CE_ProgressBar, bar, painter)


class JobActions(QWidget):
    """The buttons of one row: Cancel while it may run; Open folder / Open in new tab after."""

    def __init__(self, job: ExportJob, dock: JobsDock) -> None:
        super().__init__()
        self.job = job
        layout = QHBoxLayout(self)
        layout.setContentsMargins(2, 0, 2, 0)
        layout.setSpacing(4)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.clicked.connect(lambda: dock.queue.cancel(job))
        self.folder_button = QPushButton("Open folder")
        self.folder_button.clicked.connect(lambda: dock.open_folder(job))
        self.tab_button = QPushButton("Open in new tab")
        self.tab_button.clicked.connect(lambda: dock.open_in_tab_requested.emit(str(job.output)))
        for button in (self.cancel_button, self.folder_button, self.tab_button):
            button.setAutoDefault(False)
            layout.addWidget(button)
        layout.addStretch(1)
        self.refresh()

    @staticmethod
    def preferred_width() -> int:
        """Room for Open folder + Open in new tab, the widest pair of buttons."""
        probe = QPushButton("Open folder")
        other = QPushButton("Open in new tab")
        return probe.sizeHint().width() + other.sizeHint().width() + 16

    def refresh(self) -> None:
        state = self.job.state
        self.cancel_button.setVisible(state in (JobState.QUEUED, JobState.RUNNING))
        done = state is JobState.DONE
        self.folder_button.setVisible(done)
        self.tab_button.setVisible(done)


class JobsDock(QDockWidget):
    """Dock listing the queue's jobs; ``open_in_tab_requested(path)`` asks for a tab."""

    open_in_tab_requested = Signal(str)

    def __init__(self, queue: JobQueue, parent: QWidget | None = None) -> None:
        super().__init__("Jobs", parent)
        self.setObjectName("JobsDock")
        self.queue = queue
        self.model = JobsModel(queue, self)
        self.view = QTableView()
        self.view.setModel(self.model)
        self.view.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.view.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.view.setItemDelegateForColumn(JobColumn.PROGRESS, ProgressDelegate(self.view))
        self.view.setTextElideMode(Qt.TextElideMode.ElideMiddle)
        self.view.setWordWrap(False)
        self.view.verticalHeader().setVisible(False)
        self.view.verticalHeader().setDefaultSectionSize(30)
        header = self.view.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        header.setStretchLastSection(False)
        metrics = self.view.fontMetrics()
        for column, sample in (
            (JobColumn.JOB, "Convert → BF16: llama-sharded → llama-sharded-bf16"),
            (JobColumn.STATUS, "Done: 5 files, 25.3 MiB in 0.4 s"),
            (JobColumn.PROGRESS, "100%" + " " * 24),
            (JobColumn.SPEED, "1234.5 MB/s"),
            (JobColumn.ETA, "00:00"),
        ):
            header.resizeSection(column, metrics.horizontalAdvance(sample) + 16)
        # The status line (progress message, result, error) gets the spare width.
        header.setSectionResizeMode(JobColumn.STATUS, QHeaderView.ResizeMode.Stretch)
        header.resizeSection(JobColumn.ACTIONS, JobActions.preferred_width())

        self.details = QLabel()
        self.details.setWordWrap(True)
        self.details.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.clear_button = QPushButton("Clear finished")
        self.clear_button.clicked.connect(queue.remove_finished)
        bottom = QHBoxLayout()
        bottom.addWidget(self.details, 1)
        bottom.addWidget(self.clear_button, 0, Qt.AlignmentFlag.AlignTop)

        body = QWidget()
        layout = QVBoxLayout(body)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(self.view, 1)
        layout.addLayout(bottom)
        self.setWidget(body)

        self._actions: dict[int, JobActions] = {}
        self.model.rowsInserted.connect(self._rows_inserted)
        queue.job_changed.connect(self._job_changed)
        queue.job_removed.connect(lambda job: self._actions.pop(job.id, None))
        self.view.selectionModel().currentRowChanged.connect(lambda *_: self._show_details())

    # -- public ---------------------------------------------------------------------------------
    def actions_for(self, job: ExportJob) -> JobActions | None:
        return self._actions.get(job.id)

    def open_folder(self, job: ExportJob) -> None:
        QDesktopServices.openUrl(QUrl.fromLocalFile(str(job.output)))

    def select(self, job: ExportJob) -> None:
        row = self.model.row_of(job)
        if row >= 0:
            self.view.selectRow(row)

    # -- updates --------------------------------------------------------------------------------
    def _rows_inserted(self, _parent: QModelIndex, first: int, last: int) -> None:
        for row in range(first, last + 1):
            job = self.model.job_at(row)
            if job is None:
                continue
            actions = JobActions(job, self)
            self._actions[job.id] = actions
            self.view.setIndexWidget(self.model.index(row, JobColumn.ACTIONS), actions)
            self.select(job)
        self.view.scrollToBottom()

    def _job_changed(self, job: ExportJob) -> None:
        actions = self._actions.get(job.id)
        if actions is not None:
            actions.refresh()
        self._show_details()

    def _show_details(self) -> None:
        row = self.view.currentIndex().row()
        job = self.model.job_at(row)
        self.details.setText(details_text(job) if job is not None else "")
