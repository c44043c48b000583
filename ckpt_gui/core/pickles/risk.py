"""What would loading a checkpoint's pickles import? Answered without loading them.

Works where ``open_checkpoint`` refuses (a pickle that asks for ``os.system``
raises UnsafePickleError there): the weight files are found the same way, and
each pickle's globals are listed and classified, nothing else.
"""

from __future__ import annotations

import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ckpt_gui.core.errors import CheckpointError
from ckpt_gui.core.formats import folder, index, safetensors
from ckpt_gui.core.model import PickleGlobal
from ckpt_gui.core.pickles.opcodes import classify, scan_pickle_file, weights_only_allowed_names


@dataclass(frozen=True)
class FileRisk:
    """One weight file: its kind and, for pickles, every global it imports."""

    path: str
    kind: str  # "pickle", "safetensors" or "unknown" (neither; see problems)
    globals: tuple[PickleGlobal, ...] = ()
    problems: tuple[str, ...] = ()

    @property
    def refused(self) -> tuple[PickleGlobal, ...]:
        return tuple(g for g in self.globals if not g.allowed)

    def to_json(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "kind": self.kind,
            "globals": [g.to_json() for g in self.globals],
            "refused": len(self.refused),
            "problems": list(self.problems),
        }


@dataclass(frozen=True)
class PickleRiskReport:
    source: str
    files: tuple[FileRisk, ...]

    @property
    def refused(self) -> tuple[PickleGlobal, ...]:
        """Every refused global, once, across files."""
        seen: dict[str, PickleGlobal] = {}
        for file in self.files:
            for g in file.refused:
                seen.setdefault(g.name, g)
        return tuple(seen.values())

    @property
    def has_pickles(self) -> bool:
        return any(f.kind == "pickle" for f in self.files)

    @property
    def safe(self) -> bool:
        """True when a weights-only load would accept every global (or there are no pickles)."""
        return not self.refused and not any(f.problems for f in self.files if f.kind == "pickle")

    def to_json(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "safe": self.safe,
            "has_pickles": self.has_pickles,
            "refused": [g.to_json() for g in self.refused],
            "files": [f.to_json() for f in self.files],
        }


def pickle_risk(target: str | Path) -> PickleRiskReport:
    """List and classify the globals in every pickle of a checkpoint file or folder."""
    path = Path(target).expanduser()
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        raise CheckpointError(target, "no such file or folder") from None
    except OSError as exc:
        raise CheckpointError(target, exc.strerror or str(exc)) from None
    if stat.S_ISDIR(mode):
        snapshot, _ = folder.resolve_cache_repo(path)
        paths, _ = folder.pick_weights(snapshot)
        # Every pickle in the folder, not only the one the app would open: a stray
        # pytorch_model.bin next to model.safetensors is still what `from_pretrained`
        # may load somewhere else.
        paths += sorted(
            p
            for p in snapshot.iterdir()
            if p.suffix in (".bin", ".pt", ".pth", ".ckpt") and p.is_file()
        )
    else:
        paths = [path]
    files: list[Path] = []
    for candidate in paths:
        files.extend(_expand_index(candidate))
    files = list(dict.fromkeys(files))
    allowed: frozenset[str] | None = None
    risks: list[FileRisk] = []
    for file in files:
        if _is_safetensors(file):
            risks.append(FileRisk(str(file), "safetensors"))
            continue
        # Anything else may be a pickle (protocol 0 and 1 included): walk it.
        try:
            scanned = scan_pickle_file(file)
        except CheckpointError as exc:
            risks.append(FileRisk(str(file), "unknown", problems=(exc.problem,)))
            continue
        if allowed is None:
            allowed = weights_only_allowed_names()
        risks.append(
            FileRisk(
                str(file),
                "pickle",
                tuple(classify(name, allowed) for name in scanned.globals),
                tuple(scanned.problems),
            )
        )
    return PickleRiskReport(str(target), tuple(risks))


def _expand_index(path: Path) -> list[Path]:
    if not path.name.endswith(".index.json"):
        return [path]
    weight_map, _ = index.load_index(path)
    return [
        index.resolve_shard(path.parent, shard, path) for shard in sorted(set(weight_map.values()))
    ]


def _is_safetensors(path: Path) -> bool:
    try:
        if not stat.S_ISREG(path.stat().st_mode):
            raise CheckpointError(path, "not a regular file")
        with path.open("rb") as stream:
            head = stream.read(16)
    except OSError as exc:
        raise CheckpointError(path, exc.strerror or str(exc)) from None
    return safetensors.sniff(head)
