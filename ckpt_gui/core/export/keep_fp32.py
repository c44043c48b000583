"""Which tensors an architecture keeps in float32: ``_keep_in_fp32_modules(_strict)``.

transformers keeps tensors whose name matches ``_keep_in_fp32_modules`` in fp32
when loading as fp16, and those matching ``_keep_in_fp32_modules_strict`` for
both fp16 and bf16 (``re.search`` of each pattern, ``*`` as ``.*``). The lists
are class attributes of the modeling code; they are read here from the source
with ``ast`` rather than by importing transformers (several seconds) so that a
conversion starts at once. Sub-model configs (``text_config`` ...) contribute
the lists of their own architecture, as ``post_init`` merges them.
"""

from __future__ import annotations

import ast
import importlib.util
import re
from collections.abc import Mapping
from functools import lru_cache
from pathlib import Path
from typing import Any

ATTRS = ("_keep_in_fp32_modules", "_keep_in_fp32_modules_strict")


def keep_in_fp32_patterns(config: Mapping[str, Any] | None, target_dtype: str) -> list[str]:
    """Name patterns kept in fp32 when converting to ``target_dtype`` (F16/BF16)."""
    if config is None or target_dtype not in ("F16", "BF16"):
        return []
    normal, strict = _collect(config, depth=0)
    patterns = set(strict)
    if target_dtype == "F16":
        patterns |= normal
    return sorted(patterns)


def compile_patterns(patterns: list[str]) -> re.Pattern[str] | None:
    if not patterns:
        return None
    return re.compile("|".join(f"(?:{p.replace('*', '.*')})" for p in patterns))


def _collect(config: Mapping[str, Any], depth: int) -> tuple[set[str], set[str]]:
    normal: set[str] = set()
    strict: set[str] = set()
    model_type = config.get("model_type")
    architectures = config.get("architectures") or []
    if isinstance(model_type, str):
        classes = _classes(model_type)
        names = [a for a in architectures if isinstance(a, str) and a in classes]
        if not names:
            names = [n for n in classes if n.endswith("PreTrainedModel")]
        for name in names:
            found = _resolve(classes, name)
            normal |= set(found[ATTRS[0]] or ())
            strict |= set(found[ATTRS[1]] or ())
    if depth < 3:
        for value in config.values():
            if isinstance(value, Mapping) and "model_type" in value:
                sub_normal, sub_strict = _collect(value, depth + 1)
                normal |= sub_normal
                strict |= sub_strict
    return normal, strict


def _resolve(classes: dict[str, tuple[list[str], dict[str, Any]]], name: str) -> dict[str, Any]:
    """Attribute values along the in-file base chain (the first definition wins, as in MRO)."""
    found: dict[str, Any] = dict.fromkeys(ATTRS)
    seen: set[str] = set()
    queue = [name]
    while queue:
        current = queue.pop(0)
        if current in seen or current not in classes:
            continue
        seen.add(current)
        bases, attrs = classes[current]
        for attr in ATTRS:
            if found[attr] is None and attr in attrs:
                found[attr] = attrs[attr] or []
        queue.extend(bases)
    return found


@lru_cache(maxsize=64)
def _classes(model_type: str) -> dict[str, tuple[list[str], dict[str, Any]]]:
    """Class name -> (base names, keep-in-fp32 attributes) for one modeling file."""
    path = _modeling_file(model_type)
    if path is None:
        return {}
    try:
        tree = ast.parse(path.read_text(encoding="utf-8"))
    except (OSError, SyntaxError, UnicodeDecodeError):
        return {}
    classes: dict[str, tuple[list[str], dict[str, Any]]] = {}
    for node in tree.body:
        if not isinstance(node, ast.ClassDef):
            continue
        bases = [b.id for b in node.bases if isinstance(b, ast.Name)]
        attrs: dict[str, Any] = {}
        for statement in node.body:
            if isinstance(statement, ast.Assign | ast.AnnAssign):
                targets = (
                    statement.targets if isinstance(statement, ast.Assign) else [statement.target]
                )
                for target in targets:
                    if isinstance(target, ast.Name) and target.id in ATTRS and statement.value:
                        try:
                            value = ast.literal_eval(statement.value)
                        except ValueError:
                            continue
                        attrs[target.id] = list(value) if value else []
        classes[node.name] = (bases, attrs)
    return classes


def _modeling_file(model_type: str) -> Path | None:
    spec = importlib.util.find_spec("transformers")
    if spec is None or not spec.submodule_search_locations:
        return None
    folder_name = model_type.replace("-", "_")
    for location in spec.submodule_search_locations:
        candidate = Path(location) / "models" / folder_name / f"modeling_{folder_name}.py"
        if candidate.is_file():
            return candidate
    return None
