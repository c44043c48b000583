"""The local cache: library listing, offline opening, downloads (with cancel) through it."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest

from ckpt_gui.core.errors import CheckpointError
from ckpt_gui.core.formats import open_checkpoint
from ckpt_gui.core.hub.cache import cached_snapshot, default_cache_dir, list_cached_models
from ckpt_gui.core.hub.download import download_job, plan_download
from ckpt_gui.core.hub.inspect import fetch_config
from ckpt_gui.core.hub.ref import HubRef
from ckpt_gui.core.jobs import Progress, run_to_completion
from ckpt_gui.core.targets import open_target
from tests.support.fake_hub import FakeHub, fake_commit, folder_files
from tests.support.hub_fixtures import build_cache_repo

MAIN = fake_commit("cached-main")
OLD = fake_commit("cached-old")


@pytest.fixture
def cache(hub: FakeHub, llama_dir: Path) -> Path:
    """A hand-built cache: one model with weights (two revisions), one config-only, a dataset."""
    folder = default_cache_dir()
    files = folder_files(llama_dir)
    build_cache_repo(
        folder,
        "org/cached",
        {MAIN: files, OLD: {"config.json": files["config.json"]}},
        {"main": MAIN, "v0": OLD},
    )
    build_cache_repo(folder, "other/config-only", {OLD: {"config.json": b"{}"}}, {"main": OLD})
    dataset = folder / "datasets--org--data" / "snapshots" / OLD
    dataset.mkdir(parents=True)
    (dataset / "x.csv").write_text("a,b\n")
    (folder / "datasets--org--data" / "refs").mkdir()
    (folder / "datasets--org--data" / "refs" / "main").write_text(OLD)
    return folder


def test_library_lists_cached_models_with_sizes_and_revisions(cache: Path, llama_dir: Path) -> None:
    models = list_cached_models(cache)
    assert [m.repo_id for m in models] == ["org/cached", "other/config-only"]
    cached = models[0]
    weights_size = sum(p.stat().st_size for p in llama_dir.iterdir() if p.is_file())
    assert cached.size == weights_size  # the shared config.json blob counts once
    assert [(r.commit, r.refs, r.has_weights) for r in cached.revisions] in (
        [(MAIN, ("main",), True), (OLD, ("v0",), False)],
        [(OLD, ("v0",), False), (MAIN, ("main",), True)],
    )
    assert cached.open_path == cache / "models--org--cached" / "snapshots" / MAIN
    assert cached.has_weights and not models[1].has_weights
    assert [m.repo_id for m in list_cached_models(cache, "CONFIG")] == ["other/config-only"]
    assert list_cached_models(cache / "nowhere") == []


def test_cached_snapshot_by_branch_tag_commit_and_prefix(cache: Path) -> None:
    snapshots = cache / "models--org--cached" / "snapshots"
    assert cached_snapshot("org/cached", None, cache) == snapshots / MAIN
    assert cached_snapshot("org/cached", "v0", cache) == snapshots / OLD
    assert cached_snapshot("org/cached", OLD, cache) == snapshots / OLD
    assert cached_snapshot("org/cached", MAIN[:10], cache) == snapshots / MAIN
    assert cached_snapshot("org/cached", "nope", cache) is None
    assert cached_snapshot("org/cached", "../../etc", cache) is None
    assert cached_snapshot("org/absent", None, cache) is None


def test_offline_opens_cached_repos_without_any_request(
    cache: Path, hub: FakeHub, llama_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    checkpoint = open_target("org/cached")
    assert checkpoint.source == "org/cached"
    assert checkpoint.root == cache / "models--org--cached" / "snapshots" / MAIN
    assert [t.name for t in checkpoint.tensors] == [
        t.name for t in open_checkpoint(llama_dir).tensors
    ]
    assert checkpoint.metadata["hub"]["commit"] == MAIN
    assert checkpoint.metadata["hub"]["opened_from"] == "cache"
    assert any("HF_HUB_OFFLINE" in w for w in checkpoint.warnings)
    assert fetch_config("org/cached")["model_type"] == "llama"
    with pytest.raises(CheckpointError, match="HF_HUB_OFFLINE is set, and revision main is not"):
        open_target("org/tiny")
    with pytest.raises(CheckpointError, match=r"cached snapshot .* is incomplete"):
        open_target("org/cached@v0")
    with pytest.raises(CheckpointError, match="not in the local cache"):
        fetch_config("org/tiny")
    assert hub.log == []


def closed_port_endpoint() -> str:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def test_without_network_cached_repos_open_and_missing_ones_say_so(
    cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HF_ENDPOINT", closed_port_endpoint())
    checkpoint = open_target("org/cached")
    assert checkpoint.metadata["hub"]["opened_from"] == "cache"
    assert any("cannot reach" in w for w in checkpoint.warnings)
    with pytest.raises(CheckpointError, match=r"cannot reach .* not in the local cache"):
        open_target("org/tiny")


def test_download_fills_the_cache_and_the_exact_commit_then_opens_from_disk(
    hub: FakeHub, llama_sharded_dir: Path
) -> None:
    plan = plan_download(HubRef("org/tiny-sharded"))
    shards = sorted(p.name for p in llama_sharded_dir.glob("model-*.safetensors"))
    companions = ["config.json", "generation_config.json", "model.safetensors.index.json"]
    assert list(plan.files) == sorted([*companions, *shards])
    assert plan.total_bytes == sum((llama_sharded_dir / f).stat().st_size for f in plan.files)
    updates: list[Progress] = []
    job = download_job(plan)
    while True:
        try:
            updates.append(next(job))
        except StopIteration as stop:
            snapshot = stop.value
            break
    assert updates[-1].done == updates[-1].total == plan.total_bytes
    assert [u.done for u in updates] == sorted(u.done for u in updates)
    assert snapshot == default_cache_dir() / "models--org--tiny-sharded" / "snapshots" / plan.commit
    for name in plan.files:
        assert (snapshot / name).read_bytes() == (llama_sharded_dir / name).read_bytes()
    (listed,) = list_cached_models()
    assert listed.repo_id == "org/tiny-sharded" and listed.revisions[0].refs == ("main",)

    hub.reset_log()
    checkpoint = open_target("org/tiny-sharded")
    assert checkpoint.root == snapshot
    assert checkpoint.metadata["hub"]["opened_from"] == "cache"
    assert checkpoint.metadata["hub"]["commit"] == plan.commit
    assert [r.path for r in hub.log] == ["/api/models/org/tiny-sharded"]


def test_a_cancelled_download_leaves_no_partial_file(held_hub: FakeHub) -> None:
    plan = plan_download(HubRef("org/tiny"))
    assert "model.safetensors" in plan.files
    job = download_job(plan)  # the weights stop after 4 kB until the job is closed
    for progress in job:
        if "model.safetensors" in progress.message and 0 < progress.done < progress.total:
            break
    job.close()
    repo = default_cache_dir() / "models--org--tiny"
    assert not list(repo.rglob("*.incomplete"))
    snapshot = repo / "snapshots" / plan.commit
    assert not (snapshot / "model.safetensors").exists()


def test_download_of_a_gated_repo_says_what_to_do(hub: FakeHub) -> None:
    plan = plan_download(HubRef("org/gated"))
    with pytest.raises(CheckpointError, match="gated repo: request access"):
        run_to_completion(download_job(plan))


def test_library_default_folder_follows_the_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("HF_HUB_CACHE", raising=False)
    monkeypatch.delenv("HUGGINGFACE_HUB_CACHE", raising=False)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "home"))
    assert default_cache_dir() == tmp_path / "home" / "hub"
    monkeypatch.setenv("HF_HUB_CACHE", os.fspath(tmp_path / "c"))
    assert default_cache_dir() == tmp_path / "c"


def test_download_job_for_the_gui_plans_inside_the_job(hub: FakeHub) -> None:
    from ckpt_gui.core.hub.download import download

    job = download("org/tiny", files=["config.json"])
    first = next(job)
    assert first.total == 0 and hub.log == []  # nothing asked before the worker runs it
    snapshot = run_to_completion(job)
    assert sorted(p.name for p in snapshot.iterdir()) == ["config.json"]
    with pytest.raises(CheckpointError, match=r"no file nope\.bin in the repo"):
        run_to_completion(download("org/tiny", files=["nope.bin"]))
