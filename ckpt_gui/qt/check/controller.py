"""Comparison in a checkpoint tab: the compare bar, background runs, tree and panel.

``ckpt_gui.qt.check.feature`` adds the Compare menu and attaches a ``CompareController``
to every tab. A controller puts a bar into the tab's summary header (what it was
compared with, the verdict, a legend with counts, "Show only problems", a busy
indicator, "Compare with config…"), runs ``run_comparison`` on a Worker (the first
run imports transformers: seconds; the tree stays usable), then colours the tree,
swaps in the tree with ghost rows and fills the mismatch panel.

A checkpoint that has its own config.json is compared with it as soon as it opens.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from typing import Any

import shiboken6
from PySide6.QtCore import (
    QItemSelectionModel,
    QObject,
    QPersistentModelIndex,
    Qt,
    QTimer,
    Signal,
)
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QDialog,
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from ckpt_gui.core.model import Checkpoint
from ckpt_gui.core.tree.build import ModuleNode
from ckpt_gui.qt.check.config_picker import ConfigPicker
from ckpt_gui.qt.check.mismatch_panel import MismatchPanel
from ckpt_gui.qt.check.status_style import (
    PROBLEMS,
    Legend,
    install_status_colors,
)
from ckpt_gui.qt.check.view_model import ComparisonResult, ConfigChoice, run_comparison
from ckpt_gui.qt.inspect.checkpoint_tab import CheckpointTab
from ckpt_gui.qt.runtime.workers import Worker, describe_error
from ckpt_gui.qt.services import ExportService

PANEL_TITLE = "Comparison"
_CENTER = QAbstractItemView.ScrollHint.PositionAtCenter


class CompareBar(QWidget):
    """The comparison's line in the summary header."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.verdict = QLabel("Not compared with a config yet.")
        self.verdict.setWordWrap(True)
        self.legend = Legend()
        self.legend.setVisible(False)
        self.problems_only = QCheckBox("Show only problems")
        self.problems_only.setEnabled(False)
        self.busy = QProgressBar()
        self.busy.setRange(0, 0)
        self.busy.setMaximumWidth(110)
        self.busy.setMaximumHeight(14)
        self.busy.setTextVisible(False)
        self.busy.setVisible(False)
        self.architecture_button = QPushButton("Compare with an architecture…")
        self.architecture_button.setVisible(False)
        self.compare_button = QPushButton("Compare with config…")
        top = QHBoxLayout()
        top.setContentsMargins(0, 0, 0, 0)
        top.addWidget(self.verdict, 1)
        top.addWidget(self.busy)
        top.addWidget(self.architecture_button)
        top.addWidget(self.compare_button)
        bottom = QHBoxLayout()
        bottom.setContentsMargins(0, 0, 0, 0)
        bottom.addWidget(self.legend)
        bottom.addStretch(1)
        bottom.addWidget(self.problems_only)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 4, 0, 0)
        layout.setSpacing(2)
        layout.addLayout(top)
        layout.addLayout(bottom)


class CompareController(QObject):
    """Owns one tab's comparison (a child of the tab; find it with ``controller_for``)."""

    finished = Signal()  # after each run, result or error
    problems_only_changed = Signal(bool)

    def __init__(self, tab: CheckpointTab, exports: ExportService) -> None:
        super().__init__(tab)
        install_status_colors()
        self.tab = tab
        self.exports = exports
        self.export_dialog: QDialog | None = None  # the last "Export with this fix" dialog
        self.choice: ConfigChoice | None = None
        self.result: ComparisonResult | None = None
        self.error: str | None = None
        self.worker: Worker | None = None
        self.bar = CompareBar(tab)
        self.bar.setVisible(False)
        self.panel = MismatchPanel(tab)  # owned by the tab until add_panel adopts it
        self.panel.setVisible(False)
        self._panel_added = False
        self._plain_root: ModuleNode | None = None
        self.bar.compare_button.clicked.connect(lambda: self.open_picker())
        self.bar.architecture_button.clicked.connect(lambda: self.open_picker("architecture"))
        self.bar.problems_only.toggled.connect(self.set_problems_only)
        self.panel.reveal_requested.connect(self.reveal)
        self.panel.export_requested.connect(self._export)
        self.panel.override_requested.connect(self.compare_with_overrides)
        tab.loaded.connect(self._tab_loaded)
        if tab.checkpoint is not None:
            self._tab_loaded(tab.checkpoint)

    # -- public API --------------------------------------------------------------------------
    @property
    def is_running(self) -> bool:
        return self.worker is not None

    def compare(self, choice: ConfigChoice) -> None:
        """Run the comparison with ``choice`` in the background (a running one is dropped)."""
        checkpoint = self.tab.checkpoint
        if checkpoint is None:
            return
        if self.worker is not None:
            self.worker.quit()
        self.choice = choice
        self.bar.busy.setVisible(True)
        self.bar.architecture_button.setVisible(False)
        self.bar.verdict.setText(
            f"Comparing with {html.escape(choice.label)}… "
            "<span style='color:#777'>(the first comparison of a config builds the model "
            "on the meta device: a few seconds)</span>"
        )
        worker = Worker(run_comparison, checkpoint, choice, self._plain_root)
        worker.returned.connect(lambda result, w=worker: self._returned(w, result))
        worker.errored.connect(lambda error, w=worker: self._errored(w, describe_error(error)))
        worker.finished.connect(lambda w=worker: self._finished(w))
        self.worker = worker
        self.tab.destroyed.connect(worker.quit)  # a closed tab's result is not wanted
        worker.start()

    def compare_with_overrides(self, values: dict[str, Any]) -> None:
        """Compare again with some config values changed (a config suggestion)."""
        base = self.choice or ConfigChoice("own")
        overrides = {**base.overrides, **values}
        self.compare(ConfigChoice(base.kind, base.spec, overrides))

    def open_picker(self, kind: str | None = None) -> ConfigPicker | None:
        """Show the config picker (non-modal); comparing starts when it is accepted."""
        checkpoint: Checkpoint | None = self.tab.checkpoint
        if checkpoint is None:
            return None
        picker = ConfigPicker(checkpoint, self.choice, self.tab)
        if kind is not None:
            picker.set_kind(kind)
        picker.accepted.connect(lambda: self.compare(picker.choice()))
        picker.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        picker.open()
        return picker

    def set_problems_only(self, on: bool) -> None:
        """Show only rows with a problem status (and the modules leading to them)."""
        if self.bar.problems_only.isChecked() != on:
            self.bar.problems_only.setChecked(on)  # re-enters through toggled
            return
        self.problems_only_changed.emit(on)
        tree = self.tab.tree
        if tree is None:
            return
        model = tree.model

        def problem(node: ModuleNode) -> bool:
            return node.is_tensor and model.status_of(node) in PROBLEMS

        tree.proxy.set_node_predicate(problem if on else None)
        tree.apply_filter()

    def reveal(self, paths: Sequence[str]) -> None:
        """Select the rows at ``paths`` in the tree, scrolling to the first."""
        tree = self.tab.tree
        if tree is None:
            return
        root = tree.model.root
        nodes = [n for n in (root.find(p) for p in paths) if n is not None]
        indexes = [tree.proxy.mapFromSource(tree.model.index_of(n)) for n in nodes]
        if nodes and not any(i.isValid() for i in indexes) and tree.filter_edit.text():
            tree.filter_edit.clear()  # the name filter hides them: show them anyway
            tree.apply_filter()
            indexes = [tree.proxy.mapFromSource(tree.model.index_of(n)) for n in nodes]
        indexes = [i for i in indexes if i.isValid()]
        if not indexes:
            return
        view = tree.view
        for index in indexes:
            parent = index.parent()
            while parent.isValid():
                view.expand(parent)
                parent = parent.parent()
        view.setCurrentIndex(indexes[0])
        flags = QItemSelectionModel.SelectionFlag.Select | QItemSelectionModel.SelectionFlag.Rows
        for index in indexes[1:]:
            view.selectionModel().select(index, flags)
        view.scrollTo(indexes[0], _CENTER)
        first = QPersistentModelIndex(indexes[0])
        # Again once the expansions are laid out: the first scroll may come too early.
        QTimer.singleShot(0, lambda: self._scroll_to(view, first))

    @staticmethod
    def _scroll_to(view: Any, index: QPersistentModelIndex) -> None:
        if index.isValid():
            view.scrollTo(view.model().index(index.row(), index.column(), index.parent()), _CENTER)

    # -- internals ---------------------------------------------------------------------------
    def _tab_loaded(self, checkpoint: Checkpoint) -> None:
        # The tree as loaded (no ghosts), to return to when a comparison fails.
        self._plain_root = self.tab.tree.raw_root if self.tab.tree is not None else None
        header_layout = self.tab.header.layout() if self.tab.header is not None else None
        if header_layout is not None:
            header_layout.addWidget(self.bar)
            self.bar.setVisible(True)
        if self.choice is not None:
            self.compare(self.choice)  # reloaded: compare the new contents again
        elif checkpoint.config is not None:
            self.compare(ConfigChoice("own"))
        else:
            self.bar.verdict.setText(
                "No config.json here: <b>Compare with config…</b> to check it against an "
                "architecture, a config file or a Hub repo."
            )

    def _returned(self, worker: Worker, result: ComparisonResult) -> None:
        if worker is not self.worker or not self._alive():
            return
        self.result, self.error = result, None
        report = result.report
        self.tab.set_row_status(report.status_by_key)
        if self.tab.tree is not None:
            self.tab.tree.set_root(result.root)
        self.bar.legend.set_counts(report.counts)
        self.bar.legend.setVisible(True)
        self.bar.problems_only.setEnabled(True)
        self.set_problems_only(self.bar.problems_only.isChecked())
        if report.clean:
            verdict = "<b style='color:#2e7d32'>loads cleanly</b>"
        else:
            verdict = "<b style='color:#c62828'>does NOT load cleanly</b>"
        self.bar.verdict.setText(
            f"Compared with {html.escape(result.choice.label)} → "
            f"<b>{html.escape(report.architecture)}</b>: {verdict}"
        )
        self.panel.set_result(result)
        if not self._panel_added:  # the panel area appears with the first result
            self.tab.add_panel(self.panel, PANEL_TITLE)
            self.panel.setVisible(True)
            self._panel_added = True

    def _errored(self, worker: Worker, message: str) -> None:
        if worker is not self.worker or not self._alive():
            return
        self.result, self.error = None, message
        self.tab.set_row_status({})
        tree = self.tab.tree
        if (
            tree is not None
            and self._plain_root is not None
            and tree.raw_root is not self._plain_root
        ):
            tree.set_root(self._plain_root)  # drop the ghost rows
        self.bar.legend.setVisible(False)
        self.bar.problems_only.setEnabled(False)
        self.bar.verdict.setText(
            f"<span style='color:#c62828'>Cannot compare: {html.escape(message)}</span>"
        )
        # Configs that need custom code are never run: offer a built-in architecture.
        self.bar.architecture_button.setVisible(
            "custom code" in message or "architecture" in message
        )
        self.panel.set_result(None)

    def _alive(self) -> bool:
        """False once the tab was closed (its widgets may already be deleted)."""
        return shiboken6.isValid(self.bar) and not self.tab.is_disposed

    def _finished(self, worker: Worker) -> None:
        if worker is self.worker and self._alive():
            self.worker = None
            self.bar.busy.setVisible(False)
            self.finished.emit()

    def _export(self, renames: list[Any]) -> None:
        self.export_dialog = self.exports.export_with_renames(self.tab, renames)


def controller_for(tab: QObject) -> CompareController | None:
    found = tab.findChild(CompareController)
    return found if isinstance(found, CompareController) else None
