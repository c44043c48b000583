"""Table model over a JobQueue: one row per export job, newest last."""

from __future__ import annotations

import enum
from typing import Any

from PySide6.QtCore import QAbstractTableModel, QModelIndex, QObject, QPersistentModelIndex, Qt
from PySide6.QtGui import QBrush, QColor

from ckpt_gui.core.formatting import human_bytes
from ckpt_gui.qt.export.job_queue import ExportJob, JobQueue, JobState

ModelIndex = QModelIndex | QPersistentModelIndex

# The job itself, for views and delegates (the progress bar reads the fraction from it).
JobRole = Qt.ItemDataRole.UserRole + 1
FractionRole = Qt.ItemDataRole.UserRole + 2

STATE_COLOURS = {
    JobState.DONE: "#2e7d32",
    JobState.FAILED: "#c62828",
    JobState.CANCELLED: "#777777",
    JobState.CANCELLING: "#777777",
}


class JobColumn(enum.IntEnum):
    JOB = 0
    STATUS = 1
    PROGRESS = 2
    SPEED = 3
    ETA = 4
    ACTIONS = 5


HEADERS = ("Job", "Status", "Progress", "Speed", "ETA", "")


def format_rate(bytes_per_second: float | None) -> str:
    """Decimal megabytes per second, as disks are rated."""
    if bytes_per_second is None:
        return ""
    if bytes_per_second >= 1e9:
        return f"{bytes_per_second / 1e9:.2f} GB/s"
    return f"{bytes_per_second / 1e6:.1f} MB/s"


def format_eta(seconds: float | None) -> str:
    if seconds is None:
        return ""
    seconds = round(seconds)
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def status_text(job: ExportJob) -> str:
    """One line: what the job is doing, or how it ended."""
    if job.state is JobState.RUNNING:
        return job.message or "Running"
    if job.state is JobState.DONE and job.result is not None:
        result = job.result
        text = (
            f"Done: {len(result.files)} files, {human_bytes(result.bytes_written)} "
            f"in {result.seconds:.1f} s"
        )
        if result.warnings:
            text += " · ⚠ " + "; ".join(result.warnings)
        return text
    if job.state is JobState.FAILED:
        return f"Failed: {job.error}"
    if job.state is JobState.CANCELLED:
        return "Cancelled (nothing written)" if job.started_at else "Cancelled before start"
    return str(job.state.value)


def details_text(job: ExportJob) -> str:
    """Everything about a job, for the tooltip and the dock's details line."""
    lines = [job.title, f"Output: {job.output}", status_text(job)]
    if job.result is not None:
        for name, count in sorted(job.result.overflow.items())[:20]:
            lines.append(f"  {name}: {count:,} values overflowed")
    return "\n".join(lines)


class JobsModel(QAbstractTableModel):
    """Rows follow ``queue.jobs``; updates arrive throttled from the queue."""

    def __init__(self, queue: JobQueue, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.queue = queue
        self._jobs: list[ExportJob] = list(queue.jobs)
        queue.job_added.connect(self._added)
        queue.job_changed.connect(self._changed)
        queue.job_removed.connect(self._removed)

    def job_at(self, row: int) -> ExportJob | None:
        return self._jobs[row] if 0 <= row < len(self._jobs) else None

    def row_of(self, job: ExportJob) -> int:
        return self._jobs.index(job) if job in self._jobs else -1

    # -- Qt model API -------------------------------------------------------------------------
    def rowCount(self, parent: ModelIndex = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self._jobs)

    def columnCount(self, parent: ModelIndex = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(HEADERS)

    def headerData(
        self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole
    ) -> Any:
        if (
            orientation == Qt.Orientation.Horizontal
            and role == Qt.ItemDataRole.DisplayRole
            and 0 <= section < len(HEADERS)
        ):
            return HEADERS[section]
        return None

    def data(self, index: ModelIndex, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid():
            return None
        job = self.job_at(index.row())
        if job is None:
            return None
        column = index.column()
        if role == Qt.ItemDataRole.DisplayRole:
            return self._display(job, column)
        if role == Qt.ItemDataRole.ToolTipRole:
            return details_text(job)
        if role == Qt.ItemDataRole.ForegroundRole and column == JobColumn.STATUS:
            colour = STATE_COLOURS.get(job.state)
            if job.state is JobState.DONE and job.result is not None and job.result.warnings:
                colour = "#b26a00"
            return QBrush(QColor(colour)) if colour else None
        if role == JobRole:
            return job
        if role == FractionRole and column == JobColumn.PROGRESS:
            return job.fraction
        if role == Qt.ItemDataRole.TextAlignmentRole and column in (
            JobColumn.SPEED,
            JobColumn.ETA,
        ):
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        return None

    def _display(self, job: ExportJob, column: int) -> str:
        if column == JobColumn.JOB:
            return job.title
        if column == JobColumn.STATUS:
            return status_text(job)
        if column == JobColumn.PROGRESS:
            return f"{job.fraction * 100:.0f}%"
        if column == JobColumn.SPEED:
            return format_rate(job.throughput()) if job.started_at else ""
        if column == JobColumn.ETA:
            return format_eta(job.eta_seconds())
        return ""

    # -- queue updates ------------------------------------------------------------------------
    def _added(self, job: ExportJob) -> None:
        row = len(self._jobs)
        self.beginInsertRows(QModelIndex(), row, row)
        self._jobs.append(job)
        self.endInsertRows()

    def _changed(self, job: ExportJob) -> None:
        row = self.row_of(job)
        if row >= 0:
            self.dataChanged.emit(self.index(row, 0), self.index(row, len(HEADERS) - 1))

    def _removed(self, job: ExportJob) -> None:
        row = self.row_of(job)
        if row >= 0:
            self.beginRemoveRows(QModelIndex(), row, row)
            del self._jobs[row]
            self.endRemoveRows()
