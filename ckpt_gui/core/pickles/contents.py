"""The rest of a torch file as plain data, and the transformers config it carries.

``render`` turns the unpickled graph into JSON-friendly values for the tab
and ``inspect --json``: tensors as one line (``tensor [3, 4] F32``), a placeholder
as ``{"__class__": name, ...its state}``, a weight set as a one-line summary
(its tensors are listed as the checkpoint's tensors). Bounded in depth, items
and total size, and safe on cycles, so a hostile file cannot blow it up.

``find_config`` recovers a pickled ``PretrainedConfig`` (a model's ``config``
attribute) as the dict ``config.json`` would hold.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ckpt_gui.core.pickles.reconstruct import NumpyArray, NumpyDtype, TensorRef, unwrap
from ckpt_gui.core.pickles.unpickler import Global, PersistentRef, PickledObject
from ckpt_gui.core.pickles.weights import WeightSet, is_module, is_torchscript_object

MAX_DEPTH = 12
MAX_ITEMS = 200
MAX_STRING = 500
MAX_NODES = 20_000
# Attributes every nn.Module has: hooks and bookkeeping, noise in a contents view.
_MODULE_NOISE = frozenset(
    {
        "training",
        "_parameters",
        "_buffers",
        "_non_persistent_buffers_set",
        "_modules",
        "_backward_pre_hooks",
        "_backward_hooks",
        "_is_full_backward_hook",
        "_forward_hooks",
        "_forward_hooks_with_kwargs",
        "_forward_hooks_always_called",
        "_forward_pre_hooks",
        "_forward_pre_hooks_with_kwargs",
        "_state_dict_hooks",
        "_state_dict_pre_hooks",
        "_load_state_dict_pre_hooks",
        "_load_state_dict_post_hooks",
        "_compiled_call_impl",
    }
)


def describe_tensor(tensor: TensorRef) -> str:
    return f"tensor {list(tensor.shape)} {tensor.dtype}"


class _Renderer:
    def __init__(self, weight_sets: list[WeightSet]) -> None:
        self.sets = {id(w.module): w for w in weight_sets if w.module is not None}
        self.state_dicts = {w.path: w for w in weight_sets if w.module is None}
        self.nodes = 0
        self.path_ids: set[int] = set()

    def render(self, value: Any, path: str, depth: int) -> Any:
        self.nodes += 1
        value = unwrap(value)
        if value is None or isinstance(value, bool | int | float):
            return value
        if isinstance(value, str):
            return value if len(value) <= MAX_STRING else value[:MAX_STRING] + "..."
        if isinstance(value, bytes | bytearray):
            return f"{type(value).__name__} of {len(value):,} bytes"
        if isinstance(value, TensorRef):
            return describe_tensor(value)
        if isinstance(value, Global):
            return value.dotted
        if isinstance(value, np.generic):
            return value.item() if value.dtype.kind in "biuf" else repr(value)
        if isinstance(value, np.ndarray):
            if value.size <= 16 and value.dtype.kind in "biuf":
                return value.tolist()
            return f"ndarray {list(value.shape)} {value.dtype}"
        if isinstance(value, np.dtype):
            return str(value)
        if isinstance(value, PersistentRef):
            return f"persistent id {value.pid!r}"[:MAX_STRING]
        if isinstance(value, complex | slice):
            return repr(value)
        if depth >= MAX_DEPTH or self.nodes > MAX_NODES:
            return "..."
        if id(value) in self.path_ids:
            return "<cycle>"
        self.path_ids.add(id(value))
        try:
            return self._container(value, path, depth)
        finally:
            self.path_ids.discard(id(value))

    def _container(self, value: Any, path: str, depth: int) -> Any:
        if isinstance(value, dict):
            weights = self.state_dicts.get(path)
            if weights is not None:
                return f"weights: {len(weights.tensors)} tensors ({weights.kind})"
            return self._mapping(value.items(), path, depth)
        if isinstance(value, list | tuple | set | frozenset):
            items = list(value)
            shown = [
                self.render(v, f"{path}.{i}" if path else str(i), depth + 1)
                for i, v in enumerate(items[:MAX_ITEMS])
            ]
            if len(items) > MAX_ITEMS:
                shown.append(f"... {len(items) - MAX_ITEMS:,} more")
            return shown
        if isinstance(value, PickledObject):
            return self._object(value, path, depth)
        if isinstance(value, NumpyArray | NumpyDtype):
            return repr(value)
        return type(value).__name__

    def _mapping(self, items: Any, path: str, depth: int) -> dict[str, Any]:
        result: dict[str, Any] = {}
        for count, (key, item) in enumerate(items):
            if count >= MAX_ITEMS:
                result["..."] = "more entries"
                break
            name = key if isinstance(key, str) else repr(unwrap(key))[:100]
            result[name] = self.render(item, f"{path}.{name}" if path else name, depth + 1)
        return result

    def _object(self, value: PickledObject, path: str, depth: int) -> Any:
        if value.name.startswith("omegaconf."):
            plain = _omegaconf_value(value)
            if plain is not value:
                if isinstance(plain, dict):
                    content = self._mapping(plain.items(), path, depth)
                    return {"__class__": value.name, **content}
                return self.render(plain, path, depth + 1)
        result: dict[str, Any] = {"__class__": value.name}
        weights = self.sets.get(id(value))
        if weights is not None:
            result["__weights__"] = f"{len(weights.tensors)} tensors ({weights.kind})"
        attributes = value.attributes
        if is_module(value) or is_torchscript_object(value):
            attributes = {
                k: v
                for k, v in attributes.items()
                if k not in _MODULE_NOISE
                and not k.startswith("_")
                and not isinstance(v, TensorRef)
                and not is_torchscript_object(v)
            }
        elif not attributes and value.state is not None:
            result["__state__"] = self.render(value.state, path, depth + 1)
        if value.args and not attributes and value.state is None:
            result["__args__"] = self.render(list(value.args), path, depth + 1)
        if value.entries:
            result["__entries__"] = self._mapping(value.entries, path, depth)
        if value.items:
            result["__items__"] = self.render(list(value.items), path, depth + 1)
        result.update(self._mapping(attributes.items(), path, depth))
        return result


def _omegaconf_value(value: PickledObject) -> Any:
    """An OmegaConf container's content (Lightning/Hydra ``hyper_parameters``), or ``value``.

    DictConfig/ListConfig keep their items in ``_content``, leaf nodes in ``_val``;
    the rest of their state (parents, flags) is bookkeeping, not configuration.
    """
    attributes = value.attributes
    if "_val" in attributes:
        return attributes["_val"]
    content = attributes.get("_content")
    if isinstance(content, dict | list):
        return content
    return value


def render(value: Any, weight_sets: list[WeightSet]) -> Any:
    """``value`` as JSON-friendly plain data (see the module docstring)."""
    return _Renderer(weight_sets).render(value, "", 0)


def is_transformers_config(value: Any) -> bool:
    return (
        isinstance(value, PickledObject)
        and value.name.startswith("transformers.")
        and value.name.endswith("Config")
    )


def find_config(root: Any, weights: WeightSet | None) -> dict[str, Any] | None:
    """The embedded transformers config as a ``config.json`` dict, if the file has one."""
    candidate = None
    if weights is not None and weights.module is not None:
        candidate = weights.module.attributes.get("config")
    if not is_transformers_config(candidate):
        candidate = _first_config(root, 0, set())
    if candidate is None:
        return None
    config = config_dict(candidate)
    if weights is not None and not config.get("architectures"):
        root_class = weights.module_classes.get("")
        if root_class and root_class.startswith("transformers.models."):
            config["architectures"] = [root_class.rsplit(".", 1)[-1]]
    return config


def _first_config(value: Any, depth: int, seen: set[int]) -> PickledObject | None:
    if depth > 4 or id(value) in seen:
        return None
    seen.add(id(value))
    if is_transformers_config(value):
        assert isinstance(value, PickledObject)
        return value
    children: list[Any] = []
    if isinstance(value, dict):
        children = list(value.values())
    elif isinstance(value, PickledObject):
        attributes = value.attributes
        children = [attributes["config"]] if "config" in attributes else list(attributes.values())
    for child in children[:MAX_ITEMS]:
        found = _first_config(child, depth + 1, seen)
        if found is not None:
            return found
    return None


def config_dict(config: PickledObject) -> dict[str, Any]:
    """A pickled config's attributes as ``to_dict()`` would give them."""
    result: dict[str, Any] = {}
    for key, value in config.attributes.items():
        if key.startswith("_") and key != "_name_or_path":
            continue  # runtime state (_attn_implementation_internal, ...), not configuration
        plain = _plain(value, 0)
        if plain is not _SKIP:
            result[key] = plain
    private = config.attributes
    if "_output_attentions" in private and isinstance(private["_output_attentions"], bool):
        result.setdefault("output_attentions", private["_output_attentions"])
    result.setdefault("model_type", model_type_of(config.name))
    return result


def model_type_of(config_class: str) -> str:
    """``transformers.models.bert.configuration_bert.BertConfig`` -> ``bert``."""
    parts = config_class.split(".")
    if len(parts) >= 3 and parts[1] == "models":
        return parts[2]
    return parts[-1].removesuffix("Config").lower()


_SKIP = object()


def _plain(value: Any, depth: int) -> Any:
    value = unwrap(value)
    if depth > 8:
        return _SKIP
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, Global):
        # torch dtypes pickle as globals (torch.float32): config.json spells them "float32".
        return value.qualname if value.module == "torch" else value.dotted
    if isinstance(value, list | tuple):
        items = [_plain(v, depth + 1) for v in value[:10_000]]
        return [v for v in items if v is not _SKIP]
    if isinstance(value, dict):
        out = {}
        for k, v in list(value.items())[:10_000]:
            plain = _plain(v, depth + 1)
            if plain is not _SKIP and isinstance(k, str | int):
                out[str(k)] = plain
        return out
    if is_transformers_config(value):
        assert isinstance(value, PickledObject)
        return config_dict(value)
    return _SKIP
