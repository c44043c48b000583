"""The Library dock: the models in the local Hugging Face cache, opened with a double click.

The cache is scanned with ``hub_cache.list_cached_models`` on a Worker (never on the
GUI thread), when the dock is first shown and on Refresh. Each repo row shows its
revisions with their refs, size on disk, last change and whether the snapshot holds
weights (✓; rows without are grey); its child rows are the individual revisions. Double-clicking a row emits
``open_requested`` with the snapshot folder (the repo's ``open_path``, or that
revision's), so it opens from disk, offline, at exactly the cached commit.
"""

from __future__ import annotations

import time
from pathlib import Path

from PySide6.QtCore import QPoint, Qt, Signal
from PySide6.QtGui import QGuiApplication, QShowEvent
from PySide6.QtWidgets import (
    QDockWidget,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QMenu,
    QStackedWidget,
    QToolButton,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from ckpt_gui.core.formatting import human_bytes
from ckpt_gui.core.hub.cache import CachedModel, CachedRevision, default_cache_dir
from ckpt_gui.core.hub.cache import list_cached_models as _list_cached_models
from ckpt_gui.qt.runtime.workers import Worker, describe_error

# Most wanted first; whatever does not fit the dock scrolls, the repo names never elide.
COLUMNS = ("Repo", "Size", "Weights", "Refs", "Modified")
REPO, SIZE, WEIGHTS, REFS, MODIFIED = range(len(COLUMNS))
HAS_WEIGHTS = ("—", "✓")  # compact, so that the repo names get the dock's width
PATH_ROLE = Qt.ItemDataRole.UserRole
REPO_ROLE = Qt.ItemDataRole.UserRole + 1


def list_cached_models(cache_dir: Path | None) -> list[CachedModel]:
    """Looked up at call time (tests replace it to see which thread runs it)."""
    return _list_cached_models(cache_dir)


def _when(timestamp: float, with_time: bool = False) -> str:
    pattern = "%Y-%m-%d %H:%M" if with_time else "%Y-%m-%d"
    return time.strftime(pattern, time.localtime(timestamp)) if timestamp else ""


def _revision_text(revision: CachedRevision) -> str:
    """Its refs (``main, v1``); a revision no ref points to shows its short commit."""
    return ", ".join(revision.refs) or revision.commit[:7]


def _revision_tip(revision: CachedRevision) -> str:
    refs = ", ".join(revision.refs) or "no ref"
    return (
        f"{revision.commit} ({refs}), {human_bytes(revision.size)}, "
        f"changed {_when(revision.last_modified, with_time=True)}"
    )


def _mark_without_weights(item: QTreeWidgetItem) -> None:
    item.setToolTip(WEIGHTS, "no weight files in this snapshot (config only)")
    for column in range(len(COLUMNS)):
        item.setForeground(column, Qt.GlobalColor.gray)


class LibraryDock(QDockWidget):
    """``open_requested(str)``: a snapshot folder to open; ``refreshed`` after each scan."""

    open_requested = Signal(str)
    refreshed = Signal()

    def __init__(self, cache_dir: Path | None = None, parent: QWidget | None = None) -> None:
        super().__init__("Library", parent)
        self.setObjectName("libraryDock")
        self.cache_dir = cache_dir
        self.models: list[CachedModel] = []
        self.error: str | None = None
        self._worker: Worker | None = None
        self._scanned = False
        self._rescan = False

        body = QWidget()
        layout = QVBoxLayout(body)
        layout.setContentsMargins(4, 4, 4, 4)
        top = QHBoxLayout()
        self.filter_edit = QLineEdit()
        self.filter_edit.setPlaceholderText("Filter cached models…")
        self.filter_edit.setClearButtonEnabled(True)
        self.filter_edit.textChanged.connect(self._apply_filter)
        top.addWidget(self.filter_edit, 1)
        self.refresh_button = QToolButton()
        self.refresh_button.setText("Refresh")
        self.refresh_button.setToolTip("Scan the Hugging Face cache again")
        self.refresh_button.clicked.connect(self.refresh)
        top.addWidget(self.refresh_button)
        layout.addLayout(top)

        self.tree = QTreeWidget()
        self.tree.setHeaderLabels(list(COLUMNS))
        self.tree.setRootIsDecorated(True)
        self.tree.setUniformRowHeights(True)
        self.tree.setAlternatingRowColors(True)
        header = self.tree.header()
        header.setStretchLastSection(True)
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.tree.itemActivated.connect(self._activated)
        self.tree.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.tree.customContextMenuRequested.connect(self._context_menu)
        self.empty_label = QLabel()
        self.empty_label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.empty_label.setWordWrap(True)
        self.empty_label.setStyleSheet("color: #777; padding: 16px;")
        self._stack = QStackedWidget()
        self._stack.addWidget(self.tree)
        self._stack.addWidget(self.empty_label)
        layout.addWidget(self._stack, 1)
        self.footer = QLabel()
        self.footer.setStyleSheet("color: #777;")
        self.footer.setWordWrap(True)
        layout.addWidget(self.footer)
        self.setWidget(body)

    # -- public API ----------------------------------------------------------------------------------
    @property
    def is_busy(self) -> bool:
        return self._worker is not None

    def folder(self) -> Path:
        return self.cache_dir or default_cache_dir()

    def refresh(self) -> None:
        """Scan the cache again in the background (once more after a running scan)."""
        if self._worker is not None:
            self._rescan = True  # the cache may have changed since that scan started
            return
        self._scanned = True
        self.refresh_button.setEnabled(False)
        self.footer.setText(f"Scanning {self.folder()}…")
        worker = Worker(list_cached_models, self.cache_dir)
        worker.returned.connect(self._show_models)
        worker.errored.connect(self._show_error)
        worker.finished.connect(self._scan_finished)
        self._worker = worker
        worker.start()

    def repo_items(self) -> list[QTreeWidgetItem]:
        items = (self.tree.topLevelItem(i) for i in range(self.tree.topLevelItemCount()))
        return [item for item in items if item is not None]

    def visible_repo_ids(self) -> list[str]:
        return [item.text(0) for item in self.repo_items() if not item.isHidden()]

    def item_for(self, repo_id: str) -> QTreeWidgetItem | None:
        return next((item for item in self.repo_items() if item.text(0) == repo_id), None)

    def showEvent(self, event: QShowEvent) -> None:
        super().showEvent(event)
        if not self._scanned:
            self.refresh()

    # -- results -----------------------------------------------------------------------------------
    def _show_models(self, models: list[CachedModel]) -> None:
        self.models, self.error = list(models), None
        self.tree.clear()
        for model in self.models:
            self.tree.addTopLevelItem(self._model_item(model))
        total = sum(m.size for m in self.models)
        count = len(self.models)
        self.footer.setText(
            f"{count} model{'s' * (count != 1)}, {human_bytes(total)} in {self.folder()}"
        )
        self._apply_filter(self.filter_edit.text())
        self.refreshed.emit()

    def _show_error(self, error: BaseException) -> None:
        message = describe_error(error)
        self.models, self.error = [], message
        self.tree.clear()
        self.empty_label.setText(f"Could not read the cache:\n{message}")
        self._stack.setCurrentWidget(self.empty_label)
        self.footer.setText("")
        self.refreshed.emit()

    def _scan_finished(self) -> None:
        self._worker = None
        self.refresh_button.setEnabled(True)
        if self._rescan:
            self._rescan = False
            self.refresh()

    def _model_item(self, model: CachedModel) -> QTreeWidgetItem:
        # The revision a double click opens (main, else the newest) comes first.
        ordered = sorted(model.revisions, key=lambda r: r.path != model.open_path)
        revisions = ", ".join(_revision_text(r) for r in ordered[:2])
        if len(ordered) > 2:
            revisions += f" +{len(ordered) - 2}"
        item = QTreeWidgetItem(
            [
                model.repo_id,
                human_bytes(model.size),
                HAS_WEIGHTS[model.has_weights],
                revisions,
                _when(model.last_modified),
            ]
        )
        item.setData(0, PATH_ROLE, str(model.open_path))
        item.setData(0, REPO_ROLE, model.repo_id)
        tips = "\n".join(_revision_tip(r) for r in ordered)
        item.setToolTip(0, f"{model.repo_id}\nopens {model.open_path}")
        item.setToolTip(REFS, tips)
        item.setTextAlignment(SIZE, Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        item.setTextAlignment(WEIGHTS, Qt.AlignmentFlag.AlignCenter)
        if not model.has_weights:
            _mark_without_weights(item)
            item.setToolTip(0, f"{model.repo_id}\nno weight files cached (config only)")
        if len(ordered) > 1:
            for revision in ordered:
                item.addChild(self._revision_item(model.repo_id, revision))
        return item

    def _revision_item(self, repo_id: str, revision: CachedRevision) -> QTreeWidgetItem:
        child = QTreeWidgetItem(
            [
                revision.commit[:12],
                human_bytes(revision.size),
                HAS_WEIGHTS[revision.has_weights],
                ", ".join(revision.refs) or "(no ref)",
                _when(revision.last_modified),
            ]
        )
        if not revision.has_weights:
            _mark_without_weights(child)
        child.setData(0, PATH_ROLE, str(revision.path))
        child.setData(0, REPO_ROLE, repo_id)
        child.setToolTip(0, f"{repo_id} @ {revision.commit}\n{revision.path}")
        child.setTextAlignment(SIZE, Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        child.setTextAlignment(WEIGHTS, Qt.AlignmentFlag.AlignCenter)
        return child

    def _apply_filter(self, text: str) -> None:
        needle = text.strip().lower()
        shown = 0
        for item in self.repo_items():
            hidden = needle not in item.text(0).lower()
            item.setHidden(hidden)
            shown += not hidden
        if self.error is not None:
            return
        if shown:
            self._stack.setCurrentWidget(self.tree)
            return
        if not self.models:
            self.empty_label.setText(
                f"No models in the Hugging Face cache\n({self.folder()}).\n\n"
                "Models you download with “Download weights…”, transformers or "
                "`hf download` appear here."
            )
        else:
            self.empty_label.setText(f"No cached model matches “{text.strip()}”.")
        self._stack.setCurrentWidget(self.empty_label)

    # -- interaction --------------------------------------------------------------------------------
    def _activated(self, item: QTreeWidgetItem, _column: int = 0) -> None:
        path = item.data(0, PATH_ROLE)
        if path:
            self.open_requested.emit(str(path))

    def _context_menu(self, position: QPoint) -> None:
        item = self.tree.itemAt(position)
        if item is None:
            return
        menu = QMenu(self)
        menu.addAction("Open", lambda: self._activated(item))
        repo_id = str(item.data(0, REPO_ROLE))
        menu.addAction("Copy Repo Id", lambda: QGuiApplication.clipboard().setText(repo_id))
        path = str(item.data(0, PATH_ROLE))
        menu.addAction("Copy Snapshot Path", lambda: QGuiApplication.clipboard().setText(path))
        menu.exec(self.tree.viewport().mapToGlobal(position))
