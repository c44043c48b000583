"""transformers' GGUF tables, read without importing transformers.

Importing the ``transformers`` package costs 1-4 s on a 2-core machine, far more
than listing a GGUF file; the tables needed to list one are plain literals
(``integrations/ggml.py``: ``GGUF_CONFIG_MAPPING``, ``GGUF_CONFIG_DEFAULTS_MAPPING``)
and an import-free module (``integrations/gguf/gguf_config_mapping.py``). They are
read from the installed transformers' own files (``ast.literal_eval``, or loading
the one module by path), so they are always that version's. Should the layout
change, the package is imported the ordinary way.
"""

from __future__ import annotations

import ast
import importlib.util
from functools import cache
from pathlib import Path
from types import ModuleType
from typing import Any


def _package_dir() -> Path | None:
    spec = importlib.util.find_spec("transformers")
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


@cache
def ggml_tables() -> tuple[dict[str, Any], dict[str, Any]]:
    """(GGUF_CONFIG_MAPPING, GGUF_CONFIG_DEFAULTS_MAPPING)."""
    package = _package_dir()
    try:
        assert package is not None
        tree = ast.parse((package / "integrations" / "ggml.py").read_text(encoding="utf-8"))
        found: dict[str, Any] = {}
        for node in tree.body:
            if isinstance(node, ast.Assign) and len(node.targets) == 1:
                target = node.targets[0]
                if isinstance(target, ast.Name) and target.id in (
                    "GGUF_CONFIG_MAPPING",
                    "GGUF_CONFIG_DEFAULTS_MAPPING",
                ):
                    found[target.id] = ast.literal_eval(node.value)
        return found["GGUF_CONFIG_MAPPING"], found["GGUF_CONFIG_DEFAULTS_MAPPING"]
    except (AssertionError, OSError, SyntaxError, ValueError, KeyError):
        from transformers.integrations.ggml import (
            GGUF_CONFIG_DEFAULTS_MAPPING,
            GGUF_CONFIG_MAPPING,
        )

        return dict(GGUF_CONFIG_MAPPING), dict(GGUF_CONFIG_DEFAULTS_MAPPING)


@cache
def config_builders() -> ModuleType | Any:
    """transformers.integrations.gguf.gguf_config_mapping (GGUF_CONFIG_ARCHS, get_gguf_config)."""
    package = _package_dir()
    path = package / "integrations" / "gguf" / "gguf_config_mapping.py" if package else None
    if path is not None and path.is_file():
        spec = importlib.util.spec_from_file_location("_ckpt_gui_gguf_config_mapping", path)
        if spec is not None and spec.loader is not None:
            module = importlib.util.module_from_spec(spec)
            try:
                spec.loader.exec_module(module)
                return module
            except ImportError:
                pass  # it grew imports: fall back to the package
    from transformers.integrations.gguf import gguf_config_mapping

    return gguf_config_mapping
