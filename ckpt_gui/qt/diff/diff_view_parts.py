"""Pieces of the diff view that need no DiffView: the Show choices, loading a pair
of checkpoints, the filter proxy, table setup, and the HTML of the header labels.
"""

from __future__ import annotations

import html
from collections.abc import Iterable, Mapping
from typing import Any, NamedTuple

from PySide6.QtCore import QModelIndex, QPersistentModelIndex, QSortFilterProxyModel, Qt
from PySide6.QtWidgets import (
    QAbstractItemView,
    QStyledItemDelegate,
    QStyleOptionViewItem,
    QTableView,
)

from ckpt_gui.core.diff.values import DiffReport, StructureDiff, diff_structure
from ckpt_gui.core.formatting import human_bytes
from ckpt_gui.core.model import Checkpoint
from ckpt_gui.core.targets import open_target
from ckpt_gui.qt.diff.diff_model import (
    CHANGED,
    EQUAL_VALUES,
    IDENTICAL,
    KIND_COLORS,
    NOT_COMPARED,
    ONLY_IN_A,
    ONLY_IN_B,
    SHAPE_CHANGED,
    DiffColumn,
    DiffRow,
    DiffTableModel,
    SortRole,
    SourceSortProxy,
)

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


class ElideRightDelegate(QStyledItemDelegate):
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


def sources_html(pair: LoadedPair) -> str:
    """The two-line header naming A and B."""

    def line(letter: str, checkpoint: Checkpoint) -> str:
        return (
            f"<b>{letter}</b>&nbsp; {html.escape(checkpoint.source)} "
            f"<span style='color:#777'>· {html.escape(checkpoint.format)} · "
            f"{len(checkpoint.tensors):,} tensors · {human_bytes(checkpoint.total_bytes)}</span>"
        )

    return line("A", pair.a) + "<br>" + line("B", pair.b)


def renames_html(structure: StructureDiff) -> str:
    """The prefix renames the structure diff matched (call only when there are some)."""
    parts = [
        f"<code>{html.escape(r.a_prefix or '(none)')}</code> → "
        f"<code>{html.escape(r.b_prefix or '(none)')}</code> ({r.count:,} tensors)"
        for r in structure.renames
    ]
    return "<span style='color:#1565c0'><b>Renamed keys matched:</b></span> " + ", ".join(parts)


def summary_html(counts: Mapping[str, int], dtype_changed: int, report: DiffReport | None) -> str:
    """The coloured counts line above the table (``counts`` from ``DiffTableModel.counts``)."""
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
    if dtype_changed:
        parts.append(chip(SHAPE_CHANGED, "dtype changed", dtype_changed))
    if counts[NOT_COMPARED]:
        parts.append(chip(NOT_COMPARED, "not compared", counts[NOT_COMPARED]))
    verdict = ""
    if report is not None:
        verdict = (
            "<span style='color:#d84315'><b>Different</b></span> · "
            if report.different
            else "<span style='color:#2e7d32'><b>Identical</b></span> · "
        )
    pending = f" · {counts['pending']:,} of {pairs:,} pairs to go" if counts["pending"] else ""
    return verdict + " · ".join(parts) + pending


DIFF_COLUMN_WIDTHS = {
    DiffColumn.STATUS: 112,
    DiffColumn.NAME_B: 150,
    DiffColumn.SHAPE: 110,
    DiffColumn.DTYPE: 90,
    DiffColumn.PARAMETERS: 84,
    DiffColumn.MAX_ABS: 84,
    DiffColumn.REL_L2: 84,
    DiffColumn.COSINE: 110,
}


def tree_statuses(rows: Iterable[DiffRow]) -> dict[str, str]:
    """Statuses for A's tree: what differs in B, by A's tensor name."""
    statuses: dict[str, str] = {}
    for row in rows:
        if row.kind in (CHANGED, SHAPE_CHANGED):
            statuses[row.key] = "changed"
        elif row.kind == ONLY_IN_A:
            statuses[row.key] = "only_in_a"
    return statuses


def make_table(model: QSortFilterProxyModel) -> QTableView:
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


def short_name(target: str) -> str:
    from pathlib import Path

    name = Path(target).name or target
    return name if len(name) <= 28 else name[:12] + "…" + name[-12:]
