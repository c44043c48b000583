"""Filtering (substring, glob, regex) and sorting on top of CheckpointTreeModel.

Filtering is recursive in effect: a row is shown when its path matches, when a
descendant matches (so the path to a match stays visible) or when an ancestor
module matches (so a matched module shows its contents). Instead of letting Qt
probe children row by row through Python (slow for 100,000 rows), the visible
set is computed once per pattern in one pass over the tree, and
``filterAcceptsRow`` is a set lookup.

Hook for other features: ``set_node_predicate(fn)`` adds a second condition
(e.g. "show only problems": ``lambda node: model.status_of(node) not in (None, "ok")``).
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QModelIndex, QPersistentModelIndex, QSortFilterProxyModel

from ckpt_gui.core.tree import ModuleNode
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
        regex = re.compile(r"(?:^|.*\.)(?:" + fnmatch.translate(pattern) + ")", re.I | re.S)
        return lambda path: regex.match(path) is not None
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
) -> set[int] | None:
    """ids of the nodes to show (None: show all). Matches, their ancestors, and the
    contents of matched modules."""
    if matches is None and predicate is None:
        return None
    visible: set[int] = set()
    for node in root.walk():
        if node is root or id(node) in visible:
            continue
        if (matches is None or matches(node.path)) and (predicate is None or predicate(node)):
            if node.children and matches is not None:
                visible.update(id(n) for n in node.walk())
            else:
                visible.add(id(node))
            parent = node.parent
            while parent is not None and id(parent) not in visible:
                visible.add(id(parent))
                parent = parent.parent
    return visible


class TreeFilterProxy(QSortFilterProxyModel):
    """Proxy that filters by path pattern and sorts by the model's natural keys."""

    def __init__(self, parent: Any = None) -> None:
        super().__init__(parent)
        self._pattern = ""
        self._mode = "contains"
        self._predicate: Callable[[ModuleNode], bool] | None = None
        self._visible: set[int] | None = None
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
        self.beginFilterChange()
        self._visible = visible_nodes(self._tree_root(), matcher, self._predicate)
        self.endFilterChange(QSortFilterProxyModel.Direction.Rows)

    # -- QSortFilterProxyModel ----------------------------------------------------------
    def setSourceModel(self, model: Any) -> None:
        super().setSourceModel(model)
        model.modelReset.connect(self.refilter)
        self.refilter()

    def filterAcceptsRow(self, source_row: int, source_parent: AnyIndex) -> bool:
        if self._visible is None:
            return True
        parent = source_parent.internalPointer() if source_parent.isValid() else self._tree_root()
        return id(parent.children[source_row]) in self._visible

    def lessThan(self, left: AnyIndex, right: AnyIndex) -> bool:
        model = self._tree_model()
        column = left.column()
        left_key = model.sort_value(left.internalPointer(), column)
        right_key = model.sort_value(right.internalPointer(), column)
        try:
            return bool(left_key < right_key)
        except TypeError:
            return str(left_key) < str(right_key)

    # -- helpers ------------------------------------------------------------------------
    def _tree_model(self) -> CheckpointTreeModel:
        model = self.sourceModel()
        assert isinstance(model, CheckpointTreeModel)
        return model

    def _tree_root(self) -> ModuleNode:
        model = self.sourceModel()
        return model.root if isinstance(model, CheckpointTreeModel) else ModuleNode("", "", None)
