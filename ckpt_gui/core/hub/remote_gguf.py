"""A remote GGUF file's header from byte ranges, never its tensor data.

``gguf.GGUFReader`` reads from a file, so the first bytes are fetched into a
temporary file and parsed there (``header_only``: tensor data lies past its end).
GGUF headers hold the tokenizer (a few MB for a large vocabulary): the prefix
starts at the read-ahead and doubles until the header fits, up to
``MAX_HEADER_BYTES``.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from ckpt_gui.core.errors import CheckpointError
from ckpt_gui.core.gguf.header import HeaderPastEnd, read_header
from ckpt_gui.core.gguf.naming import describe
from ckpt_gui.core.hub.http import HubClient
from ckpt_gui.core.hub.ref import HubRef
from ckpt_gui.core.model import Checkpoint

MAX_HEADER_BYTES = 256 * 1024 * 1024


def read_gguf(
    client: HubClient, ref: HubRef, filename: str, commit: str, size: int, read_ahead: int
) -> Checkpoint:
    """Describe ``filename`` of the repo as the local reader would, from its header alone."""
    display = f"{ref.repo_id}/{filename}"
    length = min(size, max(read_ahead, 64 * 1024))
    handle, name = tempfile.mkstemp(prefix="ckpt-gui-gguf-", suffix=".gguf")
    path = Path(name)
    try:
        os.close(handle)
        while True:
            data = client.read_range(ref, filename, commit, 0, length)
            path.write_bytes(data)
            try:
                header = read_header(path, display, header_only=True, file_size=size)
                break
            except HeaderPastEnd:
                if len(data) >= size or length >= MAX_HEADER_BYTES:
                    raise CheckpointError(
                        display, f"GGUF header does not end within {len(data):,} bytes"
                    ) from None
                length = min(size, length * 4, MAX_HEADER_BYTES)
    finally:
        path.unlink(missing_ok=True)
    return describe(header, source=display, relative=filename, root=None)
