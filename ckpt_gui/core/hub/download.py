"""Download a repo's weights into the Hugging Face cache, as a cancellable job.

Files go through ``hf_hub_download`` (the Hub client's own cache, locking and
resume), one at a time on a worker thread. The job yields Progress in bytes; closing
it (the GUI's cancel, Ctrl-C in the CLI) stops the transfer at the next chunk and
removes the half-written blob, so a cancelled download leaves nothing behind but
the files that were already complete.
"""

from __future__ import annotations

import dataclasses
import shutil
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ckpt_gui.core.errors import CheckpointError
from ckpt_gui.core.hub.cache import default_cache_dir, repo_folder
from ckpt_gui.core.hub.http import HubClient, hub_error, offline_mode
from ckpt_gui.core.hub.ref import HubRef, hub_endpoint
from ckpt_gui.core.hub.select import WeightPlan, plan_weights
from ckpt_gui.core.jobs import Job, Progress

# Small files that make a snapshot usable on its own (config for the comparison).
COMPANIONS = ("config.json", "generation_config.json")


@dataclass(frozen=True)
class DownloadPlan:
    ref: HubRef
    commit: str
    files: tuple[str, ...]
    sizes: tuple[int, ...]
    cache_dir: Path
    endpoint: str

    @property
    def total_bytes(self) -> int:
        return sum(self.sizes)

    def free_bytes(self) -> int:
        folder = self.cache_dir
        while not folder.exists() and folder != folder.parent:
            folder = folder.parent
        return shutil.disk_usage(folder).free


class _Cancelled(Exception):
    pass


def plan_download(
    ref: HubRef,
    *,
    all_files: bool = False,
    files: list[str] | None = None,
    endpoint: str | None = None,
    cache_dir: Path | None = None,
) -> DownloadPlan:
    """Which files a download of ``ref`` fetches and how large they are.

    Default: the weights that ``open_target`` would read, their index and config
    files; ``all_files``: the whole repo; ``files``: exactly those paths.
    One request for the listing (two for a sharded repo: the index names the shards).
    """
    client = HubClient(endpoint or hub_endpoint())
    if offline_mode():
        raise CheckpointError(str(ref), "HF_HUB_OFFLINE is set: cannot download")
    info = client.model_info(ref)
    sizes: dict[str, int | None] = {s.rfilename: s.size for s in info.siblings or ()}
    if files is not None:
        unknown = [f for f in files if f not in sizes]
        if unknown:
            raise CheckpointError(str(ref), f"no file {unknown[0]} in the repo")
        files = sorted(set(files))
    elif all_files:
        files = sorted(sizes)
    else:
        plan = plan_weights(ref, sizes)
        if plan.index is not None:
            plan = _with_index_shards(client, ref, info.sha, plan, sizes)
        prefix = f"{plan.folder}/" if plan.folder else ""
        extras = [prefix + c for c in COMPANIONS if prefix + c in sizes]
        files = sorted(set(plan.files) | set(extras))
    return DownloadPlan(
        ref=ref,
        commit=info.sha,
        files=tuple(files),
        sizes=tuple(sizes.get(f) or 0 for f in files),
        cache_dir=cache_dir or default_cache_dir(),
        endpoint=client.endpoint,
    )


def _with_index_shards(
    client: HubClient, ref: HubRef, commit: str, plan: WeightPlan, sizes: dict[str, int | None]
) -> WeightPlan:
    assert plan.index is not None
    data = client.read_json(ref, plan.index, commit)
    weight_map = data.get("weight_map") if isinstance(data, dict) else None
    if not isinstance(weight_map, dict) or not all(isinstance(v, str) for v in weight_map.values()):
        raise CheckpointError(f"{ref.repo_id}/{plan.index}", "index has no weight_map object")
    return plan.with_shards(set(weight_map.values()), sizes)


def download(
    repo_id: str,
    revision: str | None = None,
    files: list[str] | None = None,
    *,
    endpoint: str | None = None,
    cache_dir: Path | None = None,
) -> Job[Path]:
    """Plan and download in one job (for a worker thread): Progress in bytes, cancel = close()."""
    yield Progress(0, 0, f"asking the Hub about {repo_id}")
    ref = HubRef(repo_id, revision)
    plan = plan_download(ref, files=files, endpoint=endpoint, cache_dir=cache_dir)
    snapshot: Path = yield from download_job(plan)
    return snapshot


def download_job(plan: DownloadPlan) -> Job[Path]:
    """Fetch ``plan.files`` into the cache; returns the snapshot folder."""
    from huggingface_hub import hf_hub_download

    cancel = threading.Event()
    lock = threading.Lock()
    received = [0]

    class CountingBar:
        """Stands in for tqdm inside hf_hub_download: counts bytes, stops on cancel."""

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            self.total = kwargs.get("total")
            self.n = kwargs.get("initial") or 0
            self.disable = False
            self.desc = kwargs.get("desc", "")
            with lock:
                received[0] += int(self.n)  # a resumed download starts part-way

        def update(self, n: int | float | None = 1) -> None:
            if cancel.is_set():
                raise _Cancelled
            self.n += int(n or 0)
            with lock:
                received[0] += int(n or 0)

        def __enter__(self) -> CountingBar:
            return self

        def __exit__(self, *exc: object) -> None:
            pass

        def close(self) -> None:
            pass

        def __getattr__(self, name: str) -> Any:
            return lambda *args, **kwargs: None

    plan.cache_dir.mkdir(parents=True, exist_ok=True)
    partial_before = _incomplete_blobs(plan)
    snapshot: Path | None = None
    executor = ThreadPoolExecutor(max_workers=1)
    done_before = 0
    try:
        for filename, size in zip(plan.files, plan.sizes, strict=True):
            with lock:
                received[0] = 0
            future: Future[str] = executor.submit(
                hf_hub_download,
                plan.ref.repo_id,
                filename,
                # The branch name (not the commit) so that refs/<branch> is written
                # and the snapshot opens offline as ``org/name``.
                revision=plan.ref.revision,
                cache_dir=plan.cache_dir,
                endpoint=plan.endpoint,
                tqdm_class=CountingBar,
            )
            while True:
                try:
                    path = future.result(timeout=0.1)
                    break
                except TimeoutError:
                    with lock:
                        now = min(received[0], size)
                    yield Progress(done_before + now, plan.total_bytes, f"downloading {filename}")
                except Exception as exc:
                    raise hub_error(plan.ref, exc, plan.endpoint, filename) from None
            done_before += size
            snapshot = Path(path).parents[filename.count("/")]
            yield Progress(done_before, plan.total_bytes, f"downloaded {filename}")
    finally:
        cancel.set()
        executor.shutdown(wait=True)
        for leftover in _incomplete_blobs(plan) - partial_before:
            leftover.unlink(missing_ok=True)
    return snapshot or repo_folder(plan.ref.repo_id, plan.cache_dir) / "snapshots" / plan.commit


def _incomplete_blobs(plan: DownloadPlan) -> set[Path]:
    """Half-written blobs; ours are removed on cancel, other processes' are left alone."""
    blobs = repo_folder(plan.ref.repo_id, plan.cache_dir) / "blobs"
    return set(blobs.glob("*.incomplete")) if blobs.is_dir() else set()


def describe(plan: DownloadPlan) -> dict[str, Any]:
    return {
        **dataclasses.asdict(plan),
        "ref": str(plan.ref),
        "cache_dir": str(plan.cache_dir),
        "total_bytes": plan.total_bytes,
    }
