"""Collapse runs of identical numbered blocks (``layers.0`` .. ``layers.31``) into one node.

Deep models repeat the same block dozens of times; showing it once with a count
keeps the tree readable. The result is a new tree; the original is not changed.
"""

from __future__ import annotations

from ckpt_gui.core.tree.build import ModuleNode
from ckpt_gui.core.tree.ghosts import is_ghost


class GroupNode(ModuleNode):
    """Stands for ``members`` (identical sibling blocks); its children copy the first one.

    Totals (parameters, bytes, tensor count) are summed over all members; the rows
    below it describe one block (the first), with that block's real tensor names.
    """

    __slots__ = ("members",)

    def __init__(self, members: list[ModuleNode], parent: ModuleNode) -> None:
        first, last = members[0], members[-1]
        name = f"{{{first.name}..{last.name}}}"
        prefix = first.path.rsplit(".", 1)[0] if "." in first.path else ""
        super().__init__(name, f"{prefix}.{name}" if prefix else name, parent)
        self.members = members
        self.parameters = sum(m.parameters for m in members)
        self.nbytes = sum(m.nbytes for m in members)
        self.tensor_count = sum(m.tensor_count for m in members)


def block_signature(node: ModuleNode) -> tuple[tuple[str, str, tuple[int, ...], bool], ...]:
    """What makes two blocks interchangeable: relative tensor names, dtypes, shapes, and
    whether the checkpoint has them (a comparison's ghost rows never merge with real ones)."""
    cut = len(node.path) + 1
    return tuple(
        (n.path[cut:], n.tensor.dtype, n.tensor.shape, is_ghost(n.tensor))
        for n in node.walk()
        if n.tensor is not None
    )


def group_repeated_blocks(root: ModuleNode, min_run: int = 2) -> ModuleNode:
    """A copy of ``root`` where runs of >= ``min_run`` consecutive, identical numbered
    siblings become one GroupNode."""
    new_root = _copy(root, None)
    stack: list[tuple[ModuleNode, ModuleNode]] = [(root, new_root)]
    while stack:
        original, copy = stack.pop()
        for run in _runs(original.children, min_run):
            if len(run) == 1:
                child = _attach(copy, _copy(run[0], copy))
                stack.append((run[0], child))
            else:
                group = _attach(copy, GroupNode(run, copy))
                stack.append((run[0], group))
    return new_root


def _runs(children: list[ModuleNode], min_run: int) -> list[list[ModuleNode]]:
    if len(children) < min_run or not all(c.name.isdigit() and not c.is_tensor for c in children):
        return [[c] for c in children]
    runs: list[list[ModuleNode]] = []
    previous_signature: object = None
    for child in children:
        signature = block_signature(child)
        if (
            runs
            and signature == previous_signature
            and int(child.name) == int(runs[-1][-1].name) + 1
        ):
            runs[-1].append(child)
        else:
            runs.append([child])
        previous_signature = signature
    out: list[list[ModuleNode]] = []
    for run in runs:
        out.extend([run] if len(run) >= min_run else [[c] for c in run])
    return out


def _copy(node: ModuleNode, parent: ModuleNode | None) -> ModuleNode:
    copy = ModuleNode(node.name, node.path, parent, node.tensor)
    copy.parameters, copy.nbytes, copy.tensor_count = (
        node.parameters,
        node.nbytes,
        node.tensor_count,
    )
    copy.quant, copy.bookkeeping = node.quant, node.bookkeeping
    return copy


def _attach(parent: ModuleNode, child: ModuleNode) -> ModuleNode:
    child.row = len(parent.children)
    parent.children.append(child)
    parent._index[child.name] = child
    return child
