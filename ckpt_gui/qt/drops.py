"""Turn what is dropped on the window into targets for ``open_target``.

Local files and folders become paths at this boundary; text that looks like a Hub
repo id (``org/name``) or a huggingface.co URL becomes a repo id. Nothing here
touches the network or Qt widgets, so it is easy to test.
"""

from __future__ import annotations

import re
from pathlib import Path

from PySide6.QtCore import QMimeData

_REPO_ID = re.compile(r"^[A-Za-z0-9][\w.-]{0,95}/[\w.-]{1,96}$")
_HUB_URL = re.compile(
    r"^https?://(?:www\.)?(?:huggingface\.co|hf\.co)/(?!datasets/|spaces/)"
    r"(?P<repo>[A-Za-z0-9][\w.-]*/[\w.-]+)(?:/.*)?$"
)


def hub_repo_id(text: str) -> str | None:
    """``org/name`` for a repo id or a huggingface.co model URL, else None."""
    text = text.strip()
    match = _HUB_URL.match(text)
    if match:
        return match.group("repo")
    if _REPO_ID.match(text) and not text.startswith(".") and not Path(text).exists():
        return text
    return None


def targets_from_text(text: str) -> list[str]:
    """One target per non-empty line: an existing path, a file:// URL, or a Hub id/URL."""
    targets: list[str] = []
    for line in text.splitlines():
        line = line.strip()
        if not line:
            continue
        if line.startswith("file://"):
            from PySide6.QtCore import QUrl

            targets.append(QUrl(line).toLocalFile())
        elif Path(line).expanduser().exists():
            targets.append(str(Path(line).expanduser()))
        else:
            repo = hub_repo_id(line)
            if repo is not None:
                targets.append(repo)
    return targets


def targets_from_mime(mime: QMimeData) -> list[str]:
    """Every target in a drop, in order, without duplicates."""
    targets: list[str] = []
    if mime.hasUrls():
        for url in mime.urls():
            if url.isLocalFile():
                targets.append(str(Path(url.toLocalFile())))
            else:
                repo = hub_repo_id(url.toString())
                if repo is not None:
                    targets.append(repo)
    if not targets and mime.hasText():
        targets.extend(targets_from_text(mime.text()))
    return list(dict.fromkeys(targets))
