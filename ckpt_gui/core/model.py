"""Immutable descriptions of a checkpoint: what is in it, never the weights themselves."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

from ckpt_gui.core.quant.analysis import Quantization, analyse


def _frozen_mapping(value: Mapping[str, Any] | None) -> Mapping[str, Any]:
    return MappingProxyType(dict(value or {}))


@dataclass(frozen=True)
class TensorInfo:
    """One tensor as the file describes it.

    ``file`` is relative to the checkpoint's root folder; ``offset`` is the absolute
    byte position of the tensor's data in that file, when the format makes it known
    and the data is one contiguous row-major run of ``nbytes`` bytes.

    Tensors from pickles also say where they sit in their torch storage:
    ``storage`` (its key), ``storage_start`` (absolute byte position of the
    storage's data in ``file``), ``storage_offset`` and ``stride`` (in elements).
    A view that is not contiguous (a transpose, a strided slice) has ``offset``
    None and is read through its stride.
    """

    name: str
    dtype: str
    shape: tuple[int, ...]
    nbytes: int
    file: str
    offset: int | None = None
    storage: str | None = None
    storage_start: int | None = None
    storage_offset: int = 0
    stride: tuple[int, ...] | None = None

    @property
    def parameters(self) -> int:
        return math.prod(self.shape)

    @property
    def strided(self) -> bool:
        """True for a pickled view whose bytes are not one contiguous run."""
        return self.offset is None and self.storage_start is not None

    def to_json(self) -> dict[str, Any]:
        result: dict[str, Any] = {
            "name": self.name,
            "dtype": self.dtype,
            "shape": list(self.shape),
            "parameters": self.parameters,
            "nbytes": self.nbytes,
            "file": self.file,
            "offset": self.offset,
        }
        if self.storage is not None:
            # Pickled tensors only: safetensors output keeps its old fields.
            result["storage"] = self.storage
            result["storage_offset"] = self.storage_offset
            result["stride"] = list(self.stride) if self.stride is not None else None
        return result


@dataclass(frozen=True)
class FileInfo:
    """A file that belongs to the checkpoint, relative to the checkpoint's root."""

    path: str
    size: int

    def to_json(self) -> dict[str, Any]:
        return {"path": self.path, "size": self.size}


@dataclass(frozen=True)
class PickleGlobal:
    """A global a pickle imports (``module.name``) and whether the safe loader allows it.

    ``group`` says what it means to a user (``core/pickles/groups.py``): "code"
    (runs when torch's full loader unpickles the file: the danger), "class" (a
    class whose package code would be imported) or "data" (plain data).
    """

    name: str
    allowed: bool
    reason: str = ""
    group: str = ""

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "allowed": self.allowed,
            "reason": self.reason,
            "group": self.group,
        }


@dataclass(frozen=True)
class Checkpoint:
    """Everything known about a checkpoint without reading its weights.

    ``source`` is what the user named (a path or a repo id); ``root`` the local folder
    that ``TensorInfo.file`` paths are relative to (None for remote checkpoints).
    """

    source: str
    format: str
    tensors: tuple[TensorInfo, ...]
    files: tuple[FileInfo, ...]
    root: Path | None = None
    metadata: Mapping[str, Any] = field(default_factory=dict)
    warnings: tuple[str, ...] = ()
    config: Mapping[str, Any] | None = None
    pickle_globals: tuple[PickleGlobal, ...] = ()
    # A peft adapter's settings and what it changes (None for a full checkpoint).
    # A LoRA adapter's facts (``core.adapters.summary.AdapterInfo``), typed loosely: that
    # module builds on TensorInfo here, and the import graph stays acyclic.
    adapter: Any = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "metadata", _frozen_mapping(self.metadata))
        if self.config is not None:
            object.__setattr__(self, "config", _frozen_mapping(self.config))

    @property
    def quantization(self) -> Quantization | None:
        """The quantization its config declares or its tensors show (None: not quantized)."""
        if "_quantization" not in self.__dict__:
            object.__setattr__(self, "_quantization", analyse(self.tensors, self.config))
        cached: Quantization | None = self.__dict__["_quantization"]
        return cached

    @property
    def total_parameters(self) -> int:
        """The model's parameter count: packed quantized weights count every value they
        hold, bookkeeping tensors (scales, zeros, quant states) none (the Hub's rules)."""
        quantization = self.quantization
        if quantization is not None:
            return quantization.total_parameters
        return sum(t.parameters for t in self.tensors)

    @property
    def all_warnings(self) -> tuple[str, ...]:
        """The reader's warnings and those about the quantization layout."""
        quantization = self.quantization
        return self.warnings + (quantization.warnings if quantization is not None else ())

    @property
    def total_bytes(self) -> int:
        return sum(t.nbytes for t in self.tensors)

    @property
    def parameters_by_dtype(self) -> dict[str, int]:
        quantization = self.quantization
        if quantization is not None:
            return quantization.parameters_by_dtype
        counts: dict[str, int] = {}
        for tensor in self.tensors:
            counts[tensor.dtype] = counts.get(tensor.dtype, 0) + tensor.parameters
        return dict(sorted(counts.items(), key=lambda item: -item[1]))

    def tensor(self, name: str) -> TensorInfo:
        return self.tensor_map[name]

    @property
    def tensor_map(self) -> dict[str, TensorInfo]:
        cached: dict[str, TensorInfo] | None = self.__dict__.get("_tensor_map")
        if cached is None:
            cached = {t.name: t for t in self.tensors}
            object.__setattr__(self, "_tensor_map", cached)
        return cached

    def path_of(self, tensor: TensorInfo) -> Path:
        """Local path of the file holding ``tensor``."""
        if self.root is None:
            raise ValueError(f"{self.source}: checkpoint is not on local disk")
        return self.root / tensor.file

    def to_json(self) -> dict[str, Any]:
        quantization = self.quantization
        by_dtype: dict[str, int]
        if quantization is not None or any(t.storage is not None for t in self.tensors):
            # Quantized models count the model's parameters; pickles add storage fields.
            rows = [t.to_json() for t in self.tensors]
            total = self.total_parameters
            by_dtype = self.parameters_by_dtype
        else:
            # Each tensor's count is computed once (the properties above would walk the
            # tensors three more times): this runs on 200,000-tensor listings.
            rows = []
            total = 0
            by_dtype = {}
            prod = math.prod
            for t in self.tensors:
                parameters = prod(t.shape)
                total += parameters
                by_dtype[t.dtype] = by_dtype.get(t.dtype, 0) + parameters
                rows.append(
                    {
                        "name": t.name,
                        "dtype": t.dtype,
                        "shape": list(t.shape),
                        "parameters": parameters,
                        "nbytes": t.nbytes,
                        "file": t.file,
                        "offset": t.offset,
                    }
                )
        return {
            "source": self.source,
            "format": self.format,
            "files": [f.to_json() for f in self.files],
            "total_parameters": total,
            "total_bytes": sum(t.nbytes for t in self.tensors),
            "parameters_by_dtype": dict(sorted(by_dtype.items(), key=lambda item: -item[1])),
            "tensors": rows,
            "metadata": _jsonable(dict(self.metadata)),
            "warnings": list(self.all_warnings),
            "quantization": quantization.to_json() if quantization is not None else None,
            "config": _jsonable(dict(self.config)) if self.config is not None else None,
            "pickle_globals": [g.to_json() for g in self.pickle_globals],
            "adapter": self.adapter.to_json() if self.adapter is not None else None,
        }

    def to_json_text(self) -> str:
        """``to_json`` as one string: indented, one tensor per line.

        Built in one piece by the C encoder: ``json.dump(..., indent=...)`` runs
        the pure-Python encoder and writes to the stream piece by piece (9.5 s for
        200,000 tensors). The tensors' list is encoded compactly, then each row is
        put on its own line: a row boundary ``}, {"name": `` cannot occur inside
        a string, where every quote is escaped.
        """
        data = self.to_json()
        rows = data.pop("tensors")
        head = json.dumps(data, indent=1)
        listed = json.dumps(rows).replace('}, {"name": ', '},\n  {"name": ')
        if rows:
            listed = "[\n  " + listed[1:-1] + "\n ]"
        return head[:-2] + ',\n "tensors": ' + listed + "\n}\n"


def _jsonable(value: Any) -> Any:
    """Metadata may hold anything a pickle held; keep JSON output total."""
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return repr(value)
