"""State dicts of objects that ``torch.load(weights_only=True)`` already built.

Local files never come here: ``formats/pytorch.py`` reads them with our own
non-executing reader. The Hub's remote zip listing still hands torch's
weights-only loader the downloaded ``data.pkl`` (on the meta device, after
the globals were checked), and uses these helpers to find the weights in the
result.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ckpt_gui.core.dtypes import nbytes_for, torch_dtype_name
from ckpt_gui.core.errors import CheckpointError
from ckpt_gui.core.model import TensorInfo
from ckpt_gui.core.pickles.weights import PREFERRED_KEYS

# -- torch objects (remote zips are listed through torch.load on the meta device) --

# Where training frameworks keep the model weights: the same order our own reader uses.
STATE_DICT_KEYS = PREFERRED_KEYS


def _is_tensor(value: Any) -> bool:
    import torch

    return isinstance(value, torch.Tensor)


def _is_state_dict(value: Any) -> bool:
    return (
        isinstance(value, Mapping)
        and len(value) > 0
        and all(isinstance(k, str) for k in value)
        and all(_is_tensor(v) for v in value.values())
    )


def find_state_dict(loaded: Any, path: Path) -> tuple[Mapping[str, Any], str, dict[str, Any]]:
    """Find the weights inside a (possibly nested) training checkpoint.

    Returns the state dict, the dotted key path where it was found ("" at top
    level) and a summary of the other top-level entries as metadata.
    """
    if _is_state_dict(loaded):
        return loaded, "", {}
    if not isinstance(loaded, Mapping):
        raise CheckpointError(path, f"contains a {type(loaded).__name__}, not a state dict")
    location = _search(loaded, depth=0)
    if location is None:
        if len(loaded) == 0:
            raise CheckpointError(path, "contains an empty dict: no tensors")
        raise CheckpointError(path, "no state dict found (no entry holds a dict of tensors)")
    node: Any = loaded
    for part in location:
        node = node[part]
    metadata = {str(k): summarize(v) for k, v in loaded.items() if k != location[0]}
    return node, ".".join(location), metadata


def _search(mapping: Mapping[Any, Any], depth: int) -> list[str] | None:
    if depth > 3:
        return None
    keys = [k for k in STATE_DICT_KEYS if k in mapping] + [
        k for k in mapping if isinstance(k, str) and k not in STATE_DICT_KEYS
    ]
    for key in keys:
        value = mapping[key]
        if _is_state_dict(value):
            return [key]
        if isinstance(value, Mapping) and key in STATE_DICT_KEYS:
            inner = _search(value, depth + 1)
            if inner is not None:
                return [key, *inner]
    return None


def summarize(value: Any) -> Any:
    """A short, JSON-friendly description of a non-weight checkpoint entry."""
    if value is None or isinstance(value, bool | int | float | str):
        return value if not isinstance(value, str) or len(value) < 500 else value[:500] + "..."
    if _is_tensor(value):
        return f"tensor {list(value.shape)} {torch_dtype_name(value.dtype)}"
    if isinstance(value, Mapping):
        if "param_groups" in value and "state" in value:
            return f"optimizer state ({len(value['param_groups'])} parameter groups)"
        if (
            all(isinstance(v, bool | int | float | str | None) for v in value.values())
            and len(value) <= 50
        ):
            return {str(k): summarize(v) for k, v in value.items()}
        return f"dict with {len(value)} entries"
    if isinstance(value, list | tuple):
        return f"{type(value).__name__} of {len(value)} items"
    return type(value).__name__


def tensor_info(name: str, tensor: Any, relative: str) -> TensorInfo:
    dtype = torch_dtype_name(tensor.dtype)
    shape = tuple(int(d) for d in tensor.shape)
    parameters = 1
    for dim in shape:
        parameters *= dim
    return TensorInfo(name, dtype, shape, _nbytes(dtype, parameters, tensor), relative, None)


def _nbytes(dtype: str, parameters: int, tensor: Any) -> int:
    try:
        return nbytes_for(dtype, parameters)
    except KeyError:
        return int(parameters * tensor.element_size())
