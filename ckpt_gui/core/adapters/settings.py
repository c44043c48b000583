"""``adapter_config.json`` as peft writes it, read as plain JSON (no peft import).

The matching rules (which base modules a LoRA adapter targets, which rank and alpha
each one gets) are ports of peft 0.21's ``check_target_module_exists`` and
``get_pattern_key``: peft is only a test dependency, and importing it would import
torch and transformers just to read a small JSON file.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ckpt_gui.core.errors import CheckpointError

CONFIG_NAME = "adapter_config.json"
MAX_CONFIG_BYTES = 4 * 1024 * 1024
SUPPORTED_TYPES = ("LORA",)
# peft's other adapter kinds: named as such when refused, instead of "unknown".
KNOWN_TYPES = frozenset(
    {
        *("PROMPT_TUNING", "MULTITASK_PROMPT_TUNING", "P_TUNING", "PREFIX_TUNING", "LORA"),
        *("ADALORA", "BOFT", "ADAPTION_PROMPT", "IA3", "LOHA", "LOKR", "OFT", "POLY"),
        *("LN_TUNING", "VERA", "FOURIERFT", "XLORA", "HRA", "VBLORA", "CPT", "BONE"),
        *("RANDLORA", "TRAINABLE_TOKENS", "SHIRA", "C3A", "MISS", "ROAD", "WAVEFT"),
        *("DELORA", "OSF", "GRALORA"),
    }
)


@dataclass(frozen=True)
class LoraSettings:
    """The facts of one adapter_config.json that decide shapes, scale and targets."""

    peft_type: str
    base_model: str | None
    revision: str | None
    r: int
    lora_alpha: float
    use_rslora: bool = False
    use_dora: bool = False
    fan_in_fan_out: bool = False
    target_modules: tuple[str, ...] | str = ()
    exclude_modules: tuple[str, ...] | str = ()
    modules_to_save: tuple[str, ...] = ()
    rank_pattern: dict[str, int] = field(default_factory=dict)
    alpha_pattern: dict[str, float] = field(default_factory=dict)
    layers_to_transform: tuple[int, ...] = ()
    layers_pattern: tuple[str, ...] = ()
    bias: str = "none"
    lora_bias: bool = False
    task_type: str | None = None
    base_model_class: str | None = None

    @property
    def supported(self) -> bool:
        return self.peft_type in SUPPORTED_TYPES

    def rank_for(self, module: str) -> int:
        key = pattern_key(self.rank_pattern, module)
        return self.rank_pattern.get(key, self.r) if key is not None else self.r

    def alpha_for(self, module: str) -> float:
        key = pattern_key(self.alpha_pattern, module)
        return self.alpha_pattern.get(key, self.lora_alpha) if key is not None else self.lora_alpha

    def scale_for(self, module: str) -> float:
        """peft's ``scaling``: alpha / r, or alpha / sqrt(r) with rsLoRA."""
        r = self.rank_for(module)
        alpha = self.alpha_for(module)
        return alpha / math.sqrt(r) if self.use_rslora else alpha / r

    @property
    def scale(self) -> float:
        if self.r <= 0:
            return 0.0  # not a LoRA adapter: no scale
        return self.lora_alpha / math.sqrt(self.r) if self.use_rslora else self.lora_alpha / self.r

    def targets(self, module: str) -> bool:
        """Whether peft would put a LoRA layer on the base module named ``module``."""
        if _excluded(self.exclude_modules, module):
            return False
        if any(re.match(rf"(^|.*\.){re.escape(m)}($|\..*)", module) for m in self.modules_to_save):
            return False
        if isinstance(self.target_modules, str):
            if self.target_modules == "all-linear":
                return True  # the caller limits this to linear layers
            return _fullmatch(self.target_modules, module)
        if module in self.target_modules:
            return True
        if not any(module.endswith(f".{t}") for t in self.target_modules):
            return False
        return self._layer_allowed(module)

    def _layer_allowed(self, module: str) -> bool:
        if not self.layers_to_transform:
            return True
        match: re.Match[str] | None = None
        if not self.layers_pattern:
            match = re.match(r".*?\.[^.]*\.(?P<idx>\d+)\.", module)
        else:
            for pattern in self.layers_pattern:
                match = re.match(rf"(?:^|.*?\.){re.escape(pattern)}\.(?P<idx>\d+)\.", module)
                if match is not None:
                    break
        return match is not None and int(match["idx"]) in self.layers_to_transform

    def to_json(self) -> dict[str, Any]:
        return {
            "peft_type": self.peft_type,
            "base_model": self.base_model,
            "revision": self.revision,
            "r": self.r,
            "lora_alpha": self.lora_alpha,
            "scale": self.scale,
            "use_rslora": self.use_rslora,
            "use_dora": self.use_dora,
            "fan_in_fan_out": self.fan_in_fan_out,
            "target_modules": (
                self.target_modules
                if isinstance(self.target_modules, str)
                else sorted(self.target_modules)
            ),
            "exclude_modules": (
                self.exclude_modules
                if isinstance(self.exclude_modules, str)
                else list(self.exclude_modules)
            ),
            "modules_to_save": list(self.modules_to_save),
            "rank_pattern": dict(self.rank_pattern),
            "alpha_pattern": dict(self.alpha_pattern),
            "layers_to_transform": list(self.layers_to_transform),
            "bias": self.bias,
            "lora_bias": self.lora_bias,
            "task_type": self.task_type,
            "base_model_class": self.base_model_class,
        }


def pattern_key(patterns: dict[str, Any], module: str) -> str | None:
    """peft's ``get_pattern_key``: the first pattern that matches the end of ``module``."""
    for key in patterns:
        try:
            if re.match(rf"(.*\.)?({key})$", module):
                return key
        except re.error:
            continue  # refused when the settings were read; never raised here
    return None


def _fullmatch(pattern: str, module: str) -> bool:
    try:
        return re.fullmatch(pattern, module) is not None
    except re.error:
        return False


def _excluded(exclude: tuple[str, ...] | str, module: str) -> bool:
    if isinstance(exclude, str):
        return bool(exclude) and _fullmatch(exclude, module)
    return module in exclude or any(module.endswith(f".{e}") for e in exclude)


def read_settings(path: Path) -> LoraSettings:
    """Read and check ``adapter_config.json``; every problem is one CheckpointError."""
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        raise CheckpointError(
            path.parent,
            f"no {CONFIG_NAME}: without it the adapter's rank, alpha and base are unknown",
        ) from None
    except OSError as exc:
        raise CheckpointError(path, exc.strerror or str(exc)) from None
    if size > MAX_CONFIG_BYTES:
        raise CheckpointError(path, f"is {size:,} bytes: too large for an adapter config")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError:
        raise CheckpointError(path, "is not UTF-8 text") from None
    except json.JSONDecodeError as exc:
        raise CheckpointError(path, f"is not valid JSON ({exc.msg} at line {exc.lineno})") from None
    except OSError as exc:
        raise CheckpointError(path, exc.strerror or str(exc)) from None
    if not isinstance(data, dict):
        raise CheckpointError(path, f"must be a JSON object, not {type(data).__name__}")
    return parse_settings(data, str(path))


def parse_settings(data: dict[str, Any], where: str) -> LoraSettings:
    peft_type = data.get("peft_type")
    if not isinstance(peft_type, str) or not peft_type:
        raise CheckpointError(where, "has no peft_type: not a peft adapter config")
    peft_type = peft_type.upper()
    if peft_type not in SUPPORTED_TYPES:
        # Still described (type and base), so that inspect can say what it is.
        return LoraSettings(
            peft_type=peft_type,
            base_model=_optional_str(data, "base_model_name_or_path"),
            revision=_optional_str(data, "revision"),
            r=0,
            lora_alpha=0,
            task_type=_optional_str(data, "task_type"),
        )
    r = data.get("r")
    if not isinstance(r, int) or isinstance(r, bool) or r <= 0:
        raise CheckpointError(where, f"r must be a positive integer, not {r!r}")
    alpha = data.get("lora_alpha", 8)
    if not _is_number(alpha):
        raise CheckpointError(where, f"lora_alpha must be a number, not {alpha!r}")
    rank_pattern = _pattern(data, "rank_pattern", where, integer=True)
    alpha_pattern = _pattern(data, "alpha_pattern", where, integer=False)
    auto = data.get("auto_mapping")
    base_class = auto.get("base_model_class") if isinstance(auto, dict) else None
    layers = data.get("layers_to_transform")
    if _is_int(layers):
        layers = [layers]
    return LoraSettings(
        peft_type=peft_type,
        base_model=_optional_str(data, "base_model_name_or_path"),
        revision=_optional_str(data, "revision"),
        r=int(r),
        lora_alpha=alpha,
        use_rslora=data.get("use_rslora") is True,
        use_dora=data.get("use_dora") is True,
        fan_in_fan_out=data.get("fan_in_fan_out") is True,
        target_modules=_names_or_regex(data, "target_modules", where),
        exclude_modules=_names_or_regex(data, "exclude_modules", where),
        modules_to_save=tuple(_names_or_regex(data, "modules_to_save", where, regex=False)),
        rank_pattern=rank_pattern,
        alpha_pattern=alpha_pattern,
        layers_to_transform=tuple(int(i) for i in layers or () if _is_int(i))
        if isinstance(layers, list)
        else (),
        layers_pattern=tuple(p for p in _as_list(data.get("layers_pattern")) if isinstance(p, str)),
        bias=str(data.get("bias") or "none"),
        lora_bias=data.get("lora_bias") is True,
        task_type=_optional_str(data, "task_type"),
        base_model_class=base_class if isinstance(base_class, str) else None,
    )


def unsupported_message(settings: LoraSettings) -> str:
    kind = "a peft" if settings.peft_type in KNOWN_TYPES else "an unknown"
    return (
        f"is {kind} {settings.peft_type} adapter; only LoRA adapters (peft_type LORA) "
        "can be checked and merged"
    )


def _optional_str(data: dict[str, Any], key: str) -> str | None:
    value = data.get(key)
    return value if isinstance(value, str) and value else None


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return list(value) if isinstance(value, list | tuple) else [value]


def _names_or_regex(
    data: dict[str, Any], key: str, where: str, regex: bool = True
) -> tuple[str, ...] | str:
    value = data.get(key)
    if value is None:
        return ()
    if isinstance(value, str):
        if not regex:
            return (value,)
        try:
            re.compile(value)
        except re.error as exc:
            raise CheckpointError(
                where, f"{key} is not a valid regular expression ({exc})"
            ) from None
        return value
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return tuple(value)
    raise CheckpointError(where, f"{key} must be a list of module names or a regex string")


def _pattern(data: dict[str, Any], key: str, where: str, integer: bool) -> dict[str, Any]:
    value = data.get(key) or {}
    if not isinstance(value, dict):
        raise CheckpointError(where, f"{key} must be an object mapping module patterns to values")
    checked: dict[str, Any] = {}
    for pattern, number in value.items():
        valid = (_is_int(number) and number > 0) if integer else _is_number(number)
        if not valid:
            raise CheckpointError(where, f"{key}[{pattern!r}] is {number!r}, not a valid value")
        try:
            re.compile(rf"(.*\.)?({pattern})$")
        except re.error as exc:
            raise CheckpointError(
                where, f"{key} key {pattern!r} is not a valid pattern ({exc})"
            ) from None
        checked[pattern] = number
    return checked
