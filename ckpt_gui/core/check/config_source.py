"""Turn what the user named as CONFIG into a config dict and an architecture name.

CONFIG may be a config.json, a model folder, a Hub repo id, or an architecture
name from the transformers registry (``LlamaForCausalLM``). Nothing here imports
torch or transformers: the config is only read as JSON, and checked against the
transformers registry later, when the model is built (``expected.py``).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ckpt_gui.core.check.resolved import ResolvedConfig, apply_overrides
from ckpt_gui.core.errors import CheckpointError
from ckpt_gui.core.hub.ref import parse_hub_target
from ckpt_gui.core.model import Checkpoint

# ``LlamaForCausalLM``, ``BertModel``, ``T5EncoderModel``: a Python class name.
ARCHITECTURE_NAME = re.compile(r"^[A-Z][A-Za-z0-9_]*$")
# ``org/name`` or ``name`` as the Hub spells repo ids.


def resolve_config(
    spec: str | Path | None,
    checkpoint: Checkpoint | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> ResolvedConfig:
    """Resolve CONFIG (or the checkpoint's own config.json when ``spec`` is None)."""
    overrides = dict(overrides or {})
    if spec is None:
        if checkpoint is None or checkpoint.config is None:
            where = checkpoint.source if checkpoint is not None else "checkpoint"
            raise CheckpointError(
                where,
                "has no config.json to compare with; pass --config (a config.json, a model "
                "folder or an architecture name such as LlamaForCausalLM)",
            )
        return _finish(
            f"{checkpoint.source} ({_own_config_label(checkpoint)})",
            dict(checkpoint.config),
            None,
            overrides,
        )
    text = str(spec)
    path = Path(text).expanduser()
    if path.exists():
        return _finish(str(path), read_config_file(path), None, overrides)
    if ARCHITECTURE_NAME.match(text):
        # Keep the checkpoint's own values when they are for the same family; the
        # architecture check (which config class the name needs) happens in expected.py.
        base = dict(checkpoint.config) if checkpoint is not None and checkpoint.config else {}
        return _finish(text, base, text, overrides)
    if parse_hub_target(text) is not None:
        from ckpt_gui.core.hub.inspect import fetch_config

        return _finish(f"hub:{text}", fetch_config(text), None, overrides)
    raise CheckpointError(
        text,
        "no such file or folder, and not an architecture name (like LlamaForCausalLM) "
        "or a Hub repo id (org/name)",
    )


def _own_config_label(checkpoint: Checkpoint) -> str:
    if checkpoint.metadata.get("embedded_config"):
        return "config embedded in the pickle"
    return "own config.json"


def read_config_file(path: Path) -> dict[str, Any]:
    """A config.json, or the config.json inside a model folder (or HF cache snapshot)."""
    if path.is_dir():
        from ckpt_gui.core.formats.folder import resolve_cache_repo

        snapshot, _ = resolve_cache_repo(path)
        path = snapshot / "config.json"
        if not path.is_file():
            raise CheckpointError(snapshot, "folder has no config.json")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise CheckpointError(path, f"cannot read config ({exc})") from None
    try:
        values = json.loads(text)
    except json.JSONDecodeError as exc:
        raise CheckpointError(path, f"not valid JSON (line {exc.lineno}: {exc.msg})") from None
    if not isinstance(values, dict):
        raise CheckpointError(path, f"config must be a JSON object, not {type(values).__name__}")
    return values


def _finish(
    source: str, values: dict[str, Any], architecture: str | None, overrides: dict[str, Any]
) -> ResolvedConfig:
    values = apply_overrides(values, overrides)
    if architecture is None:
        architectures = values.get("architectures")
        if isinstance(architectures, list) and architectures and isinstance(architectures[0], str):
            architecture = architectures[0]
    return ResolvedConfig(source, values, architecture, overrides)


def parse_override(text: str) -> tuple[str, Any]:
    """``key=value`` from the command line; the value is JSON when it parses, else a string."""
    key, sep, raw = text.partition("=")
    key = key.strip()
    if not sep or not key:
        raise CheckpointError("--set", f"expected key=value, got {text!r}")
    try:
        value: Any = json.loads(raw)
    except json.JSONDecodeError:
        value = raw
    return key, value
