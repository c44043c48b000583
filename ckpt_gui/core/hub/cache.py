"""The local Hugging Face cache as a library: list it, find a snapshot, download into it.

Layout (written by huggingface_hub, read here without network):
``models--org--name/{refs/<branch>, blobs/<hash>, snapshots/<commit>/<file> -> blob}``.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ckpt_gui.core.weight_files import WEIGHT_SUFFIXES

_COMMIT = re.compile(r"^[0-9a-f]{40}$")


@dataclass(frozen=True)
class CachedRevision:
    commit: str
    refs: tuple[str, ...]
    size: int
    path: Path
    last_modified: float
    has_weights: bool

    def to_json(self) -> dict[str, Any]:
        return {
            "commit": self.commit,
            "refs": list(self.refs),
            "size": self.size,
            "path": str(self.path),
            "last_modified": self.last_modified,
            "has_weights": self.has_weights,
        }


@dataclass(frozen=True)
class CachedModel:
    """One model repo in the cache; ``path`` is the ``models--org--name`` folder.

    ``open_path`` is what to hand to ``open_target``: the snapshot of ``main`` (or
    the newest one), so the Library opens exactly what is on disk.
    """

    repo_id: str
    revisions: tuple[CachedRevision, ...]
    size: int
    path: Path
    last_modified: float

    @property
    def has_weights(self) -> bool:
        return any(r.has_weights for r in self.revisions)

    @property
    def open_path(self) -> Path:
        for revision in self.revisions:
            if "main" in revision.refs:
                return revision.path
        newest = max(self.revisions, key=lambda r: r.last_modified, default=None)
        return newest.path if newest is not None else self.path

    def to_json(self) -> dict[str, Any]:
        return {
            "repo_id": self.repo_id,
            "size": self.size,
            "path": str(self.path),
            "open_path": str(self.open_path),
            "last_modified": self.last_modified,
            "has_weights": self.has_weights,
            "revisions": [r.to_json() for r in self.revisions],
        }


def default_cache_dir() -> Path:
    """The hub cache folder, from the environment as it is now (the client reads it at import)."""
    explicit = os.environ.get("HF_HUB_CACHE") or os.environ.get("HUGGINGFACE_HUB_CACHE")
    if explicit:
        return Path(os.path.expandvars(explicit)).expanduser()
    home = os.environ.get("HF_HOME")
    if home:
        return Path(os.path.expandvars(home)).expanduser() / "hub"
    xdg = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(xdg).expanduser() / "huggingface" / "hub"


def repo_folder(repo_id: str, cache_dir: Path | None = None) -> Path:
    return (cache_dir or default_cache_dir()) / ("models--" + repo_id.replace("/", "--"))


def cached_snapshot(
    repo_id: str, revision: str | None = None, cache_dir: Path | None = None
) -> Path | None:
    """The snapshot folder for ``revision`` (branch, tag or commit), if it is cached."""
    folder = repo_folder(repo_id, cache_dir)
    snapshots = folder / "snapshots"
    if not snapshots.is_dir():
        return None
    wanted = revision or "main"
    commit: str | None = None
    ref_file = folder / "refs" / wanted
    # refs/pr/1 is a nested path; a revision may not climb out of refs/.
    if ".." not in Path(wanted).parts and ref_file.is_file():
        commit = ref_file.read_text(encoding="utf-8").strip()
    elif _COMMIT.match(wanted):
        commit = wanted
    elif len(wanted) >= 7 and all(c in "0123456789abcdef" for c in wanted):
        matches = [p.name for p in snapshots.iterdir() if p.name.startswith(wanted)]
        commit = matches[0] if len(matches) == 1 else None
    if commit is None or not _COMMIT.match(commit):
        return None
    snapshot = snapshots / commit
    return snapshot if snapshot.is_dir() else None


def list_cached_models(cache_dir: Path | None = None, filter_text: str = "") -> list[CachedModel]:
    """Every model repo in the cache, by name; ``filter_text`` matches the repo id.

    A missing cache folder is an empty library, not an error.
    """
    from huggingface_hub import scan_cache_dir
    from huggingface_hub.errors import CacheNotFound

    folder = cache_dir or default_cache_dir()
    try:
        info = scan_cache_dir(folder)
    except CacheNotFound:
        return []
    needle = filter_text.strip().lower()
    models: list[CachedModel] = []
    for repo in info.repos:
        if repo.repo_type != "model" or needle not in repo.repo_id.lower():
            continue
        revisions = tuple(
            sorted(
                (
                    CachedRevision(
                        commit=rev.commit_hash,
                        refs=tuple(sorted(rev.refs)),
                        size=rev.size_on_disk,
                        path=Path(rev.snapshot_path),
                        last_modified=rev.last_modified,
                        has_weights=any(f.file_name.endswith(WEIGHT_SUFFIXES) for f in rev.files),
                    )
                    for rev in repo.revisions
                ),
                key=lambda r: -r.last_modified,
            )
        )
        models.append(
            CachedModel(
                repo_id=repo.repo_id,
                revisions=revisions,
                size=repo.size_on_disk,
                path=Path(repo.repo_path),
                last_modified=repo.last_modified,
            )
        )
    models.sort(key=lambda m: m.repo_id.lower())
    return models
