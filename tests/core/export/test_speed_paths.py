"""The fast paths of the export jobs give the same results as the plain ones."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import torch

from ckpt_gui.core.errors import CheckpointError
from ckpt_gui.core.export import (
    convert_kernels,
    plan_convert,
    plan_random_init,
    run_plan,
    run_random_init,
    split_normal,
)
from ckpt_gui.core.export.writer import ReadAhead
from ckpt_gui.core.jobs import run_to_completion
from tests.conftest import TINY_LLAMA


@pytest.fixture(scope="session")
def wide_llama_config(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from transformers import LlamaConfig

    folder = tmp_path_factory.mktemp("wide_llama_cfg")
    config = LlamaConfig(**{**TINY_LLAMA, "vocab_size": 512, "hidden_size": 64})
    config.architectures = ["LlamaForCausalLM"]
    config.save_pretrained(folder)
    return folder


def merged(folder: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    tensors: dict[str, torch.Tensor] = {}
    for path in sorted(folder.glob("*.safetensors")):
        tensors.update(load_file(path))
    return tensors


def test_split_normal_is_deterministic_and_follows_init(
    tmp_path: Path, wide_llama_config: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Every matrix of the tiny model goes through the two-thread path.
    monkeypatch.setattr(split_normal, "SPLIT_MIN", 256)
    helper_threads: set[str] = set()
    fill = split_normal.fill_normal

    def counting_fill(*args: object) -> None:
        helper_threads.add(threading.current_thread().name)
        fill(*args)

    monkeypatch.setattr(split_normal, "fill_normal", counting_fill)
    runs = []
    for name, budget in (("a", 1 << 20), ("b", 1 << 20), ("c", 1)):
        plan = plan_random_init(wide_llama_config, tmp_path / name, seed=3, unit_budget=budget)
        run_to_completion(run_random_init(plan))
        runs.append(merged(tmp_path / name))
    a, b, c = runs
    assert helper_threads and all(n.startswith("random-init-split") for n in helper_threads)
    assert a.keys() == b.keys() == c.keys()
    assert all(torch.equal(a[k], b[k]) and torch.equal(a[k], c[k]) for k in a)
    embed = a["model.embed_tokens.weight"].reshape(-1)
    half = embed.numel() // 2
    # Both halves are normal(0, 0.02) and not one stream repeated.
    for part in (embed[:half], embed[half:]):
        assert abs(part.std().item() - 0.02) < 0.002 and abs(part.mean().item()) < 0.002
    assert not torch.equal(embed[: half // 2], embed[half : half + half // 2])
    norms = [k for k in a if k.endswith("layernorm.weight")]
    assert norms and all(torch.equal(a[k], torch.ones_like(a[k])) for k in norms)


def test_split_normal_is_seen_only_by_its_thread(monkeypatch: pytest.MonkeyPatch) -> None:
    """While one thread splits its normal_ fills, another gets torch's own values, and
    no global (TORCH_INIT_FUNCTIONS, torch.nn.init) ever changes."""
    from concurrent.futures import ThreadPoolExecutor

    from transformers import initialization

    original = initialization.TORCH_INIT_FUNCTIONS["normal_"]
    torch_normal = torch.nn.init.normal_
    numel = 4 << 10
    monkeypatch.setattr(split_normal, "SPLIT_MIN", numel)

    def plain_values(seed: int) -> torch.Tensor:
        torch.manual_seed(seed)
        return torch_normal(torch.empty(numel))

    inside = threading.Event()
    release = threading.Event()
    split_values: list[torch.Tensor] = []
    seen: list[object] = []

    def splitting_thread() -> None:
        with ThreadPoolExecutor(1) as helper, split_normal.split_normal_on_this_thread(helper):
            torch.manual_seed(7)
            split_values.append(initialization.normal_(torch.empty(numel)))
            inside.set()
            release.wait(60)
            seen.append(initialization.TORCH_INIT_FUNCTIONS["normal_"])

    thread = threading.Thread(target=splitting_thread)
    thread.start()
    try:
        assert inside.wait(60)
        # Another thread, while the first is inside its block.
        assert initialization.TORCH_INIT_FUNCTIONS["normal_"] is original
        assert torch.nn.init.normal_ is torch_normal
        torch.manual_seed(7)
        other = initialization.normal_(torch.empty(numel))
        assert torch.equal(other, plain_values(7))
    finally:
        release.set()
        thread.join(60)
    assert seen == [original]
    # The first thread did get the split values: first half from the seeded stream
    # (after one draw for the second half's seed), so not torch's plain values.
    assert not torch.equal(split_values[0], plain_values(7))
    with ThreadPoolExecutor(1) as helper:
        torch.manual_seed(7)
        expected = split_normal.split_normal(helper, torch.empty(numel), 0.0, 1.0)
    assert torch.equal(split_values[0], expected)
    # And after the block, the same thread's fills are plain again.
    assert initialization.TORCH_INIT_FUNCTIONS["normal_"] is original


def test_split_normal_leaves_small_and_generator_fills_alone(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from concurrent.futures import ThreadPoolExecutor

    monkeypatch.setattr(split_normal, "SPLIT_MIN", 1 << 12)
    with ThreadPoolExecutor(1) as helper, split_normal.split_normal_on_this_thread(helper):
        torch.manual_seed(3)
        small = torch.nn.init.normal_(torch.empty(100), std=0.5)
        seeded = torch.nn.init.normal_(
            torch.empty(1 << 13), generator=torch.Generator().manual_seed(4)
        )
    torch.manual_seed(3)
    assert torch.equal(small, torch.empty(100).normal_(0.0, 0.5))
    assert torch.equal(
        seeded, torch.empty(1 << 13).normal_(generator=torch.Generator().manual_seed(4))
    )


def test_convert_without_mmap_matches(tmp_path: Path, llama_sharded_dir: Path) -> None:
    plan = plan_convert(llama_sharded_dir, tmp_path / "mapped", "BF16")
    run_to_completion(run_plan(plan))
    original_map = convert_kernels.Converter._map
    try:
        convert_kernels.Converter._map = lambda self, *args: None  # type: ignore[method-assign]
        plan = plan_convert(llama_sharded_dir, tmp_path / "read", "BF16")
        run_to_completion(run_plan(plan))
    finally:
        convert_kernels.Converter._map = original_map  # type: ignore[method-assign]
    a, b = merged(tmp_path / "mapped"), merged(tmp_path / "read")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_convert_of_a_file_truncated_after_planning_is_an_error(tmp_path: Path) -> None:
    from safetensors.torch import save_file

    source = tmp_path / "src"
    source.mkdir()
    save_file({"w": torch.randn(4096, 64)}, source / "model.safetensors")
    plan = plan_convert(source, tmp_path / "out", "F16")
    path = source / "model.safetensors"
    os.truncate(path, path.stat().st_size - 4096)
    # A mapped read past the end would kill the process (SIGBUS): it must be an error.
    with pytest.raises(CheckpointError, match="file ends"):
        run_to_completion(run_plan(plan))
    assert not (tmp_path / "out").exists()


def test_read_ahead_asks_for_every_range_in_small_steps(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "data.bin"
    path.write_bytes(b"\0" * 4096)
    asked: list[tuple[int, int]] = []
    lock = threading.Lock()

    def fake_fadvise(fd: int, offset: int, length: int, advice: int) -> None:
        with lock:
            asked.append((offset, length))

    monkeypatch.setattr(os, "posix_fadvise", fake_fadvise)
    piece = ReadAhead.PIECE
    ranges = [(path, 100, 3 * piece + 5), (path, 10 * piece, piece)]
    ahead = ReadAhead(ranges, window=1 << 40)
    ahead.advance(0)
    wait_for(lambda: len(asked) >= 5)
    ahead.close()
    assert asked == [
        (100, piece),
        (100 + piece, piece),
        (100 + 2 * piece, piece),
        (100 + 3 * piece, 5),
        (10 * piece, piece),
    ]
    # A small window stops after the first piece until the consumer moves on.
    asked.clear()
    ahead = ReadAhead(ranges, window=1)
    ahead.advance(0)
    wait_for(lambda: len(asked) >= 1)
    assert ahead.thread is not None
    ahead.thread.join(0.2)
    assert ahead.thread.is_alive() and asked == [(100, piece)]  # waiting for the consumer
    ahead.advance(1)  # the consumer reached the second range: the first one is used up
    wait_for(lambda: len(asked) >= 2)
    ahead.close()
    assert asked[1] == (100 + piece, piece)


def wait_for(condition: Callable[[], bool]) -> None:
    deadline = time.monotonic() + 60  # generous: a loaded machine may stall the reader
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.005)


def test_reshard_queues_kernel_copies_on_the_writers(
    tmp_path: Path, llama_sharded_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """After the first piece, copies run on the writer threads, reading from source
    files that stay open until their output shard is finished."""
    from ckpt_gui.core.export import plan_reshard
    from ckpt_gui.core.export.writer import ShardFile

    threads: list[str] = []
    queued = ShardFile._kernel_copy

    def spy(self: ShardFile, *args: object) -> None:
        threads.append(threading.current_thread().name)
        queued(self, *args)

    monkeypatch.setattr(ShardFile, "_kernel_copy", spy)
    out = tmp_path / "one"
    run_to_completion(run_plan(plan_reshard(llama_sharded_dir, out, 10**9)))
    assert threads and all(name.startswith("export-write") for name in threads)
    assert merged(out).keys() == merged(llama_sharded_dir).keys()
    assert all(torch.equal(v, merged(llama_sharded_dir)[k]) for k, v in merged(out).items())
