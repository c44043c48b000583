"""What would ``torch.load`` import from a checkpoint's pickles? Answered without loading them.

Works where ``open_checkpoint`` refuses (a pickle that asks for ``os.system``
raises UnsafePickleError there): the weight files are found the same way, and
each pickle's globals are listed and classified, nothing else.

Files are judged the way ``torch.load`` reads them: a file is a zip only when
its first bytes say so (a pickle with a zip appended is unpickled by torch's
legacy path), every record of a zip is walked, duplicates included. A file
that parses as safetensors is still walked as torch's legacy loader would walk
it: if that walk names any global, the file is a pickle to torch and is judged
as one. A file that cannot be judged is not safe.

Globals fall in three groups (``groups.py``): code that runs (the danger),
classes whose code would be imported, plain data.
"""

from __future__ import annotations

import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ckpt_gui.core.errors import CheckpointError
from ckpt_gui.core.formats import folder, index, safetensors
from ckpt_gui.core.model import PickleGlobal
from ckpt_gui.core.pickles.groups import CLASS, CODE, DATA, classify
from ckpt_gui.core.pickles.opcodes import PickleScan, scan_pickle_file
from ckpt_gui.core.pickles.polyglot import walk_as_torch


@dataclass(frozen=True)
class FileRisk:
    """One weight file: its kind and, for pickles, every global it imports."""

    path: str
    kind: str  # "pickle", "safetensors" or "unknown" (cannot be judged; see problems)
    globals: tuple[PickleGlobal, ...] = ()
    problems: tuple[str, ...] = ()

    @property
    def refused(self) -> tuple[PickleGlobal, ...]:
        return tuple(g for g in self.globals if not g.allowed)

    def group(self, name: str) -> tuple[PickleGlobal, ...]:
        return tuple(g for g in self.globals if g.group == name)

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

    def group(self, name: str) -> tuple[PickleGlobal, ...]:
        """Every global of group ``name`` ("code", "class", "data"), once, across files."""
        seen: dict[str, PickleGlobal] = {}
        for file in self.files:
            for g in file.group(name):
                seen.setdefault(g.name, g)
        return tuple(seen.values())

    @property
    def unjudged(self) -> tuple[FileRisk, ...]:
        """Files torch might unpickle that could not be walked to the end."""
        return tuple(
            f for f in self.files if f.kind == "unknown" or (f.kind == "pickle" and f.problems)
        )

    @property
    def dangerous(self) -> bool:
        """Code would run under torch.load(weights_only=False), or a file cannot be judged."""
        return bool(self.group(CODE)) or bool(self.unjudged)

    @property
    def safe(self) -> bool:
        """True when a weights-only load would accept every global (or there are no pickles)."""
        return not self.refused and not self.unjudged

    @property
    def verdict(self) -> str:
        """One line a user can act on."""
        code, classes = self.group(CODE), self.group(CLASS)
        if code:
            names = ", ".join(g.name for g in code[:3]) + (" ..." if len(code) > 3 else "")
            return (
                f"DANGER: names code that runs when torch.load(weights_only=False) loads it "
                f"({names}); never load it with torch. ckpt-gui runs nothing."
            )
        if self.unjudged:
            return "NOT SAFE: a file cannot be judged (see problems); do not load it with torch"
        if classes:
            return (
                f"not dangerous by itself: torch.load(weights_only=False) would import and run "
                f"the code of {len(classes)} classes (only if you trust their source); "
                "weights_only=True refuses it, ckpt-gui reads it without them"
            )
        if not self.has_pickles:
            return "no pickles: no code can run"
        if self.refused:
            return "plain data only, but some of it is not on the weights-only allow list"
        return "safe: the weights-only loader accepts every global"

    def to_json(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "safe": self.safe,
            "dangerous": self.dangerous,
            "verdict": self.verdict,
            "has_pickles": self.has_pickles,
            "refused": [g.to_json() for g in self.refused],
            "groups": {
                name: [g.to_json() for g in self.group(name)] for name in (CODE, CLASS, DATA)
            },
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
    return PickleRiskReport(str(target), tuple(judge_file(file) for file in files))


def judge_file(file: Path) -> FileRisk:
    """One file, as torch.load would read it."""
    if _is_safetensors(file):
        return _judge_safetensors(file)
    # Anything else may be a pickle to torch's legacy path (protocol 0 and 1 included).
    try:
        scanned = scan_pickle_file(file)
    except CheckpointError as exc:
        return FileRisk(str(file), "unknown", problems=(exc.problem,))
    return _pickle_risk(file, scanned, False)


def _judge_safetensors(file: Path) -> FileRisk:
    """A real safetensors file fails as a pickle within its header; a polyglot does not."""
    with file.open("rb") as stream:
        header_length = int.from_bytes(stream.read(8), "little")
    walk = walk_as_torch(file, header_length, file.stat().st_size)
    if not walk.judged:
        return FileRisk(
            str(file),
            "unknown",
            problems=(
                f"parses as safetensors, but torch.load would unpickle more than its first "
                f"{walk.limit:,} bytes: cannot be judged",
            ),
        )
    if not walk.globals:
        return FileRisk(str(file), "safetensors")
    scanned = PickleScan(list(dict.fromkeys(walk.globals)))
    return _pickle_risk(file, scanned, True)


def _pickle_risk(file: Path, scanned: PickleScan, safetensors_like: bool) -> FileRisk:
    problems = list(scanned.problems)
    if safetensors_like:
        problems.append(
            "parses as safetensors, but torch.load would unpickle it: judged as a pickle"
        )
    return FileRisk(
        str(file), "pickle", tuple(classify(name) for name in scanned.globals), tuple(problems)
    )


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
