"""Where an adapter's base model is on this machine, without asking the network.

``base_model_name_or_path`` (with ``revision``) is looked up, in this order:

1. as a local folder: absolute, relative to the current folder, or relative to the
   adapter's own folder (adapters are often saved next to their base);
2. as a Hub repo id in the local Hugging Face cache (the ``revision``'s snapshot,
   ``main`` when none is given).

Nothing is downloaded: a base that is only on the Hub is "not found" here, and the
user names it instead (``check --config``, ``export merge-lora BASE``).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from ckpt_gui.core.adapters.settings import LoraSettings
from ckpt_gui.core.errors import CheckpointError

if TYPE_CHECKING:
    from ckpt_gui.core.adapters.summary import AdapterInfo
    from ckpt_gui.core.model import Checkpoint


def find_base(
    settings: LoraSettings, adapter_folder: Path | None
) -> tuple[Path | None, str | None]:
    """(the base's folder, how it was found), or (None, None)."""
    name = settings.base_model
    if not name:
        return None, None
    candidate = Path(name).expanduser()
    places = [candidate]
    if adapter_folder is not None and not candidate.is_absolute():
        places += [adapter_folder / candidate, adapter_folder.parent / candidate]
    for place in places:
        if place.is_dir() and (place / "config.json").is_file():
            return place, "local folder"
    from ckpt_gui.core.hub.ref import parse_hub_target

    if "/" in name and not name.startswith((".", "/", "~")) and parse_hub_target(name):
        from ckpt_gui.core.hub.cache import cached_snapshot

        snapshot = cached_snapshot(name, settings.revision)
        if snapshot is not None and (snapshot / "config.json").is_file():
            return snapshot, "Hugging Face cache"
    return None, None


def default_base(checkpoint: Checkpoint) -> str:
    """What to check an adapter against when the user names nothing: its base as found
    on this machine, else the name it gives (a Hub repo id, read from the Hub)."""
    adapter: AdapterInfo | None = checkpoint.adapter
    if adapter is not None and adapter.base_path:
        return adapter.base_path
    if adapter is not None and adapter.settings.base_model:
        return adapter.settings.base_model
    raise CheckpointError(
        checkpoint.source,
        "adapter_config.json names no base model; pass --config BASE (a model folder, "
        "config.json, architecture name or Hub repo)",
    )
