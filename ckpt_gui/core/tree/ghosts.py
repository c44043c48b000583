"""A module tree that also shows what the model expects but the checkpoint lacks.

Missing keys become "ghost" tensors placed where they would be (in the module their
name belongs to, after its real siblings), carrying the model's expected shape and
dtype. Ghosts hold no bytes and count no parameters, so every total in the tree
stays the checkpoint's own.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping

from ckpt_gui.core.model import TensorInfo
from ckpt_gui.core.tree.build import ModuleNode, build_tree

GHOST_FILE = "(not in checkpoint)"


class GhostTensor(TensorInfo):
    """A tensor the model expects and the checkpoint does not have."""

    ghost = True

    @property
    def parameters(self) -> int:
        return 0

    @property
    def expected_parameters(self) -> int:
        return math.prod(self.shape)


def is_ghost(tensor: TensorInfo | None) -> bool:
    return isinstance(tensor, GhostTensor)


def ghost_tensor(name: str, shape: tuple[int, ...], dtype: str) -> GhostTensor:
    return GhostTensor(name=name, dtype=dtype, shape=tuple(shape), nbytes=0, file=GHOST_FILE)


def with_ghosts(tensors: Iterable[TensorInfo], ghosts: Iterable[GhostTensor]) -> list[TensorInfo]:
    """``tensors`` in their order, each ghost inserted after the last real tensor that
    shares the longest dotted prefix with it (so it lands among its siblings)."""
    real = list(tensors)
    last_at: dict[str, int] = {}
    for index, tensor in enumerate(real):
        parts = tensor.name.split(".")
        for depth in range(1, len(parts)):
            last_at[".".join(parts[:depth])] = index
    after: dict[int, list[TensorInfo]] = {}
    for ghost in ghosts:
        parts = ghost.name.split(".")
        position = len(real) - 1
        for depth in range(len(parts) - 1, 0, -1):
            found = last_at.get(".".join(parts[:depth]))
            if found is not None:
                position = found
                break
        after.setdefault(position, []).append(ghost)
    result: list[TensorInfo] = list(after.get(-1, []))
    for index, tensor in enumerate(real):
        result.append(tensor)
        result.extend(after.get(index, []))
    return result


def tree_with_ghosts(
    tensors: Iterable[TensorInfo], ghosts: Mapping[str, tuple[tuple[int, ...], str]]
) -> ModuleNode:
    """The checkpoint's tree plus ghost rows; ``ghosts`` maps a ghost name (the
    checkpoint's naming) to the model's ``(shape, dtype)``."""
    ghost_infos = [ghost_tensor(name, shape, dtype) for name, (shape, dtype) in ghosts.items()]
    root = build_tree(with_ghosts(tensors, ghost_infos))
    # Tensor counts stay the checkpoint's own, like parameters and bytes.
    for node in reversed(list(root.walk())):
        if is_ghost(node.tensor):
            node.tensor_count = 0
        elif not node.is_tensor:
            node.tensor_count = sum(c.tensor_count for c in node.children)
    return root
