"""Model folders (config.json + weights in any format) and HF cache snapshots."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

from ckpt_gui.core.errors import CheckpointError
from ckpt_gui.core.gguf.splits import later_split_part
from ckpt_gui.core.model import Checkpoint, FileInfo
from ckpt_gui.core.weight_files import PREFERRED, WEIGHT_SUFFIXES

NAME = "folder"
__all__ = ["PREFERRED", "WEIGHT_SUFFIXES", "read", "read_config"]


def resolve_cache_repo(folder: Path) -> tuple[Path, list[str]]:
    """Map an HF cache repo folder (``models--org--name``) to its snapshot."""
    snapshots = folder / "snapshots"
    if not (folder.name.startswith(("models--", "datasets--")) and snapshots.is_dir()):
        return folder, []
    ref = folder / "refs" / "main"
    if ref.is_file():
        revision = ref.read_text(encoding="utf-8").strip()
        snapshot = snapshots / revision
        if snapshot.is_dir():
            return snapshot, [f"HF cache: showing revision {revision[:12]} (refs/main)"]
    candidates = sorted(
        (p for p in snapshots.iterdir() if p.is_dir()), key=lambda p: p.stat().st_mtime
    )
    if not candidates:
        raise CheckpointError(folder, "HF cache folder has no snapshots")
    return candidates[-1], [
        f"HF cache: no refs/main, showing newest snapshot {candidates[-1].name[:12]}"
    ]


def pick_weights(folder: Path) -> tuple[list[Path], list[str]]:
    """The weight files (or index) to read from a folder, and warnings about the rest."""
    names = {p.name for p in folder.iterdir()}
    warnings: list[str] = []
    for preferred in PREFERRED:
        if preferred in names:
            others = [
                n
                for n in PREFERRED
                if n in names and n != preferred and not _same_family(n, preferred)
            ]
            if others:
                warnings.append(f"folder also has {', '.join(others)}; showing {preferred}")
            return [folder / preferred], warnings
    indexes = sorted(n for n in names if n.endswith(".index.json"))
    if indexes:
        if len(indexes) > 1:
            warnings.append(f"folder has several indexes; showing {indexes[0]}")
        return [folder / indexes[0]], warnings
    for suffix in WEIGHT_SUFFIXES:
        found = sorted(folder / n for n in names if n.endswith(suffix) and (folder / n).is_file())
        if found:
            return found, warnings
    ggufs = sorted(
        folder / n
        for n in names
        if n.endswith(".gguf") and not later_split_part(n) and (folder / n).is_file()
    )
    if ggufs:
        # One file per quantization, each a whole model (as GGUF repos hold them); a
        # split set counts as its first part, which opens the others.
        if len(ggufs) > 1:
            warnings.append(
                f"folder has {len(ggufs)} GGUF files; showing {ggufs[0].name} "
                "(open a file for another)"
            )
        return ggufs[:1], warnings
    raise CheckpointError(
        folder, "folder holds no checkpoint (no .safetensors, .bin, .pt, .pth, .ckpt or index.json)"
    )


def _same_family(a: str, b: str) -> bool:
    return a.split(".")[0] == b.split(".")[0] and a.split(".")[1] == b.split(".")[1]


def read_config(folder: Path) -> dict[str, Any] | None:
    path = folder / "config.json"
    if not path.is_file():
        return None
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        return None
    return config if isinstance(config, dict) else None


def read(folder: Path, open_file: Any) -> Checkpoint:
    """Read a folder; ``open_file(path, root)`` reads one weight or index file."""
    snapshot, warnings = resolve_cache_repo(folder)
    paths, pick_warnings = pick_weights(snapshot)
    warnings += pick_warnings
    parts = [open_file(path, snapshot) for path in paths]
    checkpoint = parts[0] if len(parts) == 1 else merge(parts, snapshot)
    config = read_config(snapshot)
    if config is None and (snapshot / "config.json").exists():
        warnings.append("config.json is not a valid JSON object; ignored")
    return dataclasses.replace(
        checkpoint,
        source=str(folder),
        root=snapshot,
        config=config if config is not None else checkpoint.config,  # GGUF: its own
        warnings=tuple(warnings) + checkpoint.warnings,
    )


def merge(parts: list[Checkpoint], root: Path) -> Checkpoint:
    """Several unindexed weight files in one folder: one checkpoint, no duplicate names."""
    seen: dict[str, str] = {}
    tensors = []
    files: list[FileInfo] = []
    metadata: dict[str, Any] = {}
    for part in parts:
        files.extend(part.files)
        metadata.update(part.metadata)
        for tensor in part.tensors:
            if tensor.name in seen:
                raise CheckpointError(
                    root, f"tensor '{tensor.name}' is in both {seen[tensor.name]} and {tensor.file}"
                )
            seen[tensor.name] = tensor.file
            tensors.append(tensor)
    formats = sorted({p.format for p in parts})
    return Checkpoint(
        source=str(root),
        format="+".join(formats) + "-multi",
        tensors=tuple(tensors),
        files=tuple(files),
        root=root,
        metadata=metadata,
        warnings=(f"{len(parts)} weight files without an index; shown together",),
        pickle_globals=tuple(g for p in parts for g in p.pickle_globals),
    )
