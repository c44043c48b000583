"""Turn what the user typed (a path, a Hub repo id or a Hub URL) into a Checkpoint.

A local path that exists always wins: ``org/name`` is a folder if there is one.
"""

from __future__ import annotations

from pathlib import Path

from ckpt_gui.core.errors import CheckpointError
from ckpt_gui.core.formats import open_checkpoint
from ckpt_gui.core.hub.ref import HubRef, parse_hub_target
from ckpt_gui.core.jobs import Job, run_to_completion
from ckpt_gui.core.model import Checkpoint

# Hub answers that may really mean "you mistyped a local path".
_NOT_FOUND_PROBLEMS = ("repo not found", "not in the local cache")


def hub_ref_for(target: str | Path) -> HubRef | None:
    """The Hub reference ``target`` names, or None when it is (or must be) a local path."""
    if isinstance(target, Path) or Path(target).expanduser().exists():
        return None
    return parse_hub_target(str(target))


def open_target_job(
    target: str | Path, weights_key: str | None = None, tag: str | None = None
) -> Job[Checkpoint]:
    """Like ``open_target``, as a job: remote repos report progress per shard."""
    ref = hub_ref_for(target)
    if ref is None:
        return open_checkpoint(target, weights_key, tag)
    if tag is not None:
        raise CheckpointError(target, "--tag chooses the tag of a local DeepSpeed folder only")
    from ckpt_gui.core.hub.inspect import inspect_hub_job

    try:
        checkpoint: Checkpoint = yield from inspect_hub_job(ref, weights_key=weights_key)
    except CheckpointError as exc:
        maybe_a_path = not str(target).startswith(("http://", "https://"))
        if not maybe_a_path or not any(p in exc.problem for p in _NOT_FOUND_PROBLEMS):
            raise
        # The user may have meant a local path: say that there is none either.
        raise CheckpointError(
            exc.file, f"{exc.problem} (and no local file or folder of that name)"
        ) from None
    return checkpoint


def open_target(
    target: str | Path, weights_key: str | None = None, tag: str | None = None
) -> Checkpoint:
    """Open a local file or folder, a Hub repo (``org/name[@rev]``) or a Hub URL.

    ``weights_key`` picks one weight set of a PyTorch pickle (``--key`` on the CLI);
    ``tag`` one ``global_step<N>`` folder of a DeepSpeed checkpoint (``--tag``).
    """
    return run_to_completion(open_target_job(target, weights_key, tag))
