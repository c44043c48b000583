"""A quantized checkpoint's real parameter count, its quantized modules, and what is odd.

    quant = analyse(checkpoint.tensors, checkpoint.config)   # None when not quantized

Header facts only (names, dtypes, shapes): no tensor data is read and torch is not
imported. Layouts that do not add up get a warning naming the module, never a
silent guess.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from ckpt_gui.core.quant.checks import gptq_bits, layout_problems
from ckpt_gui.core.quant.roles import BOOKKEEPING, WEIGHT, Role, bits_for_module, role_of
from ckpt_gui.core.quant.scheme import (
    QuantScheme,
    describe_layout,
    group_for,
    scheme_from_config,
    scheme_from_tensors,
)


class TensorLike(Protocol):
    """What the analysis needs of a tensor (``core.model.TensorInfo`` fits)."""

    @property
    def name(self) -> str: ...
    @property
    def dtype(self) -> str: ...
    @property
    def shape(self) -> tuple[int, ...]: ...
    @property
    def nbytes(self) -> int: ...


@dataclass(frozen=True)
class QuantModule:
    """One quantized module: its method and width, its weight(s) and bookkeeping."""

    path: str
    method: str
    bits: int | None
    group_size: int | None
    block_size: tuple[int, ...] | None
    weights: tuple[str, ...]
    bookkeeping: tuple[str, ...]
    parameters: int
    bookkeeping_bytes: int

    def describe(self) -> str:
        return describe_layout(self.method, self.bits, self.group_size, self.block_size)

    def short(self) -> str:
        """For a narrow column: ``gptq 4b g32``, ``fp8 8b 128x128``."""
        parts = [self.method.replace("compressed-tensors", "ct").replace("bitsandbytes", "bnb")]
        if self.bits:
            parts.append(f"{self.bits}b")
        if self.group_size:
            parts.append(f"g{self.group_size}")
        if self.block_size:
            parts.append("x".join(str(b) for b in self.block_size))
        return " ".join(parts)

    def to_json(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "method": self.method,
            "bits": self.bits,
            "group_size": self.group_size,
            "block_size": list(self.block_size) if self.block_size else None,
            "weights": list(self.weights),
            "bookkeeping": list(self.bookkeeping),
            "parameters": self.parameters,
            "bookkeeping_bytes": self.bookkeeping_bytes,
        }


@dataclass(frozen=True)
class Quantization:
    """The analysis. ``parameters`` holds each tensor's parameter count as the Hub
    counts it (0 for bookkeeping); stored bytes are the tensors' own."""

    scheme: QuantScheme
    parameters: Mapping[str, int]
    bookkeeping: frozenset[str]
    modules: Mapping[str, QuantModule]
    warnings: tuple[str, ...] = ()
    dtypes: Mapping[str, str] = field(default_factory=dict)

    @property
    def total_parameters(self) -> int:
        return sum(self.parameters.values())

    @property
    def parameters_by_dtype(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for name, count in self.parameters.items():
            if name not in self.bookkeeping:
                dtype = self.dtypes[name]
                counts[dtype] = counts.get(dtype, 0) + count
        return dict(sorted(counts.items(), key=lambda item: -item[1]))

    def module_of(self, tensor_name: str) -> QuantModule | None:
        module = self.modules.get(tensor_name.rpartition(".")[0])
        if module is not None:
            return module
        owner = tensor_name.split(".weight.", 1)[0]
        return self.modules.get(owner)

    def to_json(self) -> dict[str, Any]:
        return {
            "scheme": self.scheme.to_json(),
            "description": self.scheme.describe(),
            "total_parameters": self.total_parameters,
            "bookkeeping_tensors": len(self.bookkeeping),
            "bookkeeping_bytes": sum(m.bookkeeping_bytes for m in self.modules.values()),
            "modules": [m.to_json() for m in self.modules.values()],
            "warnings": list(self.warnings),
        }


def analyse(tensors: Iterable[TensorLike], config: Mapping[str, Any] | None) -> Quantization | None:
    """The quantization of these tensors, or None when nothing is quantized."""
    tensor_list = list(tensors)
    dtypes = {t.name: t.dtype for t in tensor_list}
    warnings: list[str] = []
    scheme = scheme_from_config(config)
    if scheme is None:
        scheme = scheme_from_tensors(dtypes, dtypes)
        if scheme is None:
            if not any(d == "F8_E8M0" for d in dtypes.values()):
                return None
            scheme = QuantScheme("unknown", from_config=False)
        warnings.append(
            f"config.json declares no quantization; tensor names look like {scheme.method}: "
            "parameter count follows that layout"
            if scheme.method != "unknown"
            else "config.json declares no quantization; F8_E8M0 tensors hold block scales "
            "and are not counted as parameters"
        )
    elif not scheme.known:
        warnings.append(
            f"quantization method {scheme.method!r} is not understood: parameters are counted "
            "as stored elements and may be wrong"
        )
    if scheme.method in ("gptq", "awq") and scheme.bits is None:
        scheme = _with_implied_bits(scheme, {t.name: t.shape for t in tensor_list})
    roles = {t.name: _role(t, dtypes, scheme) for t in tensor_list}
    parameters = {
        t.name: round(math.prod(t.shape) * roles[t.name].factor)
        if roles[t.name].kind != BOOKKEEPING
        else 0
        for t in tensor_list
    }
    modules = _modules(tensor_list, roles, parameters, scheme)
    if scheme.known and scheme.from_config and not modules:
        warnings.append(
            f"config declares {scheme.method} quantization but no tensor has its layout: "
            "parameters are counted as stored"
        )
    warnings += layout_problems(
        {t.name: t.shape for t in tensor_list}, modules, scheme, bits_for_module
    )
    return Quantization(
        scheme=scheme,
        parameters=parameters,
        bookkeeping=frozenset(n for n, r in roles.items() if r.kind == BOOKKEEPING),
        modules=modules,
        warnings=tuple(warnings),
        dtypes=dtypes,
    )


def _role(tensor: TensorLike, dtypes: Mapping[str, str], scheme: QuantScheme) -> Role:
    module = tensor.name.rpartition(".")[0]
    return role_of(tensor.name, tensor.dtype, dtypes, scheme, bits_for_module(module, scheme))


def _modules(
    tensors: list[TensorLike],
    roles: Mapping[str, Role],
    parameters: Mapping[str, int],
    scheme: QuantScheme,
) -> dict[str, QuantModule]:
    weights: dict[str, list[str]] = {}
    bookkeeping: dict[str, list[TensorLike]] = {}
    for tensor in tensors:
        role = roles[tensor.name]
        if role.kind == WEIGHT:
            weights.setdefault(role.module, []).append(tensor.name)
        elif role.kind == BOOKKEEPING:
            bookkeeping.setdefault(role.module, []).append(tensor)
    modules: dict[str, QuantModule] = {}
    for path, names in weights.items():
        extra = bookkeeping.get(path, [])
        modules[path] = QuantModule(
            path=path,
            method=scheme.method,
            bits=bits_for_module(path, scheme) or _float_bits(scheme),
            group_size=_group_size(path, scheme),
            block_size=scheme.block_size,
            weights=tuple(names),
            bookkeeping=tuple(t.name for t in extra),
            parameters=sum(parameters[n] for n in names),
            bookkeeping_bytes=sum(t.nbytes for t in extra),
        )
    return modules


def _group_size(path: str, scheme: QuantScheme) -> int | None:
    if scheme.method == "compressed-tensors":
        group = group_for(path, scheme)
        return group.group_size if group else None
    return scheme.group_size if scheme.group_size and scheme.group_size > 0 else None


def _float_bits(scheme: QuantScheme) -> int | None:
    return 8 if scheme.method == "fp8" else None


def _with_implied_bits(scheme: QuantScheme, shapes: Mapping[str, tuple[int, ...]]) -> QuantScheme:
    """A GPTQ/AWQ layout recognised from names: its width from the first module's shapes."""
    for name in shapes:
        if name.endswith(".qweight"):
            implied = gptq_bits(shapes, name.rpartition(".")[0], scheme.method)
            if implied is not None:
                return dataclasses.replace(scheme, bits=implied)
    return scheme
