"""peft adapter folders: ``adapter_config.json`` + ``adapter_model.safetensors`` (or ``.bin``).

A folder, not a file format: the weights are read by the safetensors or pytorch
reader (``Checkpoint.format`` stays theirs, so every reader of that format treats
the file as it is), and the adapter's settings are attached as ``Checkpoint.adapter``. Weights
without the config are opened as what they are (a plain file) with a warning,
since without the config the rank, alpha and base are unknown.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path

from ckpt_gui.core.adapters.base import find_base
from ckpt_gui.core.adapters.keys import PREFIX
from ckpt_gui.core.adapters.settings import (
    CONFIG_NAME,
    LoraSettings,
    read_settings,
    unsupported_message,
)
from ckpt_gui.core.adapters.summary import summarise
from ckpt_gui.core.errors import CheckpointError
from ckpt_gui.core.model import Checkpoint

NAME = "peft-adapter"
ADAPTER_CONFIG_NAME = CONFIG_NAME
WEIGHT_NAMES = ("adapter_model.safetensors", "adapter_model.bin")


def is_adapter_folder(folder: Path) -> bool:
    return (folder / CONFIG_NAME).is_file()


def has_adapter_weights(folder: Path) -> bool:
    return any((folder / name).is_file() for name in WEIGHT_NAMES)


def read(folder: Path, open_file: Callable[[Path, Path | None], Checkpoint]) -> Checkpoint:
    """An adapter folder; ``open_file(path, root)`` reads its weight file."""
    settings = read_settings(folder / CONFIG_NAME)
    weights = next((folder / n for n in WEIGHT_NAMES if (folder / n).is_file()), None)
    if weights is None:
        raise CheckpointError(
            folder, f"has {CONFIG_NAME} but no adapter weights ({' or '.join(WEIGHT_NAMES)})"
        )
    checkpoint = open_file(weights, folder)
    return attach(checkpoint, settings, folder)


def attach(checkpoint: Checkpoint, settings: LoraSettings, folder: Path | None) -> Checkpoint:
    """``checkpoint`` (an adapter's weights) with its settings and summary attached."""
    info = summarise(settings, checkpoint.tensors)
    warnings = list(info.warnings)
    if not settings.supported:
        warnings.append(f"adapter {unsupported_message(settings)}")
    base, how = find_base(settings, folder)
    if base is None and settings.base_model:
        warnings.append(
            f"base model {settings.base_model} is not on this machine (local folder or HF cache)"
        )
    info = dataclasses.replace(
        info, base_path=str(base) if base else None, base_found_by=how, warnings=tuple(warnings)
    )
    return dataclasses.replace(
        checkpoint,
        adapter=info,
        warnings=checkpoint.warnings + tuple(warnings),
    )


def looks_like_adapter_weights(checkpoint: Checkpoint) -> bool:
    """Keys as peft saves LoRA weights, for a clearer message when the config is missing."""
    return any(t.name.startswith(PREFIX) and ".lora_" in t.name for t in checkpoint.tensors)


def missing_config_error(checkpoint: Checkpoint) -> CheckpointError:
    return CheckpointError(
        checkpoint.source,
        f"looks like a peft adapter but has no {CONFIG_NAME}: its rank, alpha and base "
        "model are unknown (put the adapter_config.json saved with it beside the weights)",
    )
