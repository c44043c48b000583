"""Find the weight sets in an unpickled torch file: state dicts and nn.Module objects.

A file may hold several: a training checkpoint has ``model`` and ``ema``
modules or state dicts, an optimizer's ``state`` (moments keyed by parameter
index), a DDP ``module``. Each becomes a ``WeightSet``: a dotted path to it in
the file, its kind, and its tensors under state-dict names. A module's names
come from walking ``_parameters``, ``_buffers`` (minus
``_non_persistent_buffers_set``, which ``state_dict()`` leaves out too) and
``_modules``, as ``nn.Module.state_dict`` does; TorchScript objects
(``__torch__.*``) keep their tensors as plain attributes.

The default set is the one training code conventionally loads (``state_dict``,
``model_state_dict``, ``model``, ``module``, ...), else the largest.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from ckpt_gui.core.pickles.reconstruct import TensorRef
from ckpt_gui.core.pickles.unpickler import PickledObject

# Where training frameworks keep the model weights, most conventional first.
PREFERRED_KEYS = (
    "state_dict",
    "model_state_dict",
    "model",
    "module",
    "net",
    "network",
    "model_ema",
    "ema",
    "weights",
    "params",
)
_SEARCH_DEPTH = 6
_MODULE_DEPTH = 64


@dataclass
class WeightSet:
    """Tensors found at ``path`` (dotted; "" is the file's top level)."""

    path: str
    kind: str  # "state_dict", "module", "torchscript" or "optimizer"
    tensors: dict[str, TensorRef]
    module_classes: dict[str, str] = field(default_factory=dict)
    module: PickledObject | None = None

    @property
    def parameters(self) -> int:
        return sum(t.numel for t in self.tensors.values())

    def summary(self) -> dict[str, Any]:
        root_class = self.module_classes.get("")
        return {
            "key": self.path,
            "kind": self.kind,
            "tensors": len(self.tensors),
            "parameters": self.parameters,
            "class": root_class,
        }


def is_module(value: Any) -> bool:
    """An nn.Module pickled whole: an object whose state holds ``_parameters`` and ``_modules``."""
    if not isinstance(value, PickledObject):
        return False
    attributes = value.attributes
    return isinstance(attributes.get("_parameters"), dict) and isinstance(
        attributes.get("_modules"), dict
    )


def is_torchscript_object(value: Any) -> bool:
    return isinstance(value, PickledObject) and value.name.startswith("__torch__.")


def is_state_dict(value: Any) -> bool:
    return (
        isinstance(value, dict)
        and len(value) > 0
        and all(isinstance(k, str) for k in value)
        and all(isinstance(v, TensorRef) for v in value.values())
    )


def is_optimizer_state(value: Any) -> bool:
    return (
        isinstance(value, dict)
        and isinstance(value.get("state"), dict)
        and (isinstance(value.get("param_groups"), list))
    )


def find_weight_sets(root: Any) -> list[WeightSet]:
    """Every weight set in the file, the default first."""
    found: list[WeightSet] = []
    _search(root, [], found, set(), 0)
    found = [w for w in found if w.tensors]
    found.sort(key=_preference)
    return found


def _preference(weights: WeightSet) -> tuple[int, int, int]:
    first = weights.path.split(".", 1)[0]
    if weights.kind == "optimizer":
        rank = len(PREFERRED_KEYS) + 2
    elif weights.path == "":
        rank = -1
    elif first in PREFERRED_KEYS:
        rank = PREFERRED_KEYS.index(first)
    else:
        rank = len(PREFERRED_KEYS)
    return (rank, weights.path.count("."), -weights.parameters)


def _search(
    value: Any, path: list[str], found: list[WeightSet], seen: set[int], depth: int
) -> None:
    if depth > _SEARCH_DEPTH or id(value) in seen:
        return
    if isinstance(value, dict | list | tuple | PickledObject):
        seen.add(id(value))
    dotted = ".".join(path)
    if is_state_dict(value):
        found.append(WeightSet(dotted, "state_dict", dict(value)))
        return
    if is_module(value) or is_torchscript_object(value):
        found.append(module_weights(value, dotted))
        return
    if is_optimizer_state(value):
        found.append(WeightSet(dotted, "optimizer", _optimizer_tensors(value["state"])))
        return
    if isinstance(value, dict):
        for key, item in value.items():
            if isinstance(key, str | int):
                _search(item, [*path, str(key)], found, seen, depth + 1)
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value[:64]):
            _search(item, [*path, str(index)], found, seen, depth + 1)
    elif isinstance(value, PickledObject):
        for key, item in value.attributes.items():
            _search(item, [*path, key], found, seen, depth + 1)


def module_weights(module: PickledObject, path: str) -> WeightSet:
    """A module's tensors under state-dict names, and the class of each submodule."""
    tensors: dict[str, TensorRef] = {}
    classes: dict[str, str] = {}
    torchscript = is_torchscript_object(module)
    _walk_module(module, "", tensors, classes, set(), 0, torchscript)
    return WeightSet(path, "torchscript" if torchscript else "module", tensors, classes, module)


def _walk_module(
    module: PickledObject,
    prefix: str,
    tensors: dict[str, TensorRef],
    classes: dict[str, str],
    seen: set[int],
    depth: int,
    torchscript: bool,
) -> None:
    if depth > _MODULE_DEPTH or id(module) in seen:
        return
    seen.add(id(module))
    classes[prefix.rstrip(".")] = _class_name(module.name)
    attributes = module.attributes
    if torchscript:
        for name, value in attributes.items():
            if isinstance(value, TensorRef):
                tensors[prefix + name] = value
            elif is_torchscript_object(value):
                _walk_module(value, f"{prefix}{name}.", tensors, classes, seen, depth + 1, True)
        return
    for name, value in _items(attributes.get("_parameters")):
        if isinstance(value, TensorRef):
            tensors[prefix + name] = value
    skipped = attributes.get("_non_persistent_buffers_set")
    skipped = skipped if isinstance(skipped, set | frozenset) else set()
    for name, value in _items(attributes.get("_buffers")):
        if isinstance(value, TensorRef) and name not in skipped:
            tensors[prefix + name] = value
    for name, value in _items(attributes.get("_modules")):
        if isinstance(value, PickledObject):
            _walk_module(value, f"{prefix}{name}.", tensors, classes, seen, depth + 1, False)


# TorchScript renames a class it compiles more than once in a process
# (``torch.nn.modules.linear.___torch_mangle_5.Linear``): the number says nothing about the file.
_MANGLE = re.compile(r"___torch_mangle_\d+\.")


def _class_name(name: str) -> str:
    # TorchScript prefixes classes with __torch__ (``__torch__.torch.nn.modules.linear.Linear``).
    name = _MANGLE.sub("", name) if name.startswith("__torch__.") else name
    return name[len("__torch__.") :] if name.startswith("__torch__.torch.") else name


def _items(value: Any) -> list[tuple[str, Any]]:
    if not isinstance(value, dict):
        return []
    return [(k, v) for k, v in value.items() if isinstance(k, str)]


def _optimizer_tensors(state: dict[Any, Any]) -> dict[str, TensorRef]:
    tensors: dict[str, TensorRef] = {}
    for index, entry in state.items():
        if isinstance(entry, dict):
            for name, value in entry.items():
                if isinstance(value, TensorRef):
                    tensors[f"state.{index}.{name}"] = value
    return tensors


def select(sets: list[WeightSet], key: str | None) -> WeightSet | None:
    """The set at ``key`` (the default when None); None when there is no such set."""
    if not sets:
        return None
    if key is None:
        return sets[0]
    for weights in sets:
        if weights.path == key:
            return weights
    return None
