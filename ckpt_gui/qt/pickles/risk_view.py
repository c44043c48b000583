"""What a pickle checkpoint imports: in the summary, and in place of a refused file.

* ``PickleGlobalsModel``: a table of globals (refused first) with the reason.
* ``PickleGlobalsToggle``: the summary header's "Pickle globals (N, …)" entry that
  unfolds the table for a loaded pickle checkpoint (``Checkpoint.pickle_globals``).
* ``UnsafePickleView``: shown in a tab whose file was refused (UnsafePickleError).
  It runs ``pickle_risk(target)`` on a Worker (the opcodes are walked, nothing is
  unpickled) and lists every global per file, saying plainly that the file was not
  loaded and nothing in it was executed.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from enum import IntEnum
from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QBrush, QColor, QFont
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHeaderView,
    QLabel,
    QTableView,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from ckpt_gui.core.model import PickleGlobal
from ckpt_gui.core.pickles.risk import PickleRiskReport, pickle_risk
from ckpt_gui.qt.models.table_base import RowTableModel
from ckpt_gui.qt.runtime.workers import Worker, describe_error

_REFUSED = QColor(198, 40, 40)
_ALLOWED = QColor(46, 125, 50)


class GlobalColumn(IntEnum):
    VERDICT = 0
    NAME = 1
    REASON = 2
    FILE = 3


GLOBAL_HEADERS = ("Safe loader", "Global", "Why", "File")


class PickleGlobalsModel(RowTableModel):
    """Rows of ``(file, PickleGlobal)``, refused globals first, then in pickle order."""

    headers = GLOBAL_HEADERS

    def __init__(self, parent: Any = None) -> None:
        super().__init__(parent)
        self._rows: list[tuple[str, PickleGlobal]] = []
        self._bold = QFont()
        self._bold.setBold(True)

    def set_globals(self, rows: Sequence[tuple[str, PickleGlobal]]) -> None:
        self.beginResetModel()
        # Stable sort: refused first, the pickle's own order otherwise.
        self._rows = sorted(rows, key=lambda row: row[1].allowed)
        self.endResetModel()

    def global_at(self, row: int) -> PickleGlobal:
        return self._rows[row][1]

    def _cell(self, row: tuple[str, PickleGlobal], column: int, role: int) -> Any:
        file, entry = row
        if role == Qt.ItemDataRole.DisplayRole:
            if column == GlobalColumn.VERDICT:
                return "allowed" if entry.allowed else "REFUSED"
            if column == GlobalColumn.NAME:
                return entry.name
            if column == GlobalColumn.REASON:
                return entry.reason or ("on the weights-only allow list" if entry.allowed else "")
            return file
        if role == Qt.ItemDataRole.ForegroundRole and column == GlobalColumn.VERDICT:
            return QBrush(_ALLOWED if entry.allowed else _REFUSED)
        if role == Qt.ItemDataRole.FontRole and not entry.allowed and column < GlobalColumn.REASON:
            return self._bold
        if role == Qt.ItemDataRole.ToolTipRole:
            return f"{entry.name}\n{entry.reason}" if entry.reason else entry.name
        return None


def globals_table(model: PickleGlobalsModel, show_file: bool) -> QTableView:
    table = QTableView()
    table.setModel(model)
    table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
    table.setAlternatingRowColors(True)
    table.setWordWrap(False)
    table.verticalHeader().setVisible(False)
    table.verticalHeader().setDefaultSectionSize(table.fontMetrics().height() + 8)
    header = table.horizontalHeader()
    header.setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
    header.resizeSection(GlobalColumn.VERDICT, 90)
    header.resizeSection(GlobalColumn.NAME, 300)
    header.setSectionResizeMode(GlobalColumn.REASON, QHeaderView.ResizeMode.Stretch)
    table.setColumnHidden(GlobalColumn.FILE, not show_file)
    return table


def fit_rows(table: QTableView, rows: int, most: int = 14) -> None:
    """Make the table as tall as its rows (up to ``most``), so no empty block shows."""
    height = table.horizontalHeader().height() + 2 * table.frameWidth()
    height += table.verticalHeader().defaultSectionSize() * max(1, min(rows, most))
    table.setMaximumHeight(height)


def globals_summary(pickle_globals: Sequence[PickleGlobal]) -> str:
    refused = sum(not g.allowed for g in pickle_globals)
    count = len(pickle_globals)
    verdict = f"{refused} refused" if refused else "all allowed by the safe loader"
    return f"Pickle globals ({count}, {verdict})"


class PickleGlobalsToggle(QWidget):
    """Summary entry: a toggle with the count that unfolds the table of globals."""

    def __init__(
        self,
        pickle_globals: Sequence[PickleGlobal],
        source: str = "",
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.model = PickleGlobalsModel(self)
        self.model.set_globals([(source, g) for g in pickle_globals])
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(2)
        self.toggle = QToolButton()
        self.toggle.setText(globals_summary(pickle_globals))
        self.toggle.setToolTip(
            "The Python globals this pickle imports when loaded. ckpt-gui reads it with "
            "torch's weights-only loader, which refuses anything not on its allow list."
        )
        self.toggle.setCheckable(True)
        self.toggle.setAutoRaise(True)
        self.toggle.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        self.toggle.setArrowType(Qt.ArrowType.RightArrow)
        self.toggle.toggled.connect(self._toggled)
        self.table = globals_table(self.model, show_file=False)
        fit_rows(self.table, self.model.rowCount(), most=6)
        self.table.setVisible(False)
        layout.addWidget(self.toggle)
        layout.addWidget(self.table)

    def _toggled(self, shown: bool) -> None:
        self.table.setVisible(shown)
        self.toggle.setArrowType(Qt.ArrowType.DownArrow if shown else Qt.ArrowType.RightArrow)


class UnsafePickleView(QWidget):
    """Why a pickle was refused: every global it would import, with the verdict and reason."""

    ready = Signal(object)  # the PickleRiskReport, once shown

    def __init__(self, target: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.target = target
        self.report: PickleRiskReport | None = None
        self.error: str | None = None
        self._worker: Worker | None = None
        self._disposed = False
        self.model = PickleGlobalsModel(self)
        self.notice = QLabel(
            "<b>Not loaded, nothing executed.</b> This file is a Python pickle that asks to "
            "import code that torch's weights-only loader refuses. ckpt-gui stopped before "
            "unpickling anything: no object was created and no code in the file ran. "
            "Unpickling it without torch's weights-only check would import the globals "
            "marked REFUSED below and may call them: do not."
        )
        self.notice.setTextFormat(Qt.TextFormat.RichText)
        self.notice.setWordWrap(True)
        self.notice.setStyleSheet(
            "background: #fff8e1; color: #4e3b00; border: 1px solid #ffd54f;"
            " border-radius: 4px; padding: 8px; font-size: 10pt;"
        )
        self.status = QLabel("Listing the globals in the pickle (without loading it)…")
        self.status.setTextFormat(Qt.TextFormat.RichText)
        self.status.setWordWrap(True)
        self.table = globals_table(self.model, show_file=False)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(24, 4, 24, 4)
        layout.addWidget(self.notice)
        layout.addWidget(self.status)
        layout.addWidget(self.table)
        worker = Worker(pickle_risk, target)
        worker.returned.connect(self._on_report)
        worker.errored.connect(self._on_error)
        worker.finished.connect(self._on_finished)
        self._worker = worker
        worker.start()

    @property
    def is_busy(self) -> bool:
        return self._worker is not None

    def dispose(self) -> None:
        self._disposed = True
        if self._worker is not None:
            self._worker.quit()

    def _on_report(self, report: PickleRiskReport) -> None:
        if self._disposed:
            return
        self.report = report
        rows = [(f.path, g) for f in report.files for g in f.globals]
        self.model.set_globals(rows)
        pickles = [f for f in report.files if f.kind == "pickle"]
        self.table.setColumnHidden(GlobalColumn.FILE, len(pickles) < 2)
        refused = report.refused
        names = ", ".join(f"<b>{html.escape(g.name)}</b>" for g in refused[:4])
        more = f" and {len(refused) - 4} more" if len(refused) > 4 else ""
        problems = [p for f in report.files for p in f.problems]
        lines = [
            f"{len(rows):,} global(s) in {len(pickles)} pickle(s); "
            f"<span style='color:#c62828'>{len(refused)} refused</span>: {names}{more}."
        ]
        if problems:
            lines.append(
                "<span style='color:#7a4a00'>" + html.escape("; ".join(problems[:3])) + "</span>"
            )
        self.status.setText("<br>".join(lines))
        fit_rows(self.table, self.model.rowCount())
        self.ready.emit(report)

    def _on_error(self, error: BaseException) -> None:
        message = describe_error(error)
        if self._disposed:
            return
        self.error = message
        self.status.setText(
            f"<span style='color:#c62828'>Could not list the globals: {html.escape(message)}</span>"
        )

    def _on_finished(self) -> None:
        self._worker = None
