"""Hugging Face Hub repos as checkpoints: inspected from headers, or opened from the cache.

``inspect_hub_job(ref)`` is a generator job (see ``core.jobs``): it yields one
Progress per weight file and returns a ``Checkpoint``. Requests: one for the repo
facts, one per small JSON file (index, config.json), one per shard (two when a
safetensors header outgrows the read-ahead, two or three for a ``.bin``, read by the
same pickle reader as local files). Tensor data is never requested. Without network
(or with ``HF_HUB_OFFLINE=1``) a cached snapshot is opened instead; a snapshot of the
exact commit already on disk is opened from disk.
"""

from __future__ import annotations

import dataclasses
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from pathlib import Path
from typing import Any

from ckpt_gui.core.errors import CheckpointError
from ckpt_gui.core.formats import open_checkpoint
from ckpt_gui.core.hub import cache as hub_cache
from ckpt_gui.core.hub import remote as hub_remote
from ckpt_gui.core.hub.assemble import FileResult, assemble
from ckpt_gui.core.hub.http import READ_AHEAD, HubClient, HubUnreachable, offline_mode
from ckpt_gui.core.hub.ref import HubRef, hub_endpoint, parse_hub_target
from ckpt_gui.core.hub.select import WeightPlan, plan_weights
from ckpt_gui.core.jobs import Job, Progress, run_to_completion
from ckpt_gui.core.model import Checkpoint

PARALLEL_REQUESTS = 8


def open_hub(
    ref: HubRef,
    *,
    endpoint: str | None = None,
    cache_dir: Path | None = None,
    read_ahead: int = READ_AHEAD,
    weights_key: str | None = None,
) -> Checkpoint:
    """``inspect_hub_job`` driven to completion, for callers without a progress display."""
    return run_to_completion(
        inspect_hub_job(
            ref,
            endpoint=endpoint,
            cache_dir=cache_dir,
            read_ahead=read_ahead,
            weights_key=weights_key,
        )
    )


def inspect_hub_job(
    ref: HubRef,
    *,
    endpoint: str | None = None,
    cache_dir: Path | None = None,
    read_ahead: int = READ_AHEAD,
    weights_key: str | None = None,
) -> Job[Checkpoint]:
    """Describe a Hub repo (or one file in it) without downloading its weights.

    ``weights_key`` picks the weight set of a PyTorch pickle, as ``--key`` does locally.
    """
    client = HubClient(endpoint or hub_endpoint())
    if offline_mode():
        return open_cached(ref, cache_dir, "HF_HUB_OFFLINE is set", weights_key)
    yield Progress(0, 1, f"asking {client.endpoint} about {ref.repo_id}")
    try:
        info = client.model_info(ref)
    except HubUnreachable as exc:
        return open_cached(ref, cache_dir, exc.problem, weights_key)
    facts = repo_facts(info, ref, client.endpoint)
    sizes: dict[str, int | None] = {s.rfilename: s.size for s in info.siblings or ()}
    plan = plan_weights(ref, sizes)
    commit: str = facts["commit"]
    local = _open_cached_commit(ref, commit, plan, cache_dir, weights_key)
    if local is not None:
        return _with_hub_facts(local, ref, {**facts, "opened_from": "cache"}, plan.warnings)
    checkpoint = yield from _read_remote(client, ref, commit, plan, sizes, read_ahead, weights_key)
    if weights_key is not None and not checkpoint.format.startswith("pytorch"):
        raise CheckpointError(
            str(ref), "--key chooses a weight set in PyTorch pickles and DCP/DeepSpeed folders only"
        )
    config, config_warnings = _remote_config(client, ref, commit, plan, sizes)
    facts["requests"] = client.traffic.requests
    facts["bytes_received"] = client.traffic.bytes_received
    warnings = plan.warnings + config_warnings
    if "pytorch" in checkpoint.format:
        warnings += (
            "PyTorch pickle weights: read from the pickle alone, without running it; "
            f"to read tensor values, download them: {download_command(ref)}",
        )
    # A GGUF file carries its own config (its metadata) when the repo has no config.json.
    if config is None and checkpoint.config is not None:
        config = dict(checkpoint.config)
    checkpoint = _with_hub_facts(checkpoint, ref, facts, warnings)
    checkpoint = _remote_adapter(client, ref, commit, plan, sizes, checkpoint)
    return dataclasses.replace(checkpoint, config=config)


def _open_cached_commit(
    ref: HubRef, commit: str, plan: WeightPlan, cache_dir: Path | None, weights_key: str | None
) -> Checkpoint | None:
    """The exact commit, already downloaded: open it from disk (tensor data readable too)."""
    snapshot = hub_cache.cached_snapshot(ref.repo_id, commit, cache_dir)
    if snapshot is None or not all((snapshot / f).is_file() for f in plan.files):
        return None
    try:
        target = snapshot / plan.open_path if plan.open_path else snapshot
        return open_checkpoint(target, weights_key)
    except CheckpointError:
        return None  # shards missing or damaged on disk: the Hub copy is the truth


def open_cached(
    ref: HubRef, cache_dir: Path | None, why: str, weights_key: str | None = None
) -> Checkpoint:
    """Open the cached snapshot for ``ref``; ``why`` says why the Hub was not asked."""
    snapshot = hub_cache.cached_snapshot(ref.repo_id, ref.revision, cache_dir)
    if snapshot is None:
        raise CheckpointError(
            str(ref), f"{why}, and revision {ref.revision_or_main} is not in the local cache"
        )
    target = snapshot / ref.path_in_repo if ref.path_in_repo else snapshot
    try:
        local = open_checkpoint(target, weights_key)
    except CheckpointError as exc:
        raise CheckpointError(
            str(ref),
            f"{why}; the cached snapshot {snapshot.name[:12]} is incomplete: {exc.problem}",
        ) from None
    facts = {
        "repo_id": ref.repo_id,
        "revision": ref.revision_or_main,
        "commit": snapshot.name,
        "opened_from": "cache",
        "offline_reason": why,
    }
    warning = f"{why}: opened the cached snapshot {snapshot.name[:12]}"
    return _with_hub_facts(local, ref, facts, (warning,))


def fetch_config(
    repo_id: str,
    revision: str | None = None,
    *,
    endpoint: str | None = None,
    cache_dir: Path | None = None,
) -> dict[str, Any]:
    """``config.json`` of a Hub repo (one small request; the cache when offline).

    ``repo_id`` may also be ``org/name@rev`` or a Hub URL.
    """
    client = HubClient(endpoint or hub_endpoint())
    ref = parse_hub_target(repo_id, client.endpoint)
    if ref is None:
        raise CheckpointError(repo_id, "not a Hub repo id (expected org/name)")
    if revision is not None:
        ref = dataclasses.replace(ref, revision=revision)
    folder = _config_folder(ref)
    name = f"{folder}/config.json" if folder else "config.json"
    try:
        if offline_mode():
            raise HubUnreachable(str(ref), "HF_HUB_OFFLINE is set")
        config = client.read_json(ref, name, ref.revision_or_main)
    except HubUnreachable as exc:
        snapshot = hub_cache.cached_snapshot(ref.repo_id, ref.revision, cache_dir)
        if snapshot is None or not (snapshot / name).is_file():
            raise CheckpointError(
                f"{ref}:{name}", f"{exc.problem}, and it is not in the local cache"
            ) from None
        import json

        try:
            config = json.loads((snapshot / name).read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
            raise CheckpointError(snapshot / name, f"cached config is unreadable ({err})") from None
    if not isinstance(config, dict):
        raise CheckpointError(f"{ref}:{name}", "config.json is not a JSON object")
    return config


def _config_folder(ref: HubRef) -> str:
    path = ref.path_in_repo or ""
    if path.endswith((".json", ".safetensors", ".bin", ".pt", ".pth", ".ckpt")):
        return path.rpartition("/")[0]
    return path.strip("/")


def repo_facts(info: Any, ref: HubRef, endpoint: str) -> dict[str, Any]:
    """What the Hub says about the repo, in JSON-friendly form."""
    siblings = info.siblings or ()
    facts: dict[str, Any] = {
        "repo_id": ref.repo_id,
        "revision": ref.revision_or_main,
        "commit": info.sha,
        "endpoint": endpoint,
        "private": info.private,
        "gated": info.gated,
        "last_modified": info.last_modified.isoformat() if info.last_modified else None,
        "repo_files": len(siblings),
        "repo_size": sum(s.size or 0 for s in siblings),
    }
    reported = getattr(info, "safetensors", None)
    if reported is not None and getattr(reported, "total", None):
        facts["parameters_reported_by_hub"] = reported.total
    if not info.sha:
        raise CheckpointError(str(ref), f"{endpoint} did not say which commit it serves")
    return facts


def _with_hub_facts(
    checkpoint: Checkpoint, ref: HubRef, facts: dict[str, Any], warnings: tuple[str, ...]
) -> Checkpoint:
    return dataclasses.replace(
        checkpoint,
        source=str(ref),
        metadata={**checkpoint.metadata, "hub": facts},
        warnings=warnings + checkpoint.warnings,
    )


def _read_remote(
    client: HubClient,
    ref: HubRef,
    commit: str,
    plan: WeightPlan,
    sizes: dict[str, int | None],
    read_ahead: int,
    weights_key: str | None = None,
) -> Job[Checkpoint]:
    weight_map: dict[str, str] | None = None
    index_metadata: dict[str, Any] = {}
    if plan.format == "gguf":
        from ckpt_gui.core.hub.remote_gguf import read_gguf

        filename = plan.shards[0]
        yield Progress(0, 1, f"reading the header of {filename}")
        size = sizes.get(filename)
        if size is None:
            raise CheckpointError(f"{ref.repo_id}/{filename}", "the Hub did not report its size")
        gguf_checkpoint = read_gguf(client, ref, filename, commit, size, read_ahead)
        yield Progress(1, 1, f"read {filename}")
        return gguf_checkpoint
    if plan.index is not None:
        yield Progress(0, 1, f"reading {plan.index}")
        weight_map, index_metadata = _remote_index(client, ref, commit, plan, sizes)
        plan = plan.with_shards(set(weight_map.values()), sizes)
        weights_key = None  # as locally: an index's shards are read with their default set
    results: dict[str, FileResult] = {}
    executor = ThreadPoolExecutor(max_workers=PARALLEL_REQUESTS)
    try:
        # Shards of one checkpoint have headers of similar size: read the first with
        # the full read-ahead, then ask the others for about what they need.
        for batch, ahead in ((plan.shards[:1], read_ahead), (plan.shards[1:], None)):
            if ahead is None:
                ahead = _read_ahead_after(results, read_ahead)
            futures: dict[Future[FileResult], str] = {
                executor.submit(_read_one, client, ref, commit, f, sizes, ahead, weights_key): f
                for f in batch
            }
            pending = set(futures)
            while pending:
                done, pending = wait(pending, timeout=0.2, return_when=FIRST_COMPLETED)
                for future in done:
                    results[futures[future]] = future.result()
                yield Progress(len(results), len(plan.shards), f"read {len(results)} file headers")
    finally:
        # On cancel (GeneratorExit) or error: drop what has not started; requests in
        # flight end on their own within the timeout.
        executor.shutdown(wait=False, cancel_futures=True)
    return assemble(ref, plan, sizes, results, weight_map, index_metadata)


def _read_ahead_after(results: dict[str, FileResult], read_ahead: int) -> int:
    """Twice the first header plus 4 kB, never more than ``read_ahead``."""
    offsets = [t.offset for r in results.values() for t in r.tensors if t.offset is not None]
    if not offsets:
        return read_ahead
    return min(read_ahead, 2 * min(offsets) + 4096)


def _read_one(
    client: HubClient,
    ref: HubRef,
    commit: str,
    filename: str,
    sizes: dict[str, int | None],
    read_ahead: int,
    weights_key: str | None = None,
) -> FileResult:
    size = sizes.get(filename)
    if size is None:
        raise CheckpointError(f"{ref.repo_id}/{filename}", "the Hub did not report its size")
    if filename.endswith(".safetensors"):
        tensors, metadata = hub_remote.read_safetensors_header(
            client, ref, filename, commit, size, read_ahead
        )
        return FileResult(tensors, dict(metadata), [], "safetensors")
    try:
        found = hub_remote.read_torch_pickle(
            client,
            ref,
            filename,
            commit,
            size,
            min(read_ahead, hub_remote.ZIP_READ_AHEAD),
            weights_key,
        )
    except CheckpointError as exc:
        if not exc.problem.startswith(_REMOTE_ONLY_PROBLEMS):
            raise
        raise CheckpointError(
            exc.file, f"{exc.problem}; to inspect it locally: {download_command(ref)}"
        ) from None
    return FileResult(
        found.tensors,
        found.metadata,
        found.pickle_globals,
        f"pytorch-{found.kind}",
        found.config,
        found.warnings,
    )


# Problems of reading remotely that a downloaded copy does not have.
_REMOTE_ONLY_PROBLEMS = ("would need a", "legacy storages add up", "storages are not laid out")


def download_command(ref: HubRef) -> str:
    revision = f" --revision {ref.revision}" if ref.revision else ""
    return f"ckpt-gui download {ref.repo_id}{revision}"


def _remote_index(
    client: HubClient,
    ref: HubRef,
    commit: str,
    plan: WeightPlan,
    sizes: dict[str, int | None],
) -> tuple[dict[str, str], dict[str, Any]]:
    assert plan.index is not None
    name = f"{ref.repo_id}/{plan.index}"
    data = client.read_json(ref, plan.index, commit)
    weight_map = data.get("weight_map") if isinstance(data, dict) else None
    if not isinstance(weight_map, dict) or not weight_map:
        raise CheckpointError(name, "index has no weight_map object")
    if not all(isinstance(v, str) and v for v in weight_map.values()):
        raise CheckpointError(name, "weight_map values must be file names")
    metadata = data.get("metadata")
    return weight_map, metadata if isinstance(metadata, dict) else {}


def _remote_adapter(
    client: HubClient,
    ref: HubRef,
    commit: str,
    plan: WeightPlan,
    sizes: dict[str, int | None],
    checkpoint: Checkpoint,
) -> Checkpoint:
    """A peft adapter repo: its adapter_config.json (one small request) attached."""
    from ckpt_gui.core.adapters.settings import CONFIG_NAME, parse_settings
    from ckpt_gui.core.formats.adapter import attach

    name = f"{plan.folder}/{CONFIG_NAME}" if plan.folder else CONFIG_NAME
    if name not in sizes:
        return checkpoint
    data = client.read_json(ref, name, commit)
    if not isinstance(data, dict):
        raise CheckpointError(f"{ref}:{name}", "is not a JSON object")
    return attach(checkpoint, parse_settings(data, f"{ref}:{name}"), None)


def _remote_config(
    client: HubClient,
    ref: HubRef,
    commit: str,
    plan: WeightPlan,
    sizes: dict[str, int | None],
) -> tuple[dict[str, Any] | None, tuple[str, ...]]:
    name = f"{plan.folder}/config.json" if plan.folder else "config.json"
    if name not in sizes:
        return None, ()
    try:
        config = client.read_json(ref, name, commit)
    except CheckpointError as exc:
        return None, (f"{name} ignored: {exc.problem}",)
    if not isinstance(config, dict):
        return None, (f"{name} is not a JSON object; ignored",)
    return config, ()
