"""Fixtures shared by the suite: a fake Hub on 127.0.0.1 serving tiny
checkpoints, an isolated HF environment, and hand-built cache folders.

``tests/conftest.py`` loads them for every test (``pytest_plugins``). No test touches
the internet or the user's own
cache and login.
"""

from __future__ import annotations

import io
import json
import os
import threading
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.fake_hub import GOOD_TOKEN, FakeHub, folder_files


@pytest.fixture(scope="session")
def legacy_bin_dir(tmp_path_factory: pytest.TempPathFactory, llama_state_dict) -> Path:
    import torch

    folder = tmp_path_factory.mktemp("legacy_bin")
    torch.save(llama_state_dict, folder / "pytorch_model.bin", _use_new_zipfile_serialization=False)
    return folder


def evil_zip_bytes(marker: Path) -> bytes:
    """A torch-style zip whose pickle would run a shell command if anything unpickled it."""
    command = f"touch {marker}"
    payload = (
        b"\x80\x02cos\nsystem\nq\x00X"
        + len(command).to_bytes(4, "little")
        + command.encode()
        + b"q\x01\x85q\x02Rq\x03."
    )
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("archive/data.pkl", payload)
        archive.writestr("archive/version", "3\n")
        archive.writestr("archive/data/0", b"\0" * 64)
    return buffer.getvalue()


@pytest.fixture(scope="session")
def hub_repos(
    tmp_path_factory: pytest.TempPathFactory,
    llama_dir: Path,
    llama_sharded_dir: Path,
    llama_bin_dir: Path,
    llama_bin_sharded_dir: Path,
    legacy_bin_dir: Path,
    gguf_dir: Path,
) -> dict[str, dict[str, bytes]]:
    """Repo id -> files, all built from the tiny Llama fixtures."""
    config = (llama_dir / "config.json").read_bytes()
    single = folder_files(llama_dir)
    marker_dir = tmp_path_factory.mktemp("evil")
    broken_index = folder_files(llama_sharded_dir)
    index = json.loads(broken_index["model.safetensors.index.json"])
    index["weight_map"]["model.not.there"] = next(iter(index["weight_map"].values()))
    broken_index["model.safetensors.index.json"] = json.dumps(index).encode()
    return {
        "org/tiny": single,
        "org/tiny-sharded": folder_files(llama_sharded_dir),
        "org/tiny-bin": folder_files(llama_bin_dir),
        "org/tiny-bin-sharded": {**folder_files(llama_bin_sharded_dir), "config.json": config},
        "org/legacy-bin": {**folder_files(legacy_bin_dir), "config.json": config},
        "org/evil-bin": {
            "pytorch_model.bin": evil_zip_bytes(marker_dir / "pwned"),
            "config.json": config,
        },
        "org/broken-index": broken_index,
        "org/gguf-only": {"model-q4.gguf": b"GGUF" + b"\0" * 60, "README.md": b"# gguf"},
        "org/tiny-gguf": {
            "tiny-Q8_0.gguf": (gguf_dir / "tiny-Q8_0.gguf").read_bytes(),
            "tiny-F32.gguf": (gguf_dir / "tiny-F32.gguf").read_bytes(),
            "tiny-Q4_K.gguf": (gguf_dir / "tiny-Q4_K.gguf").read_bytes(),
            "big-header-Q8_0.gguf": (gguf_dir / "big-header-Q8_0.gguf").read_bytes(),
            "README.md": b"# gguf",
        },
        "org/diffusers-like": {
            "unet/diffusion_pytorch_model.safetensors": single["model.safetensors"],
            "unet/config.json": config,
            "model_index.json": b"{}",
        },
        "org/gated": single,
        "org/private": single,
    }


@pytest.fixture(scope="session")
def fake_hub(hub_repos: dict[str, dict[str, bytes]], llama_sharded_dir: Path) -> Iterator[FakeHub]:
    hub = FakeHub()
    for repo_id, files in hub_repos.items():
        if repo_id == "org/tiny":
            hub.add_repo(repo_id, files, tags={"v1": folder_files(llama_sharded_dir)})
        else:
            hub.add_repo(
                repo_id,
                files,
                gated=repo_id == "org/gated",
                private=repo_id == "org/private",
                allowed_tokens={GOOD_TOKEN},
            )
    hub.start()
    yield hub
    hub.stop()


@pytest.fixture
def hub(fake_hub: FakeHub, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[FakeHub]:
    """The fake Hub as the endpoint, an empty private cache, no token, online."""
    monkeypatch.setenv("HF_ENDPOINT", fake_hub.endpoint)
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf-cache"))
    monkeypatch.setenv("HF_HUB_DISABLE_TELEMETRY", "1")
    for name in ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"):
        monkeypatch.delenv(name, raising=False)
    # A stored login on the developer's machine must not leak into the tests.
    monkeypatch.setattr("huggingface_hub.constants.HF_TOKEN_PATH", str(tmp_path / "no-token"))
    fake_hub.reset_log()
    fake_hub.ignore_range = False
    fake_hub.throttle = 0.0
    fake_hub.hold = None
    yield fake_hub
    if fake_hub.hold is not None:  # a test that failed before releasing its download
        fake_hub.hold.set()
        fake_hub.hold = None


@pytest.fixture
def held_hub(hub: FakeHub, monkeypatch: pytest.MonkeyPatch) -> FakeHub:
    """The fake Hub, where a download job's file bodies stop after their first 4 kB until
    the job shuts its transfer down, which it does only when closed (cancelled).

    A download is then surely mid-file when a test cancels it, however slow the machine,
    and the rest of the file cannot arrive before the job has flagged the cancel (so it
    can never complete first). A throttle would only make both likely. Requests before
    the download (opening the repo, planning) are served in full.
    """
    from concurrent.futures import ThreadPoolExecutor

    import ckpt_gui.core.hub.download as hub_download

    class HoldingExecutor(ThreadPoolExecutor):
        """The download job's transfer thread: holds the Hub from its start to its end."""

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self._hold = hub.hold = threading.Event()

        def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
            self._hold.set()  # the job's cancel flag is set already: the next chunk stops it
            super().shutdown(wait=wait, cancel_futures=cancel_futures)

    monkeypatch.setattr(hub_download, "ThreadPoolExecutor", HoldingExecutor)
    return hub


def build_cache_repo(
    cache: Path, repo_id: str, commits: dict[str, dict[str, bytes]], refs: dict[str, str]
) -> Path:
    """A cache folder laid out as huggingface_hub writes it: refs, blobs, symlinked snapshots."""
    import hashlib

    repo = cache / ("models--" + repo_id.replace("/", "--"))
    for commit, files in commits.items():
        for name, data in files.items():
            blob = repo / "blobs" / hashlib.sha256(data).hexdigest()
            blob.parent.mkdir(parents=True, exist_ok=True)
            blob.write_bytes(data)
            link = repo / "snapshots" / commit / name
            link.parent.mkdir(parents=True, exist_ok=True)
            link.symlink_to(os.path.relpath(blob, link.parent))
    for ref, commit in refs.items():
        (repo / "refs" / ref).parent.mkdir(parents=True, exist_ok=True)
        (repo / "refs" / ref).write_text(commit)
    return repo
