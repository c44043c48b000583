"""Run an ExportPlan: stage, stream every shard, verify, move into place.

Every yield is a progress point and a cancel point; ``close()`` on the job
raises GeneratorExit at the yield and the ``finally`` removes the staging
folder, so a cancelled or failed job leaves nothing behind and the target as
it was.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ckpt_gui.core.errors import CheckpointError
from ckpt_gui.core.export.atomic import Staging, check_free_space, check_target, remove_stale
from ckpt_gui.core.export.plan import (
    INDEX_NAME,
    CopiesFileRuns,
    ExportPlan,
    PlannedTensor,
    TensorProvider,
)
from ckpt_gui.core.export.writer import ReadAhead, ShardFile, SourceFiles
from ckpt_gui.core.jobs import Job, Progress

PROGRESS_EVERY = 16 * 1024 * 1024


@dataclass
class ExportResult:
    output: Path
    files: list[str]
    bytes_written: int
    seconds: float
    overflow: dict[str, int] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "output": str(self.output),
            "files": self.files,
            "bytes_written": self.bytes_written,
            "seconds": round(self.seconds, 3),
            "overflow": self.overflow,
            "overflow_values": sum(self.overflow.values()),
            "warnings": self.warnings,
        }


@dataclass
class ExportOptions:
    overwrite: bool = False
    fsync: bool = True
    overflow: str = "inf"  # "inf" (as torch does), "clamp" (to the largest finite) or "error"
    fail_after_bytes: int | None = None  # tests: simulate a failure mid-way

    def __post_init__(self) -> None:
        if self.overflow not in ("inf", "clamp", "error"):
            raise ValueError(f"overflow must be inf, clamp or error, not {self.overflow!r}")


def run_export(
    plan: ExportPlan,
    sources: list[Path],
    options: ExportOptions,
    provider: TensorProvider | None = None,
    release: Callable[[], None] | None = None,
) -> Job[ExportResult]:
    """The job for a plan. ``sources`` are the paths the export must never write into."""
    started = time.perf_counter()
    target = plan.output
    check_target(target, sources, options.overwrite)
    staging: Staging | None = None
    files = SourceFiles()
    converter = None
    shard_file: ShardFile | None = None
    result = ExportResult(target, [], 0, 0.0, warnings=list(plan.warnings))
    total = plan.bytes_to_write
    root = plan.extra.get("source_root")
    file_backed = [
        t for t in plan.tensors if t.source is not None and t.source.offset is not None and root
    ]
    read_ahead = ReadAhead([_source_range(Path(str(root)), t) for t in file_backed])
    position_of = {t.name: i for i, t in enumerate(file_backed)}
    from concurrent.futures import ThreadPoolExecutor

    # Two writers: ShardFile writes at explicit offsets, in any order.
    write_worker = ThreadPoolExecutor(max_workers=2, thread_name_prefix="export-write")
    try:
        remove_stale(target.parent, target.name)
        staging = Staging(target)
        check_free_space(staging.parent, plan.estimated_bytes)
        read_ahead.advance(0)
        yield Progress(0, total, "starting")
        done = 0
        last_report = 0
        for shard in plan.shards:
            shard_file = ShardFile(
                staging.path / shard.filename, shard, options.fsync, write_worker
            )
            for tensor in shard.tensors:
                if tensor.name in position_of:
                    read_ahead.advance(position_of[tensor.name])
                if tensor.raw_copy:
                    assert tensor.source is not None and tensor.source.offset is not None
                    src_path = _source_path(plan, tensor)
                    fd = files.open(src_path)
                    pieces: Iterator[int] = shard_file.copy_from(
                        fd, src_path, tensor.source.offset, tensor.nbytes
                    )
                elif (runs := _file_runs(provider, tensor)) is not None:
                    pieces = _copy_runs(shard_file, files, runs)
                else:
                    if converter is None:
                        from ckpt_gui.core.export.convert_kernels import Converter

                        converter = Converter(options.overflow)
                    pieces = converter.write_tensor(
                        tensor, shard_file, plan, files, provider, result.overflow
                    )
                base = done
                for piece_done in pieces:
                    done = base + piece_done
                    if options.fail_after_bytes is not None and done >= options.fail_after_bytes:
                        raise CheckpointError(shard_file.path, "simulated failure (test)")
                    if done - last_report >= PROGRESS_EVERY:
                        last_report = done
                        yield Progress(done, total, f"{shard.filename}: {tensor.name}")
                done = base + tensor.nbytes
            shard_file.finish()
            shard_file = None
            files.close()
            if release is not None:
                release()
            yield Progress(done, total, f"{shard.filename} written")
        index = plan.index_bytes()
        if index is not None:
            (staging.path / INDEX_NAME).write_bytes(index)
        for source_path, name in plan.copied_files:
            shutil.copyfile(source_path, staging.path / name)
        for name, data in plan.generated_files:
            (staging.path / name).write_bytes(data)
        yield Progress(done, total, "verifying")
        verify(staging.path, plan)
        staging.commit(options.fsync)
        result.files = sorted(p.name for p in target.iterdir())
        result.bytes_written = sum(p.stat().st_size for p in target.iterdir() if p.is_file())
        result.seconds = time.perf_counter() - started
        if result.overflow:
            result.warnings.append(
                f"{sum(result.overflow.values()):,} values in {len(result.overflow)} tensors "
                f"overflowed the target dtype"
                + (" and were clamped" if options.overflow == "clamp" else " and became Inf")
            )
        yield Progress(total, total, "done")
        return result
    finally:
        if shard_file is not None:
            shard_file.close()
        # The converter's worker may still hold a mapped chunk: stop it before the
        # source leases are released.
        if converter is not None:
            converter.close()
        files.close()
        if release is not None:
            release()  # no write of a pickled source's tensors is pending by now
        read_ahead.close()
        write_worker.shutdown(wait=True, cancel_futures=True)
        if staging is not None and not staging.committed:
            staging.abort()


def _file_runs(
    provider: TensorProvider | None, tensor: PlannedTensor
) -> list[tuple[Path, int, int]] | None:
    if tensor.nbytes == 0 or not isinstance(provider, CopiesFileRuns):
        return None
    return provider.file_runs(tensor)


def _copy_runs(
    shard_file: ShardFile, files: SourceFiles, runs: list[tuple[Path, int, int]]
) -> Iterator[int]:
    """Copy a tensor's runs of source bytes back to back; yields the bytes done so far."""
    base = 0
    for path, offset, length in runs:
        for done in shard_file.copy_from(files.open(path), path, offset, length):
            yield base + done
        base += length


def _source_range(root: Path, tensor: PlannedTensor) -> tuple[Path, int, int]:
    assert tensor.source is not None and tensor.source.offset is not None
    return root / tensor.source.file, tensor.source.offset, tensor.source.nbytes


def _source_path(plan: ExportPlan, tensor: PlannedTensor) -> Path:
    root = plan.extra.get("source_root")
    assert tensor.source is not None and root is not None
    return Path(root) / tensor.source.file


def verify(folder: Path, plan: ExportPlan) -> None:
    """Re-read what was written (headers, index) and compare it with the plan."""
    from ckpt_gui.core.formats import open_checkpoint

    written = open_checkpoint(folder)
    expected = {t.name: (t.dtype, t.shape) for t in plan.tensors}
    found = {t.name: (t.dtype, t.shape) for t in written.tensors}
    if found != expected:
        missing = sorted(set(expected) - set(found))
        extra = sorted(set(found) - set(expected))
        changed = sorted(k for k in set(found) & set(expected) if found[k] != expected[k])
        raise CheckpointError(
            folder,
            f"verification failed: missing {missing[:3]}, unexpected {extra[:3]}, "
            f"changed {changed[:3]}",
        )
    for shard in plan.shards:
        size = (folder / shard.filename).stat().st_size
        if size != shard.file_size:
            raise CheckpointError(
                folder / shard.filename,
                f"verification failed: {size:,} bytes, planned {shard.file_size:,}",
            )
