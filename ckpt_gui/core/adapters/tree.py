"""The base model's module tree with an adapter's tensors inside the modules they adapt.

Adapter tensors are renamed into the base's naming (``base_model.model.`` removed)
and placed right after the tensors of their module, as ``AdapterTensor`` rows so a
view can mark them. Without a base, the tree is the adapter's own (renamed) tensors.
"""

from __future__ import annotations

import dataclasses

from ckpt_gui.core.adapters.keys import base_name
from ckpt_gui.core.adapters.summary import AdaptedModule, AdapterInfo
from ckpt_gui.core.model import Checkpoint, TensorInfo
from ckpt_gui.core.tree.build import ModuleNode, build_tree


class AdapterTensor(TensorInfo):
    """A tensor of the adapter (``adapter_key`` is its name in the adapter file)."""

    adapter_tensor = True

    @property
    def adapter_key(self) -> str:
        return "base_model.model." + self.name


def is_adapter_tensor(tensor: TensorInfo | None) -> bool:
    return isinstance(tensor, AdapterTensor)


def adapted_tensors(adapter: Checkpoint, base: Checkpoint | None) -> list[TensorInfo]:
    """The base's tensors (if known) with the adapter's placed in their modules."""
    own = [
        AdapterTensor(**{f.name: getattr(t, f.name) for f in dataclasses.fields(t)})
        for t in adapter.tensors
    ]
    renamed: list[TensorInfo] = [dataclasses.replace(t, name=base_name(t.name)) for t in own]
    if base is None:
        return renamed
    base_names = {t.name for t in base.tensors}
    # A modules_to_save copy takes the place of the base tensor it replaces.
    replacing = {t.name: t for t in renamed if t.name in base_names}
    by_module: dict[str, list[TensorInfo]] = {}
    for tensor in (t for t in renamed if t.name not in replacing):
        module = _owner(tensor.name)
        by_module.setdefault(module, []).append(tensor)
    last: dict[str, int] = {}
    for index, tensor in enumerate(base.tensors):
        last[tensor.name.rpartition(".")[0]] = index
    after: dict[int, list[TensorInfo]] = {}
    unplaced: list[TensorInfo] = []
    for module, tensors in by_module.items():
        if module in last:
            after.setdefault(last[module], []).extend(tensors)
        else:
            unplaced.extend(tensors)  # no such module in the base: shown at the end
    result: list[TensorInfo] = []
    for index, tensor in enumerate(base.tensors):
        # Base tensors name their file absolutely: the tab's root is the adapter's folder.
        if base.root is not None and tensor.name not in replacing:
            tensor = dataclasses.replace(tensor, file=str(base.root / tensor.file))
        result.append(replacing.get(tensor.name, tensor))
        result.extend(after.get(index, ()))
    return result + unplaced


def _owner(name: str) -> str:
    """The base module an adapter tensor (base naming) belongs to."""
    for marker in (".lora_", ".base_layer."):
        if marker in name:
            return name.split(marker)[0]
    return name.rpartition(".")[0]


def adapted_tree(adapter: Checkpoint, base: Checkpoint | None) -> ModuleNode:
    return build_tree(adapted_tensors(adapter, base))


def marks(info: AdapterInfo) -> dict[str, str]:
    """Module path -> a short mark (``LoRA r=8 x2.0``, ``+DoRA``) for adapted modules,
    and ``saved`` for the base tensors the adapter replaces."""
    out = {m.module: _mark(m) for m in info.modules}
    for replaced in info.replaced:
        out.setdefault(replaced, "replaced by the adapter")
    return out


def _mark(module: AdaptedModule) -> str:
    return f"LoRA r={module.r} ×{module.scale:g}" + (" +DoRA" if module.dora else "")


def base_of(adapter: Checkpoint) -> Checkpoint | None:
    """The adapter's base opened from where ``find_base`` found it (headers only)."""
    info = adapter.adapter
    if info is None or info.base_path is None:
        return None
    from ckpt_gui.core.errors import CheckpointError
    from ckpt_gui.core.formats import open_checkpoint

    try:
        return open_checkpoint(info.base_path)
    except CheckpointError:
        return None
