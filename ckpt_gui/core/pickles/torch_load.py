"""A pickled checkpoint's state dict, through the weights-only loader, under a read lease.

torch maps a zip checkpoint's storages (``mmap=True``) so that only the pages
touched are read; a program that truncated the file meanwhile would kill the
process with SIGBUS when a page past the new end is touched. While the lease is
held, the kernel holds such a program instead (see ``source_lease``). Readers
call ``check`` before touching each tensor's bytes, get the one-line error once
a program waits, and ``close`` (after dropping every tensor they took) lets it go on.
"""

from __future__ import annotations

import os
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ckpt_gui.core.dtypes import nbytes_for, torch_dtype_name
from ckpt_gui.core.errors import CheckpointError
from ckpt_gui.core.model import TensorInfo
from ckpt_gui.core.values.lease import ReadLease


def load_pickled_state_dict(path: Path) -> Any:
    """The state dict of a pickle checkpoint through the safe loader, memory-mapped if zip."""
    import torch

    try:
        loaded = torch.load(
            path, map_location="cpu", weights_only=True, mmap=zipfile.is_zipfile(path)
        )
    except Exception as exc:
        raise CheckpointError(
            path, f"cannot read tensor data ({' '.join(str(exc).split())[:200]})"
        ) from None
    state_dict, _, _ = find_state_dict(loaded, path)
    return state_dict


class MappedPickle:
    """``state_dict`` of the pickle at ``path``, its file leased until ``close``."""

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            self._fd = os.open(path, os.O_RDONLY)
        except OSError as exc:
            raise CheckpointError(path, exc.strerror or str(exc)) from None
        # Taken before loading: the loader reads the zip's directory through the map too.
        self._lease = ReadLease(self._fd)
        self.state_dict: Any = None
        try:
            self.state_dict = load_pickled_state_dict(path)
        except BaseException:
            self.close()
            raise

    def check(self) -> None:
        """Raise the one-line error if another program now waits to change the file."""
        self._lease.ensure_intact(self.path)

    def get(self, name: str) -> Any:
        """Tensor ``name`` (None when absent), after ``check``."""
        self.check()
        return self.state_dict.get(name) if self.state_dict is not None else None

    def close(self) -> None:
        """Drop the state dict, then release the file; callers keep none of its tensors."""
        self.state_dict = None
        self._lease.release()
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1


# -- torch objects (remote zips are listed through torch.load on the meta device) --

# Where training frameworks keep the model weights, most specific first.
STATE_DICT_KEYS = (
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
