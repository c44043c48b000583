"""One open checkpoint: loading indicator, in-tab error, or summary + tree + details.

Opening runs ``open_target_job`` on a Worker thread; the tab shows a busy bar meanwhile
(with "header 3/7" and a determinate bar when a Hub repo reports progress per shard)
and the one-line error if it fails (never a dialog or a traceback). A Hub checkpoint
read remotely (no local files) gets a "Download weights…" button above its summary.

Extension points for other features:

* ``set_row_status({path: status})`` colours rows (see ``CheckpointTreeModel``);
  ``tree.proxy.set_node_predicate(...)`` adds a filter such as "only problems";
  ``tree.set_root(root)`` swaps in a tree with extra (ghost) rows.
* ``add_panel(widget, title)`` adds a page to a panel area under the tree (e.g. a
  mismatch list); the area stays hidden until something is added.
* ``choose_weight_set(key)`` / ``choose_tag(tag)`` reopen the target at another weight
  set (pickles, DCP, DeepSpeed) or DeepSpeed tag, on the worker, in the same tab.
* ``loaded(Checkpoint)`` / ``failed(str)`` tell when the checkpoint is ready;
  ``progress(Progress)`` relays the loading job's progress.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import NamedTuple

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSplitter,
    QStackedWidget,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from ckpt_gui.core.demo import demo_checkpoint
from ckpt_gui.core.formats.distributed.checkpoint import tag_choice
from ckpt_gui.core.gguf.naming import gguf_names
from ckpt_gui.core.hub.ref import parse_hub_target
from ckpt_gui.core.jobs import Job, Progress
from ckpt_gui.core.model import Checkpoint
from ckpt_gui.core.targets import open_target, open_target_job
from ckpt_gui.core.tree.build import ModuleNode, build_tree
from ckpt_gui.qt.hub.download import DownloadBar, remote_hub_ref
from ckpt_gui.qt.inspect.details import DetailsPanel
from ckpt_gui.qt.inspect.summary import SummaryHeader, summary_html
from ckpt_gui.qt.inspect.tag_picker import TagPicker
from ckpt_gui.qt.inspect.tree_panel import TreePanel
from ckpt_gui.qt.pickles.contents_panel import ContentsPanel, WeightSetBar, weight_sets
from ckpt_gui.qt.runtime.disposable import dispose_of
from ckpt_gui.qt.runtime.gui_gc import release_long_lived
from ckpt_gui.qt.runtime.workers import Worker, describe_error
from ckpt_gui.qt.widgets.busy_page import busy_page

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
    """A short tab title: the file or folder name, ``org/name@rev`` for Hub repos."""
    if target == DEMO_TARGET:
        return "Demo (tiny Llama)"
    path = Path(target)
    snapshot = _cache_snapshot_title(path)
    if snapshot is not None:
        return snapshot
    if not path.exists():
        ref = parse_hub_target(target)
        if ref is not None:
            name = ref.repo_id.split("/")[1]
            title = name if ref.revision is None else f"{name}@{ref.revision}"
            return f"{title}/{ref.path_in_repo}" if ref.path_in_repo else title
    return path.name or target


def _cache_snapshot_title(path: Path) -> str | None:
    """``name@abc1234`` for ``…/models--org--name/snapshots/<commit>`` (the Library opens these)."""
    parts = path.parts
    for i in range(len(parts) - 2, 0, -1):
        if parts[i] == "snapshots" and parts[i - 1].startswith("models--"):
            name = parts[i - 1].split("--")[-1]
            inner = "/".join(parts[i + 2 :])
            title = f"{name}@{parts[i + 1][:7]}"
            return f"{title}/{inner}" if inner else title
    return None


def tree_of(checkpoint: Checkpoint) -> ModuleNode:
    """The tab's tree: an adapter shows inside its base's modules when the base is here."""
    if checkpoint.adapter is None:
        return build_tree(checkpoint.tensors, checkpoint.quantization)
    from ckpt_gui.core.adapters.tree import adapted_tree, base_of

    return adapted_tree(checkpoint, base_of(checkpoint))


class CheckpointTab(QWidget):
    """A tab for ``target``; ``loader`` (default: open the target) runs on a Worker."""

    loaded = Signal(object)
    failed = Signal(str)
    progress = Signal(object)
    downloaded = Signal(object)  # a snapshot folder: this tab's weights are now in the cache

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
        self.exception: BaseException | None = None  # what the load raised (e.g. UnsafePickleError)
        self.tree: TreePanel | None = None
        self.header: SummaryHeader | None = None  # rebuilt on each load; extensions add rows
        self.details = DetailsPanel()
        self._worker: Worker | None = None
        self._panels = QTabWidget()
        self._panels.setVisible(False)
        self._pending_status: Mapping[str, str] | None = None
        self._disposed = False
        self.download_bar: DownloadBar | None = None
        # The weight set of a PyTorch pickle holding several (None: the default one).
        self.weights_key: str | None = None
        # The global_step tag of a DeepSpeed folder (None: the one its latest file names).
        self.tag: str | None = None
        self.tag_picker: TagPicker | None = None
        self.contents_panel: QWidget | None = None

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

    @property
    def is_disposed(self) -> bool:
        """True once ``dispose()`` ran: the tab is closing, late results are dropped."""
        return self._disposed

    def reload(self) -> None:
        """(Re)open the target in the background."""
        if self._worker is not None:
            return
        release_long_lived()  # the tree shown so far becomes garbage once the new one shows
        self._loading_label.setText(
            "Preparing the demo checkpoint (built with torch on first use)…"
            if self.target == DEMO_TARGET
            else f"Opening {self.target}…"
        )
        self._stack.setCurrentIndex(0)
        self._busy_bar.setRange(0, 0)
        self.set_error_details(None)
        self.exception = None
        target = self.target
        weights_key = self.weights_key
        tag = self.tag
        custom = self._loader or (open_demo if target == DEMO_TARGET else None)

        def load() -> Job[LoadResult]:
            # open_target_job is looked up at call time. The tree and the summary totals are
            # computed here too: for 100,000 tensors they take seconds the GUI must not spend.
            if custom:
                checkpoint = custom()
            elif weights_key is None and tag is None:
                checkpoint = yield from open_target_job(target)
            elif tag is None:
                checkpoint = yield from open_target_job(target, weights_key)
            else:
                checkpoint = yield from open_target_job(target, weights_key, tag)
            return LoadResult(checkpoint, tree_of(checkpoint), summary_html(checkpoint))

        worker = Worker(load)
        worker.yielded.connect(self._on_progress)
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
        if self.download_bar is not None:
            self.download_bar.close_dialog()  # a download for a closed tab is cancelled
        # Panels and error details with their own background work (scan, pickle risk).
        for child in self.findChildren(QWidget):
            dispose_of(child)

    def set_row_status(self, status: Mapping[str, str]) -> None:
        """Colour rows by status (``ok``/``missing``/``unexpected``/``mismatch``) per path."""
        if self.tree is None:
            self._pending_status = status
        else:
            self.tree.model.set_row_status(status)

    def choose_weight_set(self, key: str) -> None:
        """Reopen the pickle showing weight set ``key`` (on the worker, like any load)."""
        if key == self.weights_key or self._worker is not None:
            return
        self.weights_key = key
        self.reload()

    def choose_tag(self, tag: str) -> None:
        """Reopen the DeepSpeed folder at ``tag`` (on the worker, like any load), keeping the tab."""
        if self._worker is not None:
            return
        shown = tag_choice(self.checkpoint) if self.checkpoint is not None else None
        if shown is not None and tag == shown.tag:
            return
        self.tag = tag
        self.reload()

    def add_panel(self, widget: QWidget, title: str) -> None:
        """Add a page to the panel area below the tree (shown once it has a page)."""
        self._panels.addTab(widget, title)
        self._panels.setVisible(True)

    def show_panel(self, widget: QWidget) -> None:
        """Bring a page added with ``add_panel`` to the front, with room to read it."""
        self._panels.setCurrentWidget(widget)
        self._panels.setVisible(True)
        split = self._panels.parentWidget()
        if isinstance(split, QSplitter) and split.count() == 2:
            sizes = split.sizes()
            total = sum(sizes)
            if total and sizes[1] < total * 0.38:
                split.setSizes([int(total * 0.6), total - int(total * 0.6)])

    def set_error_details(self, widget: QWidget | None) -> None:
        """Show ``widget`` under the one-line error (None removes it), e.g. pickle risk."""
        while self._error_details.count():
            item = self._error_details.takeAt(0)
            old = item.widget() if item is not None else None
            if old is not None:
                dispose_of(old)
                old.deleteLater()
        if widget is not None:
            self._error_details.addWidget(widget)

    # -- states ----------------------------------------------------------------------------------
    def _loading_page(self) -> QWidget:
        # Indeterminate until a job reports how far it is.
        self._loading_label = QLabel()
        page, self._busy_bar = busy_page(self._loading_label)
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
        self._error_details = QVBoxLayout()
        layout.addLayout(self._error_details)
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

    def _on_progress(self, progress: object) -> None:
        if self._disposed or not isinstance(progress, Progress):
            return
        if "header" in progress.message and progress.total:
            # Shards of a Hub repo: "header 3/7", and a bar that fills.
            self._busy_bar.setRange(0, progress.total)
            self._busy_bar.setValue(progress.done)
            self._busy_bar.setFormat(f"header {progress.done}/{progress.total}")
            self._busy_bar.setTextVisible(True)
            self._loading_label.setText(
                f"Opening {self.target}…\nreading the weight files' headers only"
            )
        elif progress.message:
            self._loading_label.setText(f"Opening {self.target}…\n{progress.message}")
        self.progress.emit(progress)

    def _on_errored(self, error: BaseException) -> None:
        if not self._disposed:
            self.exception = error
            self._show_error(describe_error(error))

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
        if checkpoint.format == "gguf":
            self.tree.model.set_aliases(gguf_names(checkpoint), "GGUF")
        self.details.set_checkpoint(checkpoint)
        self.tree.node_selected.connect(self.details.show_node)
        if self._pending_status is not None:
            self.tree.model.set_row_status(self._pending_status)
        classes = checkpoint.metadata.get("module_classes")
        if isinstance(classes, Mapping):
            self.tree.model.set_module_classes(classes)
        self._show_pickle_contents(checkpoint)

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
        ref = remote_hub_ref(checkpoint)
        self.download_bar = (
            DownloadBar(ref, self.reload, checkpoint.format.startswith("pytorch"))
            if ref is not None
            else None
        )
        if self.download_bar is not None:
            self.download_bar.downloaded.connect(self.downloaded)
            layout.addWidget(self.download_bar)
        self.header = SummaryHeader(checkpoint, summary)
        layout.addWidget(self.header)
        if weight_sets(checkpoint):
            self.weight_set_bar: WeightSetBar | None = WeightSetBar(
                checkpoint, self.choose_weight_set
            )
            layout.addWidget(self.weight_set_bar)
        else:
            self.weight_set_bar = None
        self._show_tag_picker(checkpoint)
        layout.addWidget(split, 1)
        self._stack.addWidget(content)
        self._stack.setCurrentWidget(content)
        self.loaded.emit(checkpoint)

    def _show_tag_picker(self, checkpoint: Checkpoint) -> None:
        # In the weight-set row: DeepSpeed folders always list their weight sets.
        choice = tag_choice(checkpoint)
        if choice is None or len(choice.tags) < 2 or self.weight_set_bar is None:
            self.tag_picker = None
            return
        self.tag_picker = TagPicker(choice, self.choose_tag)
        self.weight_set_bar.prepend(self.tag_picker)

    def _show_pickle_contents(self, checkpoint: Checkpoint) -> None:
        if self.contents_panel is not None:  # a reload replaces the page
            index = self._panels.indexOf(self.contents_panel)
            if index >= 0:
                self._panels.removeTab(index)
            self.contents_panel.deleteLater()
            self.contents_panel = None
            self._panels.setVisible(self._panels.count() > 0)
        if "pickle_contents" in checkpoint.metadata:
            self.contents_panel = ContentsPanel(checkpoint)
            self.add_panel(self.contents_panel, "Contents")

    def _show_error(self, message: str) -> None:
        self.error = message
        self.error_label.setText(message)
        self._stack.setCurrentIndex(1)
        self.failed.emit(message)
