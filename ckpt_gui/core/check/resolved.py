"""A resolved config (what to build) and config overrides: plain values, no readers.

Apart from ``config_source.py`` (which reads configs from files, checkpoints and the
Hub) so that the templates and the expected-model builder, which GGUF naming uses
while listing, depend on no reader: ``formats`` -> ``gguf`` -> templates -> here.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any


@dataclass(frozen=True)
class ResolvedConfig:
    """What to build: the config values and the model class to build them into.

    ``architecture`` is None when neither the user nor the config names one; the
    model type's base model (``AutoModel``) is used then. ``values`` already include
    ``overrides``; ``source`` says where the values came from, for messages.
    """

    source: str
    values: Mapping[str, Any]
    architecture: str | None = None
    overrides: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "values", MappingProxyType(dict(self.values)))
        object.__setattr__(self, "overrides", MappingProxyType(dict(self.overrides)))

    @property
    def model_type(self) -> str | None:
        value = self.values.get("model_type")
        return value if isinstance(value, str) else None

    def to_json(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "architecture": self.architecture,
            "model_type": self.model_type,
            "overrides": dict(self.overrides),
        }


def apply_overrides(values: Mapping[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
    """Set ``key`` or ``nested.key`` (e.g. ``text_config.hidden_size``) in a copy of ``values``."""
    result = json.loads(json.dumps(dict(values)))
    for dotted, value in overrides.items():
        node = result
        parts = dotted.split(".")
        for part in parts[:-1]:
            child = node.get(part)
            if not isinstance(child, dict):
                child = {}
                node[part] = child
            node = child
        node[parts[-1]] = value
    return dict(result)
