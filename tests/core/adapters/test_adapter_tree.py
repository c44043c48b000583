"""The base's tree with the adapter's tensors inside the modules peft adapts."""

from __future__ import annotations

from pathlib import Path

from ckpt_gui.core.adapters.tree import adapted_tree, base_of, is_adapter_tensor, marks
from ckpt_gui.core.targets import open_target
from tests.support.cli import run_cli


def test_adapter_tensors_sit_in_their_base_modules(rich_pair: tuple[Path, Path]) -> None:
    base_path, adapter_path = rich_pair
    adapter = open_target(adapter_path)
    base = base_of(adapter)
    assert base is not None and base.source == str(base_path)
    tree = adapted_tree(adapter, base)
    leaves = {node.path: node.tensor for node in tree.walk() if node.tensor is not None}
    # Every base tensor is there; every adapter tensor is there under its base name.
    assert {t.name for t in base.tensors} <= set(leaves)
    for tensor in adapter.tensors:
        name = tensor.name.removeprefix("base_model.model.")
        assert is_adapter_tensor(leaves[name]), name
        assert leaves[name].shape == tensor.shape  # type: ignore[union-attr]
    # modules_to_save: the adapter's copy replaces the base row (no duplicate).
    assert is_adapter_tensor(leaves["lm_head.weight"])
    assert not any(n.name.endswith("(tensor)") for n in tree.walk())
    q = tree.find("model.layers.1.self_attn.q_proj")
    assert q is not None and {c.name for c in q.children} == {
        "weight",
        "lora_A",
        "lora_B",
        "lora_magnitude_vector",
    }
    assert adapter.adapter is not None
    assert marks(adapter.adapter)["model.layers.1.self_attn.q_proj"] == "LoRA r=2 ×4 +DoRA"


def test_without_base_the_tree_is_the_adapters_own(rich_pair: tuple[Path, Path]) -> None:
    _, adapter_path = rich_pair
    adapter = open_target(adapter_path)
    tree = adapted_tree(adapter, None)
    assert tree.tensor_count == len(adapter.tensors)
    assert tree.find("model.layers.0.self_attn.q_proj.lora_A.weight") is not None


def test_inspect_text_marks_adapted_modules(rich_pair: tuple[Path, Path]) -> None:
    base_path, adapter_path = rich_pair
    result = run_cli("inspect", str(adapter_path))
    assert result.returncode == 0, result.stderr
    assert f"base tree   {base_path}" in result.stdout
    assert "v_proj/" in result.stdout and "[LoRA r=4 ×0.75 +DoRA]" in result.stdout
    assert "rank        r=4, lora_alpha=8, scale=2 (alpha/r)" in result.stdout
