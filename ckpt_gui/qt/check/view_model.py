"""Everything the GUI shows about a comparison, computed in one call off the GUI thread.

    result = run_comparison(checkpoint, ConfigChoice("architecture", "LlamaForCausalLM"))
    result.report       # the MatchReport (as ``ckpt-gui check`` gives it)
    result.root         # the checkpoint's tree plus ghost rows for missing keys
    result.problems     # grouped rows for the mismatch table

No Qt here: the GUI runs ``run_comparison`` on a Worker and only displays the result.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

from ckpt_gui.core.check.config_source import ResolvedConfig, resolve_config
from ckpt_gui.core.check.expected import ExpectedModel
from ckpt_gui.core.check.expected_cache import load_expected
from ckpt_gui.core.check.key_groups import group_keys
from ckpt_gui.core.check.matching import MatchReport, compare
from ckpt_gui.core.check.status import KeyStatus
from ckpt_gui.core.errors import CheckpointError
from ckpt_gui.core.model import Checkpoint
from ckpt_gui.core.tree.build import ModuleNode
from ckpt_gui.core.tree.ghosts import tree_with_ghosts

KINDS = ("own", "path", "hub", "architecture")
Shape = tuple[int, ...]


@dataclass(frozen=True)
class ConfigChoice:
    """What the user picked to compare with.

    ``kind``: ``own`` (the checkpoint's config.json), ``path`` (a config.json or model
    folder), ``hub`` (``org/name[@rev]``) or ``architecture`` (``LlamaForCausalLM``).
    ``overrides`` are config values to change before building (``{"vocab_size": 32001}``).
    """

    kind: str
    spec: str | None = None
    overrides: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown config kind {self.kind!r}")
        object.__setattr__(self, "overrides", MappingProxyType(dict(self.overrides)))

    @property
    def label(self) -> str:
        base = {
            "own": "its own config.json",
            "path": str(self.spec),
            "hub": f"Hub {self.spec}",
            "architecture": str(self.spec),
        }[self.kind]
        if self.overrides:
            changed = ", ".join(f"{k}={v}" for k, v in self.overrides.items())
            base += f" ({changed})"
        return base

    def resolve(self, checkpoint: Checkpoint) -> ResolvedConfig:
        """The config values and architecture (reads files or the Hub: call off the GUI thread)."""
        if self.kind == "own":
            return resolve_config(None, checkpoint, self.overrides)
        if not self.spec:
            raise CheckpointError("config", f"no {self.kind} given to compare with")
        if self.kind == "path" and not Path(self.spec).expanduser().exists():
            raise CheckpointError(self.spec, "no such file or folder")
        return resolve_config(self.spec, checkpoint, self.overrides)


@dataclass(frozen=True)
class ProblemRow:
    """One row of the mismatch table: a group of keys with the same problem and shapes.

    ``keys`` are transformers' names (as ``check`` reports them); ``tree_paths`` where
    each sits in the tree (checkpoint names; ghost names for missing keys).
    """

    kind: KeyStatus  # MISMATCHED, MISSING or UNEXPECTED
    pattern: str
    keys: tuple[str, ...]
    tree_paths: tuple[str, ...]
    checkpoint_shape: Shape | None
    model_shape: Shape | None

    @property
    def count(self) -> int:
        return len(self.keys)


@dataclass(frozen=True)
class ComparisonResult:
    choice: ConfigChoice
    report: MatchReport
    root: ModuleNode  # the checkpoint's tree with ghost rows
    problems: tuple[ProblemRow, ...]
    expected_shapes: Mapping[str, tuple[Shape, str]]  # missing model key -> (shape, dtype)


def run_comparison(
    checkpoint: Checkpoint, choice: ConfigChoice, plain_root: ModuleNode | None = None
) -> ComparisonResult:
    """Resolve the config, compare, and prepare the tree and table (seconds when cold).

    ``plain_root`` (the checkpoint's tree as already built) is reused when nothing is
    missing, instead of building the tree again."""
    config = choice.resolve(checkpoint)
    expected = load_expected(config)
    report = compare(checkpoint, config, expected=expected)
    shapes = missing_shapes(report, expected)
    ghosts = {report.ghost_keys[key]: shapes[key] for key in report.ghost_keys if key in shapes}
    if ghosts or plain_root is None:
        root = tree_with_ghosts(checkpoint.tensors, ghosts)
    else:
        root = plain_root
    return ComparisonResult(
        choice, report, root, tuple(problem_rows(report, checkpoint, shapes)), shapes
    )


def missing_shapes(report: MatchReport, expected: ExpectedModel) -> dict[str, tuple[Shape, str]]:
    shapes: dict[str, tuple[Shape, str]] = {}
    for key in report.missing:
        tensor = expected.tensors.get(key)
        if tensor is not None:
            shapes[key] = (tuple(tensor.shape), tensor.dtype)
    return shapes


def problem_rows(
    report: MatchReport, checkpoint: Checkpoint, missing: Mapping[str, tuple[Shape, str]]
) -> list[ProblemRow]:
    """Mismatches, then missing, then unexpected keys. Keys differing only in layer
    numbers and sharing their shapes form one row; a module that is entirely missing
    (or entirely unexpected) is one row (``model.layers.{4..31}.*``)."""
    tensors = checkpoint.tensor_map
    ghosts = {key: report.ghost_keys[key] for key in report.missing if key in report.ghost_keys}
    sources = {key: report.unexpected_sources.get(key, key) for key in report.unexpected}
    unexpected_names = set(sources.values())
    loaded = {name for name in tensors if name not in unexpected_names}
    # A module collapses only when the tree shows nothing else inside it.
    missing_modules = whole_modules(ghosts, set(tensors))
    unexpected_modules = whole_modules(sources, loaded | set(ghosts.values()))
    entries: list[tuple[KeyStatus, str, str, Shape | None, Shape | None]] = []
    for m in report.mismatched:
        entries.append(
            (KeyStatus.MISMATCHED, m.key, m.checkpoint_key, m.checkpoint_shape, m.model_shape)
        )
    for key in report.missing:
        if key not in missing_modules:
            shape = missing[key][0] if key in missing else None
            entries.append((KeyStatus.MISSING, key, ghosts.get(key, ""), None, shape))
    for key, source in sources.items():
        if key not in unexpected_modules:
            info = tensors.get(source)
            entries.append((KeyStatus.UNEXPECTED, key, source, info.shape if info else None, None))
    buckets: dict[tuple[KeyStatus, Shape | None, Shape | None], list[tuple[str, str]]] = {}
    for kind, key, path, ckpt_shape, model_shape in entries:
        buckets.setdefault((kind, ckpt_shape, model_shape), []).append((key, path))
    rows: list[ProblemRow] = []
    for (kind, ckpt_shape, model_shape), members in buckets.items():
        path_of = dict(members)
        for group in group_keys([key for key, _ in members]):
            paths = tuple(path_of[k] for k in group.keys if path_of[k])
            rows.append(ProblemRow(kind, group.pattern, group.keys, paths, ckpt_shape, model_shape))
    rows.extend(module_rows(KeyStatus.MISSING, missing_modules, ghosts))
    rows.extend(module_rows(KeyStatus.UNEXPECTED, unexpected_modules, sources))
    rows.sort(key=lambda r: r.kind.severity)  # stable: keeps first-seen order within a kind
    return rows


def whole_modules(paths: Mapping[str, str], others: set[str]) -> dict[str, str]:
    """Key -> the outermost module (in tree naming) holding its ``paths`` entry and none
    of the ``others`` (the rest of the tree), when that module holds more than one key."""
    occupied: set[str] = set()
    for name in others:
        parts = name.split(".")
        occupied.update(".".join(parts[:depth]) for depth in range(1, len(parts)))
    outermost: dict[str, str] = {}
    members: dict[str, int] = {}
    for key, path in paths.items():
        parts = path.split(".")
        for depth in range(1, len(parts)):
            module = ".".join(parts[:depth])
            if module not in occupied:
                outermost[key] = module
                members[module] = members.get(module, 0) + 1
                break
    return {key: module for key, module in outermost.items() if members[module] > 1}


def module_rows(
    kind: KeyStatus, modules: Mapping[str, str], paths: Mapping[str, str]
) -> list[ProblemRow]:
    """One row per whole module, numbered ones grouped (``model.layers.{4..31}.*``)."""
    keys_of: dict[str, list[str]] = {}
    for key, module in modules.items():
        keys_of.setdefault(module, []).append(key)
    rows = []
    for group in group_keys(list(keys_of)):
        keys = tuple(k for module in group.keys for k in keys_of[module])
        tree_paths = tuple(paths[k] for k in keys if paths.get(k))
        rows.append(ProblemRow(kind, group.pattern + ".*", keys, tree_paths, None, None))
    return rows
