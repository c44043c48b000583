"""Dotted tensor names -> a module tree with aggregated parameter counts and bytes."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from ckpt_gui.core.model import TensorInfo
from ckpt_gui.core.quant.analysis import Quantization, QuantModule


class ModuleNode:
    """A module (inner node) or a tensor (leaf) in the checkpoint's tree.

    Built once and not changed afterwards. ``parent`` and ``row`` are kept so
    that a Qt model can answer ``parent()`` in constant time.
    """

    __slots__ = (
        "_index",
        "bookkeeping",
        "children",
        "name",
        "nbytes",
        "parameters",
        "parent",
        "path",
        "quant",
        "row",
        "tensor",
        "tensor_count",
    )

    def __init__(
        self, name: str, path: str, parent: ModuleNode | None, tensor: TensorInfo | None = None
    ) -> None:
        self.name = name
        self.path = path
        self.parent = parent
        self.tensor = tensor
        self.children: list[ModuleNode] = []
        self._index: dict[str, ModuleNode] = {}
        self.row = 0
        self.parameters = tensor.parameters if tensor else 0
        self.nbytes = tensor.nbytes if tensor else 0
        self.tensor_count = 1 if tensor else 0
        # Quantization facts: on a quantized module its method/bits/group; on a tensor
        # whether it is bookkeeping (scales, zeros...) rather than parameters.
        self.quant: QuantModule | None = None
        self.bookkeeping = False

    @property
    def is_tensor(self) -> bool:
        return self.tensor is not None

    def child(self, name: str) -> ModuleNode | None:
        return self._index.get(name)

    def walk(self) -> Iterator[ModuleNode]:
        """This node and every node below it, depth first."""
        stack = [self]
        while stack:
            node = stack.pop()
            yield node
            stack.extend(reversed(node.children))

    def find(self, path: str) -> ModuleNode | None:
        node: ModuleNode | None = self
        for part in path.split(".") if path else []:
            node = node.child(part) if node else None
        return node

    def __repr__(self) -> str:
        return f"ModuleNode({self.path or '<root>'!r}, params={self.parameters}, children={len(self.children)})"


def build_tree(
    tensors: Iterable[TensorInfo], quantization: Quantization | None = None
) -> ModuleNode:
    """Group tensors by their dotted names; totals are summed up the tree.

    With ``quantization`` (``Checkpoint.quantization``) leaves count the model's
    parameters (packed values unpacked, bookkeeping zero) and quantized modules carry
    their facts; the bytes stay the stored ones.
    """
    root = ModuleNode("", "", None)
    for tensor in tensors:
        parts = tensor.name.split(".")
        node = root
        for depth, part in enumerate(parts[:-1]):
            existing = node._index.get(part)
            if existing is not None and existing.is_tensor:
                # A tensor and a module share a name ("a.b" and "a.b.c"): keep both visible.
                _rename(node, existing, f"{part} (tensor)")
                existing = None
            if existing is None:
                existing = _add(node, ModuleNode(part, ".".join(parts[: depth + 1]), node))
            node = existing
        leaf_name = parts[-1]
        if leaf_name in node._index:
            leaf_name = f"{leaf_name} (tensor)"
        leaf = _add(node, ModuleNode(leaf_name, tensor.name, node, tensor))
        if quantization is not None:
            leaf.parameters = quantization.parameters.get(tensor.name, leaf.parameters)
            leaf.bookkeeping = tensor.name in quantization.bookkeeping
    _finish(root)
    if quantization is not None:
        for path, module in quantization.modules.items():
            found = root.find(path)
            if found is not None and not found.is_tensor:
                found.quant = module
    return root


def _add(parent: ModuleNode, node: ModuleNode) -> ModuleNode:
    parent._index[node.name] = node
    parent.children.append(node)
    return node


def _rename(parent: ModuleNode, node: ModuleNode, name: str) -> None:
    del parent._index[node.name]
    node.name = name
    parent._index[name] = node


def _finish(root: ModuleNode) -> None:
    """Order numbered children numerically and sum totals bottom-up (iteratively: deep trees)."""
    order: list[ModuleNode] = list(root.walk())
    for node in reversed(order):
        if node.children and all(c.name.isdigit() for c in node.children):
            node.children.sort(key=lambda c: int(c.name))
        for row, child in enumerate(node.children):
            child.row = row
        if not node.is_tensor:
            node.parameters = sum(c.parameters for c in node.children)
            node.nbytes = sum(c.nbytes for c in node.children)
            node.tensor_count = sum(c.tensor_count for c in node.children)
