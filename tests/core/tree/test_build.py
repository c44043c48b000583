from __future__ import annotations

from ckpt_gui.core.model import TensorInfo
from ckpt_gui.core.tree.build import build_tree


def tensor(name: str, shape: tuple[int, ...], dtype: str = "F32") -> TensorInfo:
    size = 1
    for d in shape:
        size *= d
    return TensorInfo(
        name, dtype, shape, size * (2 if dtype == "BF16" else 4), "model.safetensors", 0
    )


def test_tree_aggregates_and_orders_numerically() -> None:
    tensors = [
        tensor("model.layers.10.mlp.weight", (4, 4)),
        tensor("model.layers.2.mlp.weight", (4, 4)),
        tensor("model.layers.2.mlp.bias", (4,), "BF16"),
        tensor("lm_head.weight", (8, 4)),
    ]
    root = build_tree(tensors)
    assert [c.name for c in root.children] == ["model", "lm_head"]
    layers = root.find("model.layers")
    assert layers is not None
    assert [c.name for c in layers.children] == ["2", "10"]
    assert layers.parameters == 16 + 16 + 4
    assert layers.nbytes == 64 + 64 + 8
    assert layers.tensor_count == 3
    assert root.parameters == 36 + 32
    assert [c.row for c in layers.children] == [0, 1]
    leaf = root.find("model.layers.2.mlp.bias")
    assert leaf is not None and leaf.is_tensor and leaf.parent is not None
    assert leaf.parent.path == "model.layers.2.mlp"


def test_tensor_and_module_with_same_name_both_kept() -> None:
    root = build_tree([tensor("a.b", (2,)), tensor("a.b.c", (3,))])
    a = root.find("a")
    assert a is not None
    assert sorted(c.name for c in a.children) == ["b", "b (tensor)"]
    assert root.parameters == 5


def test_deep_tree_does_not_recurse() -> None:
    name = ".".join(f"m{i}" for i in range(3000))
    root = build_tree([tensor(name, (1,))])
    assert root.parameters == 1
