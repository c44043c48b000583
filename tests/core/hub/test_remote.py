"""Remote inspection against the fake Hub: same facts as a local read, headers only."""

from __future__ import annotations

import json
import struct
import zipfile
from pathlib import Path

import pytest

from ckpt_gui.core.errors import CheckpointError, UnsafePickleError
from ckpt_gui.core.formats import open_checkpoint
from ckpt_gui.core.hub.inspect import inspect_hub_job, open_hub
from ckpt_gui.core.hub.ref import HubRef, parse_hub_target
from ckpt_gui.core.jobs import Progress
from ckpt_gui.core.targets import open_target
from tests.support.fake_hub import GOOD_TOKEN, FakeHub


def facts(checkpoint) -> dict[str, tuple]:
    return {t.name: (t.dtype, t.shape, t.nbytes, t.file, t.offset) for t in checkpoint.tensors}


def header_length(path: Path) -> int:
    with path.open("rb") as stream:
        return int(struct.unpack("<Q", stream.read(8))[0])


def test_single_file_repo_matches_the_local_read(hub: FakeHub, llama_dir: Path) -> None:
    checkpoint = open_target("org/tiny")
    local = open_checkpoint(llama_dir)
    assert checkpoint.source == "org/tiny"
    assert checkpoint.root is None
    assert checkpoint.format == "safetensors"
    assert facts(checkpoint) == facts(local)  # offsets included
    assert [f.to_json() for f in checkpoint.files] == [
        {"path": "model.safetensors", "size": (llama_dir / "model.safetensors").stat().st_size}
    ]
    assert checkpoint.config == local.config
    assert checkpoint.metadata["format"] == "pt"
    repo = checkpoint.metadata["hub"]
    assert repo["commit"] == hub.repos["org/tiny"].refs["main"]
    assert repo["revision"] == "main"
    assert repo["private"] is False and repo["gated"] is False
    with pytest.raises(ValueError, match="not on local disk"):
        checkpoint.path_of(checkpoint.tensors[0])


def test_sharded_repo_costs_one_request_per_shard(hub: FakeHub, llama_sharded_dir: Path) -> None:
    checkpoint = open_target("org/tiny-sharded")
    local = open_checkpoint(llama_sharded_dir)
    assert checkpoint.format == "safetensors-sharded"
    assert facts(checkpoint) == facts(local)
    shards = sorted(p.name for p in llama_sharded_dir.glob("model-*.safetensors"))
    assert len(shards) > 2
    assert [f.path for f in checkpoint.files] == ["model.safetensors.index.json", *shards]
    assert checkpoint.metadata["index"]["total_parameters"] == checkpoint.total_parameters

    assert len(hub.requests_for("/api/models/org/tiny-sharded")) == 1
    for shard in shards:
        assert len(hub.requests_for(f"/{shard}")) == 1
    small_json = [r for r in hub.log if r.path.endswith(".json")]
    assert sorted(Path(r.path).name for r in small_json) == [
        "config.json",
        "model.safetensors.index.json",
    ]
    assert all(r.method == "GET" for r in hub.log)
    # Requests scale with shards, not tensors.
    assert len(hub.log) == 1 + 2 + len(shards) < len(checkpoint.tensors)
    assert checkpoint.metadata["hub"]["requests"] == len(hub.log)
    # The first shard's header sizes the read-ahead for the others.
    first = 8 + header_length(llama_sharded_dir / shards[0])
    for shard in shards[1:]:
        (request,) = hub.requests_for(f"/{shard}")
        assert request.sent <= 2 * first + 4096
        assert request.sent >= 8 + header_length(llama_sharded_dir / shard)


def test_header_only_inspection_transfers_headers_and_small_json_only(
    hub: FakeHub, llama_sharded_dir: Path
) -> None:
    """With the read-ahead at its minimum, not one byte of tensor data is transferred."""
    checkpoint = open_hub(HubRef("org/tiny-sharded"), read_ahead=8)
    assert len(checkpoint.tensors) == len(open_checkpoint(llama_sharded_dir).tensors)
    weight_bytes = {}
    for request in hub.log:
        name = Path(request.path).name
        if name.endswith(".safetensors"):
            weight_bytes[name] = weight_bytes.get(name, 0) + request.sent
    expected = {p.name: 8 + header_length(p) for p in llama_sharded_dir.glob("model-*.safetensors")}
    assert weight_bytes == expected
    json_sent = sum(r.sent for r in hub.log if r.path.endswith(".json"))
    json_sizes = sum(
        (llama_sharded_dir / n).stat().st_size
        for n in ("config.json", "model.safetensors.index.json")
    )
    assert json_sent == json_sizes
    weights_total = sum(p.stat().st_size for p in llama_sharded_dir.glob("*.safetensors"))
    assert sum(weight_bytes.values()) < weights_total - checkpoint.total_bytes + 1


def test_default_read_ahead_never_exceeds_100kb_per_file(hub: FakeHub) -> None:
    open_target("org/tiny")
    (request,) = [r for r in hub.log if r.path.endswith("model.safetensors")]
    assert request.range == "bytes=0-99999"
    assert request.sent == 100_000


def test_a_header_longer_than_the_read_ahead_costs_exactly_one_more_request(
    hub: FakeHub, llama_dir: Path
) -> None:
    checkpoint = open_hub(HubRef("org/tiny"), read_ahead=64)
    length = header_length(llama_dir / "model.safetensors")
    ranges = [r.range for r in hub.log if r.path.endswith("model.safetensors")]
    assert ranges == ["bytes=0-63", f"bytes=8-{8 + length - 1}"]
    assert facts(checkpoint) == facts(open_checkpoint(llama_dir))


def test_a_server_ignoring_range_still_gives_the_right_answer(
    hub: FakeHub, llama_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    hub.ignore_range = True
    checkpoint = open_hub(HubRef("org/tiny"), read_ahead=8)
    assert facts(checkpoint) == facts(open_checkpoint(llama_dir))
    # Reading a zip's end would mean streaming the whole file: refused instead.
    monkeypatch.setattr("ckpt_gui.core.hub.http.MAX_SKIP_BYTES", 1000)
    with pytest.raises(CheckpointError, match="ignores range requests"):
        open_hub(HubRef("org/tiny-bin"))


@pytest.mark.parametrize(
    "target",
    [
        "org/tiny@v1",
        "https://huggingface.co/org/tiny/tree/v1",
    ],
)
def test_revisions_select_the_tagged_commit(hub: FakeHub, target: str) -> None:
    checkpoint = open_target(target)
    assert checkpoint.format == "safetensors-sharded"
    assert checkpoint.metadata["hub"]["commit"] == hub.repos["org/tiny"].refs["v1"]
    assert checkpoint.metadata["hub"]["revision"] == "v1"
    resolved = {r.path.split("/")[4] for r in hub.log if "/resolve/" in r.path}
    assert resolved == {hub.repos["org/tiny"].refs["v1"]}


def test_a_commit_sha_and_a_file_url_work(hub: FakeHub, llama_dir: Path) -> None:
    commit = hub.repos["org/tiny"].refs["main"]
    assert open_target(f"org/tiny@{commit}").metadata["hub"]["commit"] == commit
    url = f"{hub.endpoint}/org/tiny/blob/{commit}/model.safetensors"
    assert facts(open_target(url)) == facts(open_checkpoint(llama_dir))


def test_bin_only_repo_is_read_from_the_zip_pickle_alone(hub: FakeHub, llama_bin_dir: Path) -> None:
    checkpoint = open_hub(HubRef("org/tiny-bin"), read_ahead=22)
    local = open_checkpoint(llama_bin_dir)
    assert checkpoint.format == "pytorch-zip"
    assert {t.name: (t.dtype, t.shape) for t in checkpoint.tensors} == {
        t.name: (t.dtype, t.shape) for t in local.tensors
    }
    assert all(g.allowed for g in checkpoint.pickle_globals)
    assert any("ckpt-gui download org/tiny-bin" in w for w in checkpoint.warnings)
    path = llama_bin_dir / "pytorch_model.bin"
    with zipfile.ZipFile(path) as archive:
        records = [i for i in archive.infolist() if "/data/" in i.filename]
        tensor_data = (min(i.header_offset for i in records), archive.start_dir)
    ranges = [r.range for r in hub.log if r.path.endswith(".bin")]
    assert 3 <= len(ranges) <= 6
    for text in ranges:
        first, last = (int(x) for x in text.removeprefix("bytes=").split("-"))
        # Every read is the pickle at the start or the zip directory at the end.
        assert last < tensor_data[0] or first >= tensor_data[1], text


def test_sharded_bin_repo(hub: FakeHub, llama_bin_sharded_dir: Path) -> None:
    checkpoint = open_target("org/tiny-bin-sharded")
    assert checkpoint.format == "pytorch-zip-sharded"
    local = open_checkpoint(llama_bin_sharded_dir)
    assert {t.name: t.shape for t in checkpoint.tensors} == {t.name: t.shape for t in local.tensors}
    for shard in ("pytorch_model-00001-of-00002.bin", "pytorch_model-00002-of-00002.bin"):
        assert len(hub.requests_for(shard)) <= 3


def test_an_unsafe_remote_pickle_is_refused_and_never_run(
    hub: FakeHub, hub_repos, tmp_path: Path
) -> None:
    with pytest.raises(UnsafePickleError) as caught:
        open_target("org/evil-bin")
    assert "os.system" in str(caught.value)
    data = hub_repos["org/evil-bin"]["pytorch_model.bin"]
    marker = data.split(b"touch ")[1].split(b"q\x01")[0].decode()
    assert not Path(marker).exists()


def test_an_index_that_disagrees_with_its_shards_is_refused(hub: FakeHub) -> None:
    with pytest.raises(CheckpointError, match=r"index lists 'model\.not\.there'"):
        open_target("org/broken-index")


def test_repos_without_readable_weights_say_why(hub: FakeHub) -> None:
    # GGUF repos are read now (tests/core/hub/test_gguf_hub.py); this one's file is damaged.
    with pytest.raises(CheckpointError, match="unsupported GGUF version"):
        open_target("org/gguf-only")
    with pytest.raises(CheckpointError, match=r"weights are in unet .*tree/main/unet"):
        open_target("org/diffusers-like")
    sub = open_target(f"{hub.endpoint}/org/diffusers-like/tree/main/unet")
    assert [f.path for f in sub.files] == ["unet/diffusion_pytorch_model.safetensors"]
    assert sub.config is not None and sub.config["model_type"] == "llama"


def test_gated_repo_without_access_says_what_to_do(
    hub: FakeHub, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    with pytest.raises(CheckpointError) as anonymous:
        open_target("org/gated")
    assert str(anonymous.value) == (
        f"org/gated/model.safetensors: gated repo: request access on {hub.endpoint}/org/gated, "
        "then log in with `hf auth login` (or set HF_TOKEN)"
    )
    monkeypatch.setenv("HF_TOKEN", "hf_wrong_token_value")
    with pytest.raises(CheckpointError, match="your account has no access yet") as denied:
        open_target("org/gated")
    assert "hf_wrong_token_value" not in str(denied.value)
    monkeypatch.setenv("HF_TOKEN", GOOD_TOKEN)
    checkpoint = open_target("org/gated")
    assert checkpoint.metadata["hub"]["gated"] == "manual"
    assert GOOD_TOKEN not in json.dumps(checkpoint.to_json())
    # Nothing was written that holds the token (the cache lives under tmp_path).
    for written in tmp_path.rglob("*"):
        assert not written.is_file() or GOOD_TOKEN.encode() not in written.read_bytes()


def test_private_and_missing_repos(hub: FakeHub, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(CheckpointError, match=r"repo not found .* `hf auth login`"):
        open_target("org/private")
    with pytest.raises(CheckpointError, match="no local file or folder of that name"):
        open_target("org/does-not-exist")
    with pytest.raises(CheckpointError, match="revision 'nope' not found"):
        open_target("org/tiny@nope")
    monkeypatch.setenv("HF_TOKEN", GOOD_TOKEN)
    assert open_target("org/private").metadata["hub"]["private"] is True


def test_the_job_reports_progress_per_shard_and_can_be_cancelled(hub: FakeHub) -> None:
    job = inspect_hub_job(HubRef("org/tiny-sharded"))
    updates: list[Progress] = []
    while True:
        try:
            updates.append(next(job))
        except StopIteration as stop:
            checkpoint = stop.value
            break
    shards = len(checkpoint.files) - 1
    assert updates[-1].done == updates[-1].total == shards
    dones = [u.done for u in updates if u.total == shards]
    assert dones == sorted(dones)

    hub.reset_log()
    cancelled = inspect_hub_job(HubRef("org/tiny-sharded"))
    next(cancelled)
    cancelled.close()  # before any shard was asked for
    assert not [r for r in hub.log if r.path.endswith(".safetensors")]


def test_fetch_config_reads_config_json_only(hub: FakeHub, llama_dir: Path) -> None:
    from ckpt_gui.core.hub.inspect import fetch_config

    config = fetch_config("org/tiny")
    assert config == json.loads((llama_dir / "config.json").read_text())
    assert [Path(r.path).name for r in hub.log] == ["config.json"]
    assert (
        fetch_config(f"{hub.endpoint}/org/diffusers-like/tree/main/unet")["model_type"] == "llama"
    )
    with pytest.raises(CheckpointError, match="gated repo"):
        fetch_config("org/gated")
    with pytest.raises(CheckpointError, match="not a Hub repo id"):
        fetch_config("not a repo")


def test_parse_then_open_hub_is_what_open_target_does(hub: FakeHub) -> None:
    ref = parse_hub_target("org/tiny")
    assert ref is not None
    assert facts(open_hub(ref)) == facts(open_target("org/tiny"))


def test_reads_needed_to_describe_a_file_are_capped(
    hub: FakeHub, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A zip claiming a huge directory (here: a small cap) is refused, not fetched."""
    monkeypatch.setattr("ckpt_gui.core.hub.remote.MAX_RANGE_BYTES", 1000)
    with pytest.raises(CheckpointError, match="just to describe the file; refused"):
        open_hub(HubRef("org/tiny-bin"), read_ahead=22)
    assert all(r.sent <= 1000 for r in hub.log if r.path.endswith(".bin"))
