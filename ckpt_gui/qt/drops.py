"""Turn what is dropped on the window into targets for ``open_target``.

Local files and folders become paths at this boundary. Text that names a Hub repo
(``org/name``, ``org/name@rev``) or a Hub URL is passed through as typed, once
``ckpt_gui.core.hub.ref.parse_hub_target`` accepts it, so ``.../tree/v1`` keeps its
revision and ``.../blob/main/model.safetensors`` its file. Nothing here touches the
network or Qt widgets, so it is easy to test.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QMimeData

from ckpt_gui.core.hub.ref import parse_hub_target


def hub_target(text: str) -> str | None:
    """``text`` (stripped) when it names a Hub repo, revision or file, else None.

    A local path that exists is not a Hub target, even when it looks like ``org/name``.
    """
    text = text.strip()
    if not text or parse_hub_target(text) is None:
        return None
    if not text.startswith(("http://", "https://")) and Path(text).expanduser().exists():
        return None
    return text


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
            target = hub_target(line)
            if target is not None:
                targets.append(target)
    return targets


def targets_from_mime(mime: QMimeData) -> list[str]:
    """Every target in a drop, in order, without duplicates."""
    targets: list[str] = []
    if mime.hasUrls():
        for url in mime.urls():
            if url.isLocalFile():
                targets.append(str(Path(url.toLocalFile())))
            else:
                target = hub_target(url.toString())
                if target is not None:
                    targets.append(target)
    if not targets and mime.hasText():
        targets.extend(targets_from_text(mime.text()))
    return list(dict.fromkeys(targets))
