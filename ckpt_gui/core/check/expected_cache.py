"""A disk cache of model descriptions, so a repeated check needs no transformers import.

A first check is served from a shipped template when one applies
(``expected_template.py``); otherwise the model is built and the result cached.

Building the meta model is quick; importing transformers and torch to do it costs
seconds. The description depends only on the transformers version, the model class,
the config values and the key mapping, so it is cached under a hash of those in
``$CKPT_GUI_CACHE_DIR`` (default ``$XDG_CACHE_HOME/ckpt-gui`` or ``~/.cache/ckpt-gui``).
Only models whose rename rules are plain renamings are cached (see renaming.py);
a damaged or stale entry is ignored and rebuilt. Writes are atomic (temp + rename).
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from importlib import metadata
from pathlib import Path
from typing import Any

from ckpt_gui.core.check.expected import (
    ExpectedModel,
    ExpectedTensor,
    build_expected,
    refuse_remote_code,
)
from ckpt_gui.core.check.renaming import PlainRenaming
from ckpt_gui.core.check.resolved import ResolvedConfig
from ckpt_gui.core.check.size_guard import refuse_absurd
from ckpt_gui.core.check.templates.template import template_for, template_size
from ckpt_gui.core.quant.scheme import scheme_from_config

SCHEMA = 1


def cache_dir() -> Path:
    explicit = os.environ.get("CKPT_GUI_CACHE_DIR")
    if explicit:
        return Path(explicit) / "expected"
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "ckpt-gui" / "expected"


def cache_key(config: ResolvedConfig, key_mapping: dict[str, str] | None) -> str | None:
    try:
        version = metadata.version("transformers")
    except metadata.PackageNotFoundError:
        return None
    payload = json.dumps(
        {
            "schema": SCHEMA,
            "transformers": version,
            "architecture": config.architecture,
            "values": dict(config.values),
            "key_mapping": key_mapping,
        },
        sort_keys=True,
        default=str,
    )
    return hashlib.sha256(payload.encode()).hexdigest()


def load_expected(
    config: ResolvedConfig, key_mapping: dict[str, str] | None = None, use_cache: bool = True
) -> ExpectedModel:
    """The model description from the cache or a shipped template, else built (and
    cached when possible). ``use_cache=False`` skips both: always a real build."""
    refuse_remote_code(config)
    exact = template_size(config.values, config.architecture)
    refuse_absurd(config.values, config.source, exact)
    key = cache_key(config, key_mapping) if use_cache else None
    path = cache_dir() / f"{key}.json" if key else None
    # A quantized config needs the Linear modules, which only a build (or a cache
    # entry written from one) records.
    quantized = scheme_from_config(config.values) is not None
    if path is not None:
        cached = _read(path)
        if cached is not None and not (quantized and cached.linear_modules is None):
            return cached
    if use_cache and not quantized:
        # A shipped template that answers for this config: still no import.
        from_template = template_for(config, key_mapping)
        if from_template is not None:
            return from_template
    expected = build_expected(config, key_mapping)
    if path is not None and expected.plain_renamings is not None:
        _write(path, to_json(expected))
    return expected


def to_json(expected: ExpectedModel) -> dict[str, Any]:
    return {
        "schema": SCHEMA,
        "architecture": expected.architecture,
        "model_type": expected.model_type,
        "base_model_prefix": expected.base_model_prefix,
        "tensors": [[t.name, list(t.shape), t.dtype] for t in expected.tensors.values()],
        "tied": [[target, source] for target, source in expected.tied.items()],
        "non_persistent_buffers": list(expected.non_persistent_buffers),
        "ignore_missing": list(expected.ignore_missing),
        "ignore_unexpected": list(expected.ignore_unexpected),
        "warnings": list(expected.warnings),
        "plain_renamings": [r.to_json() for r in expected.plain_renamings or ()],
        "linear_modules": (
            list(expected.linear_modules) if expected.linear_modules is not None else None
        ),
    }


def from_json(data: dict[str, Any]) -> ExpectedModel:
    if data.get("schema") != SCHEMA:
        raise ValueError("other schema")
    return ExpectedModel(
        architecture=str(data["architecture"]),
        model_type=str(data["model_type"]),
        base_model_prefix=data["base_model_prefix"],
        tensors={
            name: ExpectedTensor(str(name), tuple(int(d) for d in shape), str(dtype))
            for name, shape, dtype in data["tensors"]
        },
        tied={str(target): str(source) for target, source in data["tied"]},
        non_persistent_buffers=tuple(data["non_persistent_buffers"]),
        ignore_missing=tuple(data["ignore_missing"]),
        ignore_unexpected=tuple(data["ignore_unexpected"]),
        warnings=tuple(data["warnings"]),
        plain_renamings=tuple(PlainRenaming.from_json(r) for r in data["plain_renamings"]),
        linear_modules=(
            tuple(str(n) for n in data["linear_modules"])
            if isinstance(data.get("linear_modules"), list)
            else None
        ),
    )


def _read(path: Path) -> ExpectedModel | None:
    try:
        return from_json(json.loads(path.read_text(encoding="utf-8")))
    except (OSError, ValueError, KeyError, TypeError):
        return None  # absent, damaged or from another schema: rebuild


def _write(path: Path, data: dict[str, Any]) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(
            "w", dir=path.parent, suffix=".tmp", delete=False, encoding="utf-8"
        ) as stream:
            json.dump(data, stream, separators=(",", ":"))
        os.replace(stream.name, path)
    except OSError:
        pass  # a cache that cannot be written only costs time
