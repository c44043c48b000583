"""What distributed trainers write: torch DCP folders and DeepSpeed ZeRO checkpoints.

Both are read without torch.distributed, DeepSpeed or a process group: their
metadata files are pickles of those libraries' classes, read by our own
non-executing unpickler (``core/pickles``). ``layout.py`` describes where the
pieces of each full tensor lie; ``dcp.py`` and ``deepspeed.py`` build that
description from each format's files; ``values.py`` assembles a full tensor
from its pieces, one tensor at a time, for statistics, scans and exports.
"""

from __future__ import annotations

from pathlib import Path

from ckpt_gui.core.formats.distributed import dcp, deepspeed


def detect(folder: Path) -> str | None:
    """"dcp", "deepspeed" or None for a folder."""
    if dcp.is_dcp_folder(folder):
        return "dcp"
    if deepspeed.is_deepspeed_folder(folder):
        return "deepspeed"
    return None
