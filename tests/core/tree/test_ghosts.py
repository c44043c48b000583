"""Ghost rows: missing tensors placed where they would be, totals untouched."""

from __future__ import annotations

from ckpt_gui.core.model import TensorInfo
from ckpt_gui.core.tree.ghosts import ghost_tensor, is_ghost, tree_with_ghosts, with_ghosts


def real(name: str) -> TensorInfo:
    return TensorInfo(name, "F32", (2, 2), 16, "m.safetensors", 0)


def test_ghosts_follow_their_closest_relatives() -> None:
    tensors = [real("a.0.x.weight"), real("a.0.y.weight"), real("a.1.x.weight"), real("b.weight")]
    ghosts = [
        ghost_tensor("a.0.z.weight", (3,), "F32"),  # next to a.0.*
        ghost_tensor("a.2.x.weight", (2, 2), "F32"),  # after the last a.*
        ghost_tensor("c.weight", (1,), "F32"),  # nothing shared: at the end
    ]
    order = [t.name for t in with_ghosts(tensors, ghosts)]
    assert order == [
        "a.0.x.weight",
        "a.0.y.weight",
        "a.0.z.weight",
        "a.1.x.weight",
        "a.2.x.weight",
        "b.weight",
        "c.weight",
    ]


def test_ghost_tree_keeps_the_checkpoint_totals() -> None:
    tensors = [real("a.0.x.weight"), real("a.1.x.weight")]
    root = tree_with_ghosts(tensors, {"a.2.x.weight": ((4, 4), "BF16")})
    ghost = root.find("a.2.x.weight")
    assert ghost is not None and is_ghost(ghost.tensor)
    assert ghost.tensor.shape == (4, 4) and ghost.tensor.dtype == "BF16"
    assert ghost.tensor.expected_parameters == 16
    assert (root.parameters, root.nbytes, root.tensor_count) == (8, 32, 2)
    assert root.find("a.2").tensor_count == 0
    assert [c.name for c in root.find("a").children] == ["0", "1", "2"]
    assert not is_ghost(root.find("a.0.x.weight").tensor)
