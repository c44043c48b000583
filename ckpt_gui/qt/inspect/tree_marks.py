"""Show other features' findings in a checkpoint tab's tree: statuses, revealed and selected rows.

Used by the diff feature (rows that changed) and the scan feature (rows with NaN/Inf),
so it lives with the tab rather than in either of them.
"""

from __future__ import annotations

from collections.abc import Mapping

from ckpt_gui.core.tree.build import ModuleNode
from ckpt_gui.qt.inspect.checkpoint_tab import CheckpointTab

REVEAL_LIMIT = 40  # rows the tree opens up to after a scan or diff


def mark_rows(tab: CheckpointTab, statuses: Mapping[str, str]) -> None:
    """Colour the rows by status and open the tree down to them (not for a closed tab)."""
    if not tab.is_disposed:
        tab.set_row_status(statuses)
        reveal_rows(tab, list(statuses))


def select_tensor(tab: CheckpointTab, name: str) -> None:
    """Select the tree row of tensor ``name`` (clearing a filter that hides it)."""
    if tab.tree is None:
        return
    node = find_node(tab.tree.model.root, name)
    if node is None:
        return
    if tab.tree.proxy.is_filtering and not tab.tree.proxy.accepts(node):
        tab.tree.filter_edit.clear()
        tab.tree.apply_filter()
    tab.tree.select_node(node)


def reveal_rows(tab: CheckpointTab, names: list[str], limit: int = REVEAL_LIMIT) -> None:
    """Expand the tree down to the given tensors (the first ``limit``), so they are seen."""
    if tab.tree is None or not names:
        return
    wanted = set(names[:limit])
    tree = tab.tree
    for node in tree.model.root.walk():
        if node.path in wanted:
            # Up the rows the view shows, so the range row of a long level opens too.
            index = tree.proxy.mapFromSource(tree.model.index_of(node)).parent()
            if tree.model.index_of(node).isValid():
                while index.isValid():
                    tree.view.expand(index)
                    index = index.parent()
                continue
            parent = node.parent
            while parent is not None and parent is not tree.model.root:
                tree.view.expand(tree.proxy.mapFromSource(tree.model.index_of(parent)))
                parent = parent.parent


def find_node(root: ModuleNode, path: str) -> ModuleNode | None:
    return next((node for node in root.walk() if node.path == path), None)
