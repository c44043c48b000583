"""One open checkpoint: loading indicator, in-tab error, or summary + tree + details.

Opening runs ``open_target`` on a Worker thread; the tab shows a busy bar meanwhile
and the one-line error if it fails (never a dialog or a traceback).

Extension points for other features:

* ``set_row_status({path: status})`` colours rows (see ``CheckpointTreeModel``);
  ``tree.proxy.set_node_predicate(...)`` adds a filter such as "only problems";
  ``tree.set_root(root)`` swaps in a tree with extra (ghost) rows.
* ``add_panel(widget, title)`` adds a page to a panel area under the tree (e.g. a
  mismatch list); the area stays hidden until something is added.
* ``loaded(Checkpoint)`` / ``failed(str)`` tell when the checkpoint is ready.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import NamedTuple

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QSplitter,
    QStackedWidget,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from ckpt_gui.core.demo import demo_checkpoint
from ckpt_gui.core.model import Checkpoint
from ckpt_gui.core.targets import open_target
from ckpt_gui.core.tree import ModuleNode, build_tree
from ckpt_gui.qt.views.details import DetailsPanel
from ckpt_gui.qt.views.summary import SummaryHeader, summary_html
from ckpt_gui.qt.views.tree_panel import TreePanel
from ckpt_gui.qt.workers import Worker

DEMO_TARGET = "demo"


class LoadResult(NamedTuple):
    """What the loading thread hands to the tab."""

    checkpoint: Checkpoint
    root: ModuleNode
    summary: str  # the target name the window uses for the built-in demo


def open_demo() -> Checkpoint:
    """The demo checkpoint (generated with torch on first use: call it off the GUI thread)."""
    return open_target(demo_checkpoint())


def title_for(target: str) -> str:
    if target == DEMO_TARGET:
        return "Demo (tiny Llama)"
    path = Path(target)
    return path.name or target


class CheckpointTab(QWidget):
    """A tab for ``target``; ``loader`` (default: open the target) runs on a Worker."""

    loaded = Signal(object)
    failed = Signal(str)

    def __init__(
        self,
        target: str,
        loader: Callable[[], Checkpoint] | None = None,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.target = target
        self.title = title_for(target)
        self._loader = loader
        self.checkpoint: Checkpoint | None = None
        self.error: str | None = None
        self.tree: TreePanel | None = None
        self.header: SummaryHeader | None = None  # rebuilt on each load; extensions add rows
        self.details = DetailsPanel()
        self._worker: Worker | None = None
        self._panels = QTabWidget()
        self._panels.setVisible(False)
        self._pending_status: Mapping[str, str] | None = None
        self._disposed = False

        self._stack = QStackedWidget()
        self._stack.addWidget(self._loading_page())
        self._stack.addWidget(self._error_page())
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self._stack)
        self.reload()

    # -- public API ------------------------------------------------------------------------
    @property
    def is_busy(self) -> bool:
        """Loading, or computing statistics."""
        return self._worker is not None or self.details.stats_running

    def reload(self) -> None:
        """(Re)open the target in the background."""
        if self._worker is not None:
            return
        self._loading_label.setText(
            "Preparing the demo checkpoint (built with torch on first use)…"
            if self.target == DEMO_TARGET
            else f"Opening {self.target}…"
        )
        self._stack.setCurrentIndex(0)
        target = self.target
        custom = self._loader or (open_demo if target == DEMO_TARGET else None)

        def load() -> LoadResult:
            # open_target is looked up at call time. The tree and the summary totals are
            # computed here too: for 100,000 tensors they take seconds the GUI must not spend.
            checkpoint = custom() if custom else open_target(target)
            return LoadResult(checkpoint, build_tree(checkpoint.tensors), summary_html(checkpoint))

        worker = Worker(load)
        worker.returned.connect(self._on_returned)
        worker.errored.connect(self._on_errored)
        worker.finished.connect(self._on_finished)
        self._worker = worker
        worker.start()

    def dispose(self) -> None:
        """Stop background work before the tab is deleted; late results are dropped."""
        self._disposed = True
        if self._worker is not None:
            self._worker.quit()
            self._worker = None
        self.details.cancel()

    def set_row_status(self, status: Mapping[str, str]) -> None:
        """Colour rows by status (``ok``/``missing``/``unexpected``/``mismatch``) per path."""
        if self.tree is None:
            self._pending_status = status
        else:
            self.tree.model.set_row_status(status)

    def add_panel(self, widget: QWidget, title: str) -> None:
        """Add a page to the panel area below the tree (shown once it has a page)."""
        self._panels.addTab(widget, title)
        self._panels.setVisible(True)

    # -- states ----------------------------------------------------------------------------------
    def _loading_page(self) -> QWidget:
        page = QWidget()
        layout = QVBoxLayout(page)
        layout.addStretch(1)
        self._loading_label = QLabel()
        self._loading_label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        layout.addWidget(self._loading_label)
        busy = QProgressBar()
        busy.setRange(0, 0)  # indeterminate
        busy.setMaximumWidth(320)
        row = QHBoxLayout()
        row.addStretch(1)
        row.addWidget(busy)
        row.addStretch(1)
        layout.addLayout(row)
        layout.addStretch(2)
        return page

    def _error_page(self) -> QWidget:
        page = QWidget()
        layout = QVBoxLayout(page)
        layout.addStretch(1)
        heading = QLabel("Could not open this checkpoint")
        heading.setAlignment(Qt.AlignmentFlag.AlignCenter)
        heading.setStyleSheet("font-size: 14pt; font-weight: bold;")
        layout.addWidget(heading)
        self.error_label = QLabel()
        self.error_label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.error_label.setWordWrap(True)
        self.error_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.error_label.setStyleSheet("color: #c62828; font-size: 11pt; padding: 12px;")
        layout.addWidget(self.error_label)
        retry = QPushButton("Retry (F5)")
        retry.clicked.connect(self.reload)
        row = QHBoxLayout()
        row.addStretch(1)
        row.addWidget(retry)
        row.addStretch(1)
        layout.addLayout(row)
        layout.addStretch(2)
        return page

    # A closed tab may still get its worker's last signals: they are dropped.
    def _on_returned(self, result: LoadResult) -> None:
        if not self._disposed:
            self._show_checkpoint(result.checkpoint, result.root, result.summary)

    def _on_errored(self, message: str) -> None:
        if not self._disposed:
            self._show_error(message)

    def _on_finished(self) -> None:
        if not self._disposed:
            self._worker = None

    def _show_checkpoint(
        self, checkpoint: Checkpoint, root: ModuleNode, summary: str | None = None
    ) -> None:
        self.checkpoint, self.error = checkpoint, None
        if self._stack.count() > 2:
            old = self._stack.widget(2)
            self._panels.setParent(None)  # keep the added panels across reloads
            if old is not None:
                self._stack.removeWidget(old)
                old.deleteLater()
        self.tree = TreePanel(root)
        self.details.set_checkpoint(checkpoint)
        self.tree.node_selected.connect(self.details.show_node)
        if self._pending_status is not None:
            self.tree.model.set_row_status(self._pending_status)

        left = QSplitter(Qt.Orientation.Vertical)
        left.addWidget(self.tree)
        left.addWidget(self._panels)
        left.setStretchFactor(0, 3)
        left.setStretchFactor(1, 1)
        split = QSplitter(Qt.Orientation.Horizontal)
        split.addWidget(left)
        split.addWidget(self.details)
        split.setStretchFactor(0, 3)
        split.setStretchFactor(1, 1)
        split.setSizes([820, 340])
        content = QWidget()
        layout = QVBoxLayout(content)
        layout.setContentsMargins(4, 4, 4, 4)
        self.header = SummaryHeader(checkpoint, summary)
        layout.addWidget(self.header)
        layout.addWidget(split, 1)
        self._stack.addWidget(content)
        self._stack.setCurrentWidget(content)
        self.loaded.emit(checkpoint)

    def _show_error(self, message: str) -> None:
        self.error = message
        self.error_label.setText(message)
        self._stack.setCurrentIndex(1)
        self.failed.emit(message)
