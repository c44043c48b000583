"""Remote ``.bin`` repos against the same files opened locally: one reader, the same answer.

Every file is written by torch at test time and served by the fake Hub on
127.0.0.1; the oracle is ``open_checkpoint`` on the folder (itself checked against
torch in tests/core/pickles/test_reader.py). Remotely nothing is unpickled by
torch, no tensor data is requested, and the requests do not grow with tensors.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import pytest

from ckpt_gui.core.errors import CheckpointError, UnsafePickleError
from ckpt_gui.core.formats import open_checkpoint
from ckpt_gui.core.hub.inspect import open_hub
from ckpt_gui.core.hub.ref import HubRef
from ckpt_gui.core.model import Checkpoint
from ckpt_gui.core.targets import open_target
from tests.support import pickle_fixtures as fx
from tests.support.fake_hub import FakeHub, folder_files
from tests.support.hub_fixtures import evil_zip_bytes

ROOT = Path(__file__).resolve().parents[3]
HUB_WARNING = "PyTorch pickle weights: read from the pickle alone"


def described(checkpoint: Checkpoint) -> dict[str, Any]:
    """Everything shown of a checkpoint but where it came from (path or repo facts)."""
    data = checkpoint.to_json()
    for key in ("source", "root", "files"):
        data.pop(key, None)
    data["metadata"] = {k: v for k, v in data.get("metadata", {}).items() if k != "hub"}
    data["warnings"] = [w for w in checkpoint.warnings if HUB_WARNING not in w]
    return json.loads(json.dumps(data))


def assert_same_as_local(remote: Checkpoint, local: Checkpoint) -> None:
    assert remote.tensors == local.tensors  # names, dtypes, shapes, offsets, storages, strides
    assert described(remote) == described(local)
    assert any(HUB_WARNING in w for w in remote.warnings)


def torchscript_bytes(folder: Path) -> bytes:
    return fx.torchscript_module(folder)[0].read_bytes()


def rewritten_by_zipfile(data: bytes) -> bytes:
    """The same archive written by Python's zipfile: no data descriptors, no alignment."""
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as source, zipfile.ZipFile(out, "w") as target:
        for record in source.infolist():
            target.writestr(record.filename, source.read(record))
    return out.getvalue()


def with_pickle(data: bytes, change: Any) -> bytes:
    """The archive with ``data.pkl`` replaced by ``change(data.pkl)``."""
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as source, zipfile.ZipFile(out, "w") as target:
        for record in source.infolist():
            body = source.read(record)
            target.writestr(
                record.filename, change(body) if record.filename.endswith(".pkl") else body
            )
    return out.getvalue()


@pytest.fixture(scope="module")
def pickle_repos(fake_hub: FakeHub, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Repo id -> the local folder holding the very same files."""
    import numpy as np
    import torch

    def repo(repo_id: str, files: dict[str, bytes]) -> Path:
        folder = tmp_path_factory.mktemp(repo_id.replace("/", "-"))
        for name, data in files.items():
            (folder / name).write_bytes(data)
        fake_hub.add_repo(repo_id, folder_files(folder))
        return folder

    work = tmp_path_factory.mktemp("pickle-sources")
    model = fx.bert_model()
    whole = io.BytesIO()
    torch.save(model, whole)  # the model object itself, pickled whole
    sd = {k: v.clone() for k, v in model.state_dict().items()}
    ema = {k: v * 0.5 for k, v in sd.items()}
    training = io.BytesIO()
    torch.save(
        {
            "model": sd,
            "ema": ema,
            "args": argparse.Namespace(lr=0.01, run="r1"),
            "epoch": 3,
            "best": np.float32(0.5),
        },
        training,
    )
    many = io.BytesIO()
    torch.save({f"layer.{i}.weight": torch.full((2, 3), float(i)) for i in range(300)}, many)
    truncated = with_pickle(evil_zip_bytes(work / "never"), lambda p: p[: p.rindex(b"R")])
    return {
        "org/whole-model": repo("org/whole-model", {"pytorch_model.bin": whole.getvalue()}),
        "org/whole-model-dict": repo(
            "org/whole-model-dict",
            {"pytorch_model.bin": fx.whole_model(work)[0].read_bytes()},
        ),
        "org/whole-model-legacy": repo(
            "org/whole-model-legacy",
            {"pytorch_model.bin": fx.whole_model(work, legacy=True)[0].read_bytes()},
        ),
        "org/training-ckpt": repo("org/training-ckpt", {"pytorch_model.bin": training.getvalue()}),
        "org/many-tensors": repo("org/many-tensors", {"pytorch_model.bin": many.getvalue()}),
        "org/zipfile-written": repo(
            "org/zipfile-written", {"pytorch_model.bin": rewritten_by_zipfile(many.getvalue())}
        ),
        "org/torchscript": repo("org/torchscript", {"model.pt": torchscript_bytes(work)}),
        "org/evil-truncated": repo("org/evil-truncated", {"pytorch_model.bin": truncated}),
    }


@pytest.mark.parametrize(
    "repo_id",
    [
        "org/whole-model",
        "org/whole-model-dict",
        "org/whole-model-legacy",
        "org/training-ckpt",
        "org/many-tensors",
        "org/zipfile-written",
        "org/torchscript",
    ],
)
def test_remote_listing_is_the_local_listing(
    hub: FakeHub, pickle_repos: dict[str, Path], repo_id: str
) -> None:
    remote = open_target(repo_id)
    local = open_checkpoint(pickle_repos[repo_id])
    assert remote.format == local.format
    assert len(remote.tensors) > 0
    assert_same_as_local(remote, local)
    # Never a byte of tensor data beyond the read-ahead: the tensor records are not asked for.
    assert remote.metadata["hub"]["bytes_received"] < 200_000


def test_a_whole_pickled_model_shows_its_classes_and_embedded_config(
    hub: FakeHub, pickle_repos: dict[str, Path]
) -> None:
    remote = open_target("org/whole-model")
    model = fx.bert_model()
    assert [t.name for t in remote.tensors] == list(model.state_dict())
    assert remote.metadata["weight_set"] == ""
    assert remote.metadata["module_classes"][""].endswith("BertForSequenceClassification")
    assert remote.metadata["module_classes"]["classifier"] == "torch.nn.modules.linear.Linear"
    # No config.json in the repo: the config is the one pickled with the model.
    assert remote.config is not None and remote.config["hidden_size"] == 16
    assert remote.config["architectures"] == ["BertForSequenceClassification"]
    assert any(g.group == "class" and not g.allowed for g in remote.pickle_globals)


def test_a_training_checkpoint_lists_its_args_and_weight_sets(
    hub: FakeHub, pickle_repos: dict[str, Path]
) -> None:
    remote = open_target("org/training-ckpt")
    assert remote.metadata["epoch"] == 3
    assert remote.metadata["args"] == {"__class__": "argparse.Namespace", "lr": 0.01, "run": "r1"}
    assert [w["key"] for w in remote.metadata["weight_sets"]] == ["model", "ema"]
    assert remote.metadata["weight_set"] == "model"
    # --key picks another set, remotely as locally.
    ema = open_target("org/training-ckpt", weights_key="ema")
    assert_same_as_local(ema, open_checkpoint(pickle_repos["org/training-ckpt"], "ema"))
    assert ema.metadata["weight_set"] == "ema"
    with pytest.raises(CheckpointError, match="no weight set at key 'nope'"):
        open_target("org/training-ckpt", weights_key="nope")
    with pytest.raises(CheckpointError, match="--key chooses a weight set"):
        open_target("org/tiny", weights_key="ema")


def test_sharded_and_legacy_repos_match_their_local_copies(
    hub: FakeHub, llama_bin_sharded_dir: Path, legacy_bin_dir: Path, llama_bin_dir: Path
) -> None:
    sharded = open_target("org/tiny-bin-sharded")
    assert sharded.format == "pytorch-zip-sharded"
    local = open_checkpoint(llama_bin_sharded_dir)
    assert sharded.tensors == local.tensors
    assert described(sharded)["metadata"] == described(local)["metadata"]
    assert sharded.pickle_globals == local.pickle_globals
    legacy = open_target("org/legacy-bin")
    assert legacy.format == "pytorch-legacy"
    assert legacy.tensors == open_checkpoint(legacy_bin_dir).tensors
    single = open_target("org/tiny-bin")
    assert_same_as_local(single, open_checkpoint(llama_bin_dir))


def test_requests_do_not_grow_with_tensors(hub: FakeHub, pickle_repos: dict[str, Path]) -> None:
    checkpoint = open_hub(HubRef("org/many-tensors"))
    assert len(checkpoint.tensors) == 300
    bin_requests = hub.requests_for("pytorch_model.bin")
    # The start (pickle), the end (zip directory), at most one more for the pickle.
    assert 1 <= len(bin_requests) <= 3, [r.range for r in bin_requests]
    # With the smallest read-ahead each of zipfile's small tail reads (end record, zip64
    # locator and record, directory) is a request of its own; still none per tensor.
    hub.reset_log()
    open_hub(HubRef("org/many-tensors"), read_ahead=22)
    assert len(hub.requests_for("pytorch_model.bin")) <= 6
    path = pickle_repos["org/many-tensors"] / "pytorch_model.bin"
    with zipfile.ZipFile(path) as archive:
        records = [i for i in archive.infolist() if "/data/" in i.filename]
        tensor_data = (min(i.header_offset for i in records), archive.start_dir)
    for request in hub.requests_for("pytorch_model.bin"):
        first, last = (int(x) for x in request.range.removeprefix("bytes=").split("-"))
        assert last < tensor_data[0] or first >= tensor_data[1], request.range


def test_a_legacy_file_costs_a_request_or_two(hub: FakeHub) -> None:
    open_target("org/legacy-bin")
    assert len(hub.requests_for("pytorch_model.bin")) <= 2, [
        r.range for r in hub.requests_for("pytorch_model.bin")
    ]


def test_legacy_pickles_longer_than_the_prefix_are_read_in_growing_steps(
    hub: FakeHub, legacy_bin_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import ckpt_gui.core.pickles.listing as listing

    monkeypatch.setattr(listing, "LEGACY_FIRST_PREFIX", 256)
    remote = open_hub(HubRef("org/legacy-bin"), read_ahead=64)
    assert remote.tensors == open_checkpoint(legacy_bin_dir).tensors
    requests = hub.requests_for("pytorch_model.bin")
    size = (legacy_bin_dir / "pytorch_model.bin").stat().st_size
    # Four times more each step: a handful of requests, and never the whole file.
    assert len(requests) <= 6
    assert sum(r.sent for r in requests) < size / 2


def test_legacy_storages_that_do_not_fill_the_file_are_refused_with_the_download(
    hub: FakeHub, fake_hub: FakeHub, legacy_bin_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Past the prefix the pickle's counts are trusted only if they end at the file's end."""
    import ckpt_gui.core.pickles.listing as listing

    padded = (legacy_bin_dir / "pytorch_model.bin").read_bytes() + bytes(8)
    fake_hub.add_repo("org/legacy-padded", {"pytorch_model.bin": padded})
    monkeypatch.setattr(listing, "LEGACY_FIRST_PREFIX", 256)
    with pytest.raises(CheckpointError) as caught:
        open_hub(HubRef("org/legacy-padded"), read_ahead=64)
    assert "cannot be located from the pickle alone" in caught.value.problem
    assert caught.value.problem.endswith(
        "to inspect it locally: ckpt-gui download org/legacy-padded"
    )


@pytest.mark.parametrize("repo_id", ["org/evil-bin", "org/evil-truncated"])
def test_a_dangerous_pickle_gets_the_local_verdict_and_nothing_runs(
    hub: FakeHub,
    hub_repos: dict[str, dict[str, bytes]],
    pickle_repos: dict[str, Path],
    tmp_path: Path,
    repo_id: str,
) -> None:
    data = hub.repos[repo_id].files_by_commit[hub.repos[repo_id].refs["main"]]["pytorch_model.bin"]
    marker = Path(data.split(b"touch ")[1].split(b"q\x01")[0].decode())
    local_path = tmp_path / "pytorch_model.bin"
    local_path.write_bytes(data)
    with pytest.raises(UnsafePickleError) as local:
        open_checkpoint(local_path)
    with pytest.raises(UnsafePickleError) as remote:
        open_target(repo_id)
    assert remote.value.refused_globals == local.value.refused_globals == ["os.system"]
    assert remote.value.problem == local.value.problem
    assert not marker.exists()


def test_listing_a_remote_bin_imports_no_torch(
    hub: FakeHub, pickle_repos: dict[str, Path], tmp_path: Path
) -> None:
    script = """
import json, sys
from ckpt_gui.core.targets import open_target

events = []
sys.addaudithook(
    lambda event, args: events.append(event)
    if event in ("os.system", "os.exec", "os.posix_spawn", "subprocess.Popen") else None
)
tensors = sum(len(open_target(repo).tensors) for repo in sys.argv[1:])
print(json.dumps({"tensors": tensors, "events": events,
                  "loaded": sorted(m for m in ("torch", "transformers") if m in sys.modules)}))
"""
    repos = [
        "org/whole-model",
        "org/whole-model-legacy",
        "org/training-ckpt",
        "org/tiny-bin-sharded",
        "org/legacy-bin",
        "org/torchscript",
    ]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "HUGGING"))}
    env.update(
        PYTHONPATH=str(ROOT),
        HF_ENDPOINT=hub.endpoint,
        HF_HOME=str(tmp_path / "hf-home"),  # no stored login
        HF_HUB_CACHE=str(tmp_path / "hf-cache"),
        HF_HUB_DISABLE_TELEMETRY="1",
    )
    done = subprocess.run(
        [sys.executable, "-c", script, *repos],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["tensors"] > 50
    assert result["loaded"] == [] and result["events"] == []


def test_an_archive_laid_out_oddly_is_located_by_its_headers_or_refused(
    hub: FakeHub, pickle_repos: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Records whose start cannot be derived are located as locally, a few at most."""
    import ckpt_gui.core.pickles.listing as listing

    monkeypatch.setattr(listing, "_ALIGNMENT", 7)  # no torch record looks aligned now
    monkeypatch.setattr(listing, "MAX_HEADER_READS", 10_000)
    folder = pickle_repos["org/whole-model"]
    assert_same_as_local(open_target("org/whole-model"), open_checkpoint(folder))
    monkeypatch.setattr(listing, "MAX_HEADER_READS", 16)
    with pytest.raises(CheckpointError, match=r"not laid out as torch writes them.*download"):
        open_target("org/many-tensors")
