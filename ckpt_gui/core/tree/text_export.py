"""Write (part of) a module tree as JSON, CSV or Markdown, for the GUI's "Save tree as"."""

from __future__ import annotations

import csv
import io
import json
import os
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from ckpt_gui.core.tree.build import ModuleNode

COLUMNS = ("name", "kind", "shape", "dtype", "parameters", "bytes", "file")
FORMATS = {"json": "JSON", "csv": "CSV", "md": "Markdown"}


def node_row(node: ModuleNode) -> dict[str, Any]:
    tensor = node.tensor
    return {
        "name": node.path,
        "kind": "tensor" if tensor is not None else "module",
        "shape": list(tensor.shape) if tensor is not None else None,
        "dtype": tensor.dtype if tensor is not None else None,
        "parameters": node.parameters,
        "bytes": node.nbytes,
        "file": tensor.file if tensor is not None else None,
    }


def export_tree(nodes: Iterable[ModuleNode], fmt: str) -> str:
    """Rows for ``nodes`` (the root, with an empty path, is skipped) in ``fmt``."""
    rows = [node_row(n) for n in nodes if n.path]
    if fmt == "json":
        return json.dumps(rows, indent=1) + "\n"
    if fmt == "csv":
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(COLUMNS)
        for row in rows:
            writer.writerow([_cell(row[c]) for c in COLUMNS])
        return out.getvalue()
    if fmt == "md":
        lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
        for row in rows:
            cells = [_cell(row[c]).replace("|", "\\|") for c in COLUMNS]
            lines.append("| " + " | ".join(cells) + " |")
        return "\n".join(lines) + "\n"
    raise ValueError(f"unknown tree export format {fmt!r} (use json, csv or md)")


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, list):
        return "x".join(str(v) for v in value) if value else "scalar"
    return str(value)


def write_text_atomically(path: Path, text: str) -> None:
    """Write next to ``path``, then rename: a failure never leaves half a file."""
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as stream:
            stream.write(text)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
