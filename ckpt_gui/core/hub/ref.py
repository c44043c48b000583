"""What the user typed, read as a Hugging Face Hub reference.

Accepted: ``org/name``, ``org/name@rev`` (branch, tag or commit) and Hub URLs
(``https://huggingface.co/org/name``, ``.../tree/rev[/folder]``, ``.../blob/rev/file``,
``.../resolve/rev/file``). Nothing here touches the network or the disk.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from urllib.parse import quote, unquote, urlsplit

DEFAULT_ENDPOINT = "https://huggingface.co"
# The Hub's own rule (huggingface_hub.utils._validators.REPO_ID_REGEX), without
# the optional namespace: we require ``org/name`` so that a bare word stays a path.
_PART = r"[A-Za-z0-9](?:[\w\-.]{0,94}[A-Za-z0-9_])?"
_REPO_ID = re.compile(rf"^{_PART}/{_PART}$")
_HUB_HOSTS = {"huggingface.co", "www.huggingface.co", "hf.co"}


@dataclass(frozen=True)
class HubRef:
    """A model repo on the Hub, a revision (None = the default branch) and maybe one file."""

    repo_id: str
    revision: str | None = None
    path_in_repo: str | None = None

    def __str__(self) -> str:
        """What the user would type to get this again (``parse_hub_target`` reads it back)."""
        if self.path_in_repo:
            revision = quote(self.revision_or_main, safe="")
            return f"{DEFAULT_ENDPOINT}/{self.repo_id}/tree/{revision}/{self.path_in_repo}"
        return self.repo_id if self.revision is None else f"{self.repo_id}@{self.revision}"

    @property
    def revision_or_main(self) -> str:
        return self.revision or "main"


def hub_endpoint() -> str:
    """``HF_ENDPOINT`` read now (huggingface_hub reads it once, at import)."""
    return (os.environ.get("HF_ENDPOINT") or DEFAULT_ENDPOINT).rstrip("/")


def is_repo_id(text: str) -> bool:
    if not _REPO_ID.match(text) or "--" in text or ".." in text:
        return False
    return not text.endswith(".git")


def parse_hub_target(text: str, endpoint: str | None = None) -> HubRef | None:
    """The Hub reference ``text`` names, or None when it does not look like one."""
    text = text.strip()
    if text.startswith(("http://", "https://")):
        return _parse_url(text, endpoint or hub_endpoint())
    repo, _, revision = text.partition("@")
    if not is_repo_id(repo) or (_ and not revision) or "@" in revision:
        return None
    return HubRef(repo, revision or None)


def _parse_url(url: str, endpoint: str) -> HubRef | None:
    parts = urlsplit(url)
    base = urlsplit(endpoint)
    own_host = parts.netloc == base.netloc and parts.netloc != ""
    if not (parts.netloc.lower() in _HUB_HOSTS or own_host):
        return None
    prefix = base.path.rstrip("/") if own_host else ""
    path = parts.path[len(prefix) :] if prefix and parts.path.startswith(prefix) else parts.path
    segments = [unquote(s) for s in path.split("/") if s]
    if not segments or segments[0] in ("datasets", "spaces", "api"):
        return None
    if len(segments) < 2 or not is_repo_id(f"{segments[0]}/{segments[1]}"):
        return None
    repo_id = f"{segments[0]}/{segments[1]}"
    rest = segments[2:]
    if not rest:
        return HubRef(repo_id)
    if rest[0] not in ("tree", "blob", "resolve") or len(rest) < 2:
        return None
    revision = rest[1]
    file_path = "/".join(rest[2:]) or None
    if file_path is not None and ".." in file_path.split("/"):
        return None
    if rest[0] in ("blob", "resolve") and file_path is None:
        return None
    # A folder (tree/rev/sub) keeps the folder; blob and resolve name a file.
    return HubRef(repo_id, revision, file_path)
