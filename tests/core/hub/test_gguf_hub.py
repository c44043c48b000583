"""GGUF files on the (fake) Hub: listed, and opened from their header alone."""

from __future__ import annotations

from pathlib import Path

import pytest

from ckpt_gui.core.errors import CheckpointError
from ckpt_gui.core.formats import open_checkpoint
from ckpt_gui.core.hub.inspect import open_hub
from ckpt_gui.core.hub.ref import parse_hub_target
from ckpt_gui.core.targets import open_target
from tests.support.fake_hub import FakeHub


def facts(checkpoint) -> dict[str, tuple]:
    return {t.name: (t.dtype, t.shape, t.nbytes, t.file, t.offset) for t in checkpoint.tensors}


def test_repo_opens_one_gguf_file_and_lists_the_others(hub: FakeHub, gguf_dir: Path) -> None:
    checkpoint = open_target("org/tiny-gguf")
    # Sorted first of the four; the others are named in a warning.
    assert [f.path for f in checkpoint.files] == ["big-header-Q8_0.gguf"]
    assert checkpoint.format == "gguf" and checkpoint.root is None
    assert any("4 GGUF files" in w and "tiny-F32.gguf" in w for w in checkpoint.warnings)
    local = open_checkpoint(gguf_dir / "big-header-Q8_0.gguf")
    assert facts(checkpoint) == facts(local)


def test_a_named_file_matches_the_local_read_without_its_data(hub: FakeHub, gguf_dir: Path) -> None:
    path = gguf_dir / "tiny-Q8_0.gguf"
    ref = parse_hub_target(f"{hub.endpoint}/org/tiny-gguf/blob/main/tiny-Q8_0.gguf", hub.endpoint)
    assert ref is not None
    checkpoint = open_hub(ref, endpoint=hub.endpoint, read_ahead=16 * 1024)
    local = open_checkpoint(path)
    assert facts(checkpoint) == facts(local)
    assert checkpoint.config == local.config  # derived from the metadata: no config.json
    assert checkpoint.metadata["gguf"] == local.metadata["gguf"]
    assert checkpoint.files[0].size == path.stat().st_size
    ranged = [r for r in hub.requests_for("tiny-Q8_0.gguf") if r.method == "GET"]
    assert ranged and all(r.range for r in ranged)
    # Header bytes only: far less than the file, never the tensor data in full.
    assert sum(r.sent for r in ranged) < path.stat().st_size


def test_a_header_larger_than_the_read_ahead_is_fetched_in_steps(
    hub: FakeHub, gguf_dir: Path
) -> None:
    path = gguf_dir / "big-header-Q8_0.gguf"
    ref = parse_hub_target(
        f"{hub.endpoint}/org/tiny-gguf/blob/main/big-header-Q8_0.gguf", hub.endpoint
    )
    assert ref is not None
    local = open_checkpoint(path)
    first_tensor = min(t.offset for t in local.tensors if t.offset is not None)
    assert first_tensor > 64 * 1024  # larger than the first request
    checkpoint = open_hub(ref, endpoint=hub.endpoint, read_ahead=1024)
    assert facts(checkpoint) == facts(local)
    assert len([r for r in hub.requests_for("big-header-Q8_0.gguf") if r.method == "GET"]) >= 2


def test_a_damaged_remote_gguf_is_one_line(hub: FakeHub) -> None:
    with pytest.raises(CheckpointError) as caught:
        open_target("org/gguf-only")
    message = str(caught.value)
    assert "model-q4.gguf" in message and "unsupported GGUF version" in message
    assert "\n" not in message
