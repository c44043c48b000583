"""What an adapter changes: per module its kind, rank, alpha, scale and DoRA, and totals."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from ckpt_gui.core.adapters.keys import AdapterKey, classify
from ckpt_gui.core.adapters.settings import LoraSettings
from ckpt_gui.core.model import TensorInfo


@dataclass(frozen=True)
class AdaptedModule:
    module: str  # base module path, the model's naming
    kind: str  # "linear", "embedding" or "conv"
    r: int  # as stored (the A matrix's rows)
    lora_alpha: float
    scale: float
    dora: bool
    parameters: int

    def to_json(self) -> dict[str, Any]:
        return {
            "module": self.module,
            "kind": self.kind,
            "r": self.r,
            "lora_alpha": self.lora_alpha,
            "scale": self.scale,
            "dora": self.dora,
            "parameters": self.parameters,
        }


@dataclass(frozen=True)
class AdapterInfo:
    """An adapter's settings and what its tensors change.

    ``base_path`` is the base model found on this machine (None when not found);
    ``base_found_by`` says how (see ``core.adapters.base``).
    """

    settings: LoraSettings
    modules: tuple[AdaptedModule, ...] = ()
    replaced: tuple[str, ...] = ()  # base tensors the adapter overwrites (modules_to_save...)
    lora_parameters: int = 0
    dora_parameters: int = 0
    replaced_parameters: int = 0
    foreign_keys: tuple[str, ...] = ()  # keys outside base_model.model.
    base_path: str | None = None
    base_found_by: str | None = None
    warnings: tuple[str, ...] = field(default=())

    @property
    def adapted_parameters(self) -> int:
        return self.lora_parameters + self.dora_parameters + self.replaced_parameters

    @property
    def module_map(self) -> dict[str, AdaptedModule]:
        return {m.module: m for m in self.modules}

    def to_json(self) -> dict[str, Any]:
        out = self.settings.to_json()
        out.update(
            {
                "base_model_path": self.base_path,
                "base_found_by": self.base_found_by,
                "adapted_modules": [m.to_json() for m in self.modules],
                "adapted_module_count": len(self.modules),
                "dora_magnitudes": sum(1 for m in self.modules if m.dora),
                "replaced_tensors": list(self.replaced),
                "parameters": {
                    "lora": self.lora_parameters,
                    "dora": self.dora_parameters,
                    "replaced": self.replaced_parameters,
                    "total": self.adapted_parameters,
                },
                "foreign_keys": list(self.foreign_keys),
                "warnings": list(self.warnings),
            }
        )
        return out


def summarise(settings: LoraSettings, tensors: Iterable[TensorInfo]) -> AdapterInfo:
    """Group an adapter's tensors by base module (LoRA only: other kinds are listed
    as tensors, their layout is not interpreted)."""
    if not settings.supported:
        return AdapterInfo(settings=settings)
    by_module: dict[str, dict[str, TensorInfo]] = {}
    replaced: list[str] = []
    foreign: list[str] = []
    lora = dora = replaced_params = 0
    for tensor in tensors:
        key = classify(tensor.name)
        if key is None:
            foreign.append(tensor.name)
            continue
        if key.replaces is not None:
            replaced.append(key.replaces)
            replaced_params += tensor.parameters
            continue
        if key.role == "magnitude":
            dora += tensor.parameters
        else:
            lora += tensor.parameters
        by_module.setdefault(key.module, {})[key.role] = tensor
    modules = [_module(settings, name, roles) for name, roles in by_module.items()]
    warnings = []
    if foreign:
        warnings.append(
            f"{len(foreign)} tensors outside base_model.model. (not LoRA weights), "
            f"e.g. '{foreign[0]}'"
        )
    return AdapterInfo(
        settings=settings,
        modules=tuple(m for m in modules if m is not None),
        replaced=tuple(replaced),
        lora_parameters=lora,
        dora_parameters=dora,
        replaced_parameters=replaced_params,
        foreign_keys=tuple(foreign),
        warnings=tuple(warnings),
    )


def _module(settings: LoraSettings, name: str, roles: dict[str, TensorInfo]) -> AdaptedModule:
    if "embedding_A" in roles:
        kind, a = "embedding", roles["embedding_A"]
    elif "A" in roles:
        a = roles["A"]
        kind = "conv" if len(a.shape) > 2 else "linear"
    else:
        kind, a = "linear", None
    rank = a.shape[0] if a is not None and a.shape else settings.rank_for(name)
    return AdaptedModule(
        module=name,
        kind=kind,
        r=rank,
        lora_alpha=settings.alpha_for(name),
        scale=settings.scale_for(name),
        dora="magnitude" in roles,
        parameters=sum(t.parameters for t in roles.values()),
    )


def keys_by_module(names: Iterable[str]) -> dict[str, dict[str, AdapterKey]]:
    """Adapter keys grouped by base module, each module's keys by role."""
    grouped: dict[str, dict[str, AdapterKey]] = {}
    for name in names:
        key = classify(name)
        if key is not None and key.replaces is None:
            grouped.setdefault(key.module, {})[key.role] = key
    return grouped
