"""Turn what the user typed (a path, later a Hub repo id) into a Checkpoint."""

from __future__ import annotations

from pathlib import Path

from ckpt_gui.core.formats import open_checkpoint
from ckpt_gui.core.model import Checkpoint


def open_target(target: str | Path) -> Checkpoint:
    """Open a local file or folder."""
    return open_checkpoint(target)
