"""Filtering (substring, glob, regex) and sorting on top of CheckpointTreeModel.

Filtering is recursive in effect: a row is shown when its path matches, when a
descendant matches (so the path to a match stays visible) or when an ancestor
module matches (so a matched module shows its contents). Instead of letting Qt
probe children row by row through Python (slow for 100,000 rows), the visible
set is computed once per pattern in one pass over the tree and handed to the
model, which filters and sorts each parent's children itself (see tree_model).
This proxy is an identity proxy: it maps indexes in C++ and calls no Python per
row, so a view over 200,000 siblings costs only the rows it paints.

Hook for other features: ``set_node_predicate(fn)`` adds a second condition
(e.g. "show only problems": ``lambda node: model.status_of(node) not in (None, KeyStatus.OK)``).
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QIdentityProxyModel, QModelIndex, QPersistentModelIndex, Qt

from ckpt_gui.core.tree.build import ModuleNode
from ckpt_gui.qt.models.tree_model import CheckpointTreeModel

AnyIndex = QModelIndex | QPersistentModelIndex
MODES = ("contains", "glob", "regex")


def make_matcher(pattern: str, mode: str) -> Callable[[str], bool]:
    """A predicate over dotted paths; raises ValueError for a bad regex. Case-insensitive.

    ``contains``: substring. ``glob``: ``*``/``?``/``[..]`` matched against the whole
    path or any dotted tail of it (``layers.*.mlp`` finds ``model.layers.3.mlp``).
    ``regex``: ``re.search``.
    """
    if mode == "contains":
        needle = pattern.lower()
        return lambda path: needle in path.lower()
    if mode == "glob":
        # translate() ends in \Z; searching from any dot keeps the match on a name boundary.
        regex = re.compile(r"(?:^|\.)(?:" + fnmatch.translate(pattern) + ")", re.I | re.S)
        return lambda path: regex.search(path) is not None
    if mode == "regex":
        try:
            compiled = re.compile(pattern, re.I)
        except re.error as exc:
            raise ValueError(f"invalid regular expression: {exc}") from None
        return lambda path: compiled.search(path) is not None
    raise ValueError(f"unknown filter mode {mode!r}")


def visible_nodes(
    root: ModuleNode,
    matches: Callable[[str], bool] | None,
    predicate: Callable[[ModuleNode], bool] | None = None,
    nodes: list[ModuleNode] | None = None,
) -> set[int] | None:
    """ids of the nodes to show (None: show all): matches, their ancestors, and the
    contents of matched modules. ``nodes`` (``root.walk()`` without the root) may be
    passed in to save a traversal per keystroke."""
    if matches is None and predicate is None:
        return None
    if nodes is None:
        nodes = list(root.walk())[1:]
    hits = nodes
    if matches is not None:
        hits = [n for n in hits if matches(n.path)]
    if predicate is not None:
        hits = [n for n in hits if predicate(n)]
    visible: set[int] = set()
    for node in hits:
        if id(node) in visible:
            continue  # already inside a matched module
        if node.children and matches is not None:
            visible.update(id(n) for n in node.walk())
        else:
            visible.add(id(node))
        parent = node.parent
        while parent is not None and id(parent) not in visible:
            visible.add(id(parent))
            parent = parent.parent
    return visible


class TreeFilterProxy(QIdentityProxyModel):
    """Filters by path pattern and sorts by natural keys, both done by the tree model."""

    def __init__(self, parent: Any = None) -> None:
        super().__init__(parent)
        self._pattern = ""
        self._mode = "contains"
        self._predicate: Callable[[ModuleNode], bool] | None = None
        self._visible: set[int] | None = None
        self._nodes: list[ModuleNode] | None = None  # flattened tree, built on first filter
        self._visible_tensors = 0
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
        return self._visible is not None

    @property
    def visible_count(self) -> int:
        """Rows that pass the filter (all nodes when not filtering)."""
        if self._visible is not None:
            return len(self._visible)
        return sum(1 for _ in self._tree_root().walk()) - 1

    @property
    def visible_tensor_count(self) -> int:
        """Tensors that pass the filter (all tensors when not filtering)."""
        if self._visible is None:
            return self._tree_root().tensor_count
        return self._visible_tensors

    def accepts(self, node: ModuleNode) -> bool:
        return self._visible is None or id(node) in self._visible

    def refilter(self) -> None:
        self.error = ""
        matcher = None
        if self._pattern:
            try:
                matcher = make_matcher(self._pattern, self._mode)
            except ValueError as exc:
                self.error = str(exc)
        root = self._tree_root()
        if self._nodes is None and (matcher is not None or self._predicate is not None):
            self._nodes = list(root.walk())[1:]
        self._visible = visible_nodes(root, matcher, self._predicate, self._nodes)
        if self._visible is not None and self._nodes is not None:
            visible = self._visible
            self._visible_tensors = sum(
                1 for n in self._nodes if n.tensor is not None and id(n) in visible
            )
        model = self.sourceModel()
        if isinstance(model, CheckpointTreeModel):
            model.set_visible(self._visible)

    def _source_reset(self) -> None:
        self._nodes = None
        self.refilter()

    # -- QAbstractProxyModel ----------------------------------------------------------
    def setSourceModel(self, model: Any) -> None:
        super().setSourceModel(model)
        model.modelReset.connect(self._source_reset)
        self._source_reset()

    def sort(self, column: int, order: Qt.SortOrder = Qt.SortOrder.AscendingOrder) -> None:
        """Sorting is the model's (keys computed once per sibling list, see tree_model)."""
        model = self.sourceModel()
        if model is not None:
            model.sort(column, order)

    # -- helpers ------------------------------------------------------------------------
    def _tree_root(self) -> ModuleNode:
        model = self.sourceModel()
        return model.root if isinstance(model, CheckpointTreeModel) else ModuleNode("", "", None)
