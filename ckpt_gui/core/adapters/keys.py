"""The keys of a saved LoRA adapter, and what each one is for.

peft saves ``base_model.model.<module>.<role>`` with the adapter name removed:
``lora_A.weight``/``lora_B.weight`` (linear and conv layers), ``lora_embedding_A``/
``lora_embedding_B`` (embeddings), ``lora_magnitude_vector`` (DoRA), ``lora_B.bias``
(``lora_bias``) and ``base_layer.weight`` (a whole base embedding, saved when the
vocabulary was resized). Any other key is a base tensor the adapter replaces
(``modules_to_save``, or biases trained with ``bias="all"``).
"""

from __future__ import annotations

from dataclasses import dataclass

PREFIX = "base_model.model."
# Suffix -> role, longest first so that ``lora_A.weight`` wins over a plain ``weight``.
ROLES: tuple[tuple[str, str], ...] = (
    (".lora_magnitude_vector.weight", "magnitude"),
    (".lora_magnitude_vector", "magnitude"),
    (".lora_embedding_A", "embedding_A"),
    (".lora_embedding_B", "embedding_B"),
    (".lora_A.weight", "A"),
    (".lora_B.weight", "B"),
    (".lora_B.bias", "B_bias"),
    (".base_layer.weight", "base_layer"),
    (".base_layer.bias", "base_layer_bias"),
)
LOW_RANK_ROLES = frozenset({"A", "B", "embedding_A", "embedding_B"})


@dataclass(frozen=True)
class AdapterKey:
    """One adapter tensor: ``module`` is the base module's path (the model's naming);
    ``replaces`` is the base tensor it overwrites, for roles that replace one."""

    key: str
    module: str
    role: str  # one of ROLES' roles, or "replace"
    replaces: str | None = None

    @property
    def low_rank(self) -> bool:
        return self.role in LOW_RANK_ROLES


def classify(key: str) -> AdapterKey | None:
    """What ``key`` does; None for a key outside ``base_model.model.`` (not LoRA's)."""
    if not key.startswith(PREFIX):
        return None
    path = key[len(PREFIX) :]
    for suffix, role in ROLES:
        if path.endswith(suffix):
            module = path[: -len(suffix)]
            replaces = None
            if role == "base_layer":
                replaces = f"{module}.weight"
            elif role == "base_layer_bias":
                replaces = f"{module}.bias"
            return AdapterKey(key, module, role, replaces)
    module, _, _ = path.rpartition(".")
    return AdapterKey(key, module, "replace", path)


def base_name(key: str) -> str:
    """The adapter key in the base model's naming (for trees and messages)."""
    return key[len(PREFIX) :] if key.startswith(PREFIX) else key
