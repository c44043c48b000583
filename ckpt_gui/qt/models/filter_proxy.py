"""Filtering (substring, glob, regex) and sorting on top of CheckpointTreeModel.

Filtering is recursive in effect: a row is shown when its path matches, when a
descendant matches (so the path to a match stays visible) or when an ancestor
module matches (so a matched module shows its contents). Instead of letting Qt
probe children row by row through Python (slow for 100,000 rows), the visible
set is computed once per pattern in one pass over the tree (``tree_rows``, on a
worker thread for big trees) and handed to the model, which filters and sorts
each parent's children itself (see tree_model). This proxy is an identity proxy:
it maps indexes in C++ and calls no Python per row, so a view over 200,000
siblings costs only the rows it paints. The model's ``settled`` signal says when a
filter is showing (at once for small trees).

Hook for other features: ``set_node_predicate(fn)`` adds a second condition
(e.g. "show only problems": ``lambda node: model.status_of(node) not in (None, KeyStatus.OK)``).
It may run on a worker thread, so it must only read.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QIdentityProxyModel, QModelIndex, QPersistentModelIndex, Qt

from ckpt_gui.core.tree.build import ModuleNode
from ckpt_gui.qt.models.tree_model import CheckpointTreeModel
from ckpt_gui.qt.models.tree_rows import Matcher, build_index, run, visible_job

AnyIndex = QModelIndex | QPersistentModelIndex
MODES = ("contains", "glob", "regex")


def make_matcher(pattern: str, mode: str) -> Callable[[str], bool]:
    """A predicate over dotted paths; raises ValueError for a bad regex. Case-insensitive.

    ``contains``: substring. ``glob``: ``*``/``?``/``[..]`` matched against the whole
    path or any dotted tail of it (``layers.*.mlp`` finds ``model.layers.3.mlp``).
    ``regex``: ``re.search``.
    """
    return Matcher(pattern, mode)


def visible_nodes(
    root: ModuleNode,
    matches: Callable[[str], bool] | None,
    predicate: Callable[[ModuleNode], bool] | None = None,
) -> set[int] | None:
    """ids of the nodes to show (None: show all): matches, their ancestors, and the
    contents of matched modules."""
    result: set[int] | None = run(visible_job(build_index(root), matches, predicate))
    return result


class TreeFilterProxy(QIdentityProxyModel):
    """Filters by path pattern and sorts by natural keys, both done by the tree model."""

    def __init__(self, parent: Any = None) -> None:
        super().__init__(parent)
        self._pattern = ""
        self._mode = "contains"
        self._predicate: Callable[[ModuleNode], bool] | None = None
        self.error = ""  # set when the pattern is invalid (shown by the view)

    # -- public API ------------------------------------------------------------------
    def set_filter(self, pattern: str, mode: str = "contains") -> None:
        """Filter by ``pattern`` in ``mode`` (one of MODES); an empty pattern shows all."""
        self._pattern, self._mode = pattern, mode
        self.refilter()

    def set_node_predicate(self, predicate: Callable[[ModuleNode], bool] | None) -> None:
        """An extra condition a node must meet to be shown (None: no condition)."""
        self._predicate = predicate
        self.refilter()

    @property
    def is_filtering(self) -> bool:
        model = self._tree_model()
        return model is not None and model.is_filtering

    @property
    def visible_count(self) -> int:
        """Rows that pass the filter (all nodes when not filtering)."""
        model = self._tree_model()
        return model.visible_count if model is not None else 0

    @property
    def visible_tensor_count(self) -> int:
        """Tensors that pass the filter (all tensors when not filtering)."""
        model = self._tree_model()
        return model.visible_tensor_count if model is not None else 0

    def accepts(self, node: ModuleNode) -> bool:
        model = self._tree_model()
        return model is None or model.accepts(node)

    def refilter(self) -> None:
        self.error = ""
        matcher = None
        if self._pattern:
            try:
                matcher = make_matcher(self._pattern, self._mode)
            except ValueError as exc:
                self.error = str(exc)
        model = self._tree_model()
        if model is not None:
            model.set_filter(matcher, self._predicate)

    # -- QAbstractProxyModel ----------------------------------------------------------
    def setSourceModel(self, model: Any) -> None:
        super().setSourceModel(model)
        self.refilter()

    def sort(self, column: int, order: Qt.SortOrder = Qt.SortOrder.AscendingOrder) -> None:
        """Sorting is the model's (keys computed once per sibling list, see tree_model)."""
        model = self.sourceModel()
        if model is not None:
            model.sort(column, order)

    # -- helpers ------------------------------------------------------------------------
    def _tree_model(self) -> CheckpointTreeModel | None:
        model = self.sourceModel()
        return model if isinstance(model, CheckpointTreeModel) else None
