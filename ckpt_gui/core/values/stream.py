"""Stream the raw bytes of many tensors, each byte read once, into reused buffers.

This is the fast path behind diff and scan. A background thread reads ahead
(``os.preadv`` into a small pool of preallocated buffers, so the disk stays
busy while numpy computes on the previous chunk); the consumer gets uint8
views of those buffers. A view is valid only until the next chunk is taken:
the buffer then goes back to the pool and is overwritten.

Safetensors tensors, and contiguous tensors of pickles, are read straight
from the file at their offsets. Strided views of pickled storages are gathered
once (``strided.py``) and handed out chunk by chunk. No torch, no memory map.
"""

from __future__ import annotations

import dataclasses
import os
import queue
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ckpt_gui.core.dtypes import BITS_PER_ELEMENT
from ckpt_gui.core.errors import CheckpointError
from ckpt_gui.core.formats.distributed.checkpoint import is_distributed
from ckpt_gui.core.formats.distributed.values import CheckpointPieces
from ckpt_gui.core.gguf.naming import permutation_heads, values_computed
from ckpt_gui.core.gguf.values import PermutedRows, is_quantized
from ckpt_gui.core.gguf.values import chunk_bytes as quantized_chunk_bytes
from ckpt_gui.core.model import Checkpoint, TensorInfo
from ckpt_gui.core.positional_io import O_BINARY, advise_sequential, read_into_at

# 2M elements (8 MB of float32) per chunk, 8 buffers: the reader may run up to 56 MB
# ahead, which rides out the moments the consumer is slow (measured on a busy 2-core
# machine: deeper pools of smaller chunks beat 3 x 16 MB by about a quarter).
STREAM_CHUNK_ELEMENTS = 1 << 21
_POOL_SIZE = 8
_STOP_POLL_SECONDS = 0.1


@dataclass(frozen=True)
class RawChunk:
    """Bytes ``start_byte`` .. ``start_byte + len(raw)`` of tensor ``tensors[index]``."""

    index: int
    tensor: TensorInfo
    start_byte: int
    raw: np.ndarray[Any, np.dtype[np.uint8]]
    # The dtype and total size of the bytes handed out: the tensor's own, except for
    # GGUF tensors whose transformers values are computed (float32, ``gguf.hf_values``).
    raw_dtype: str = ""
    raw_total: int = -1

    @property
    def dtype(self) -> str:
        return self.raw_dtype or self.tensor.dtype

    @property
    def last(self) -> bool:
        total = self.raw_total if self.raw_total >= 0 else self.tensor.nbytes
        return self.start_byte + self.raw.size >= total


def chunk_bytes_for(tensor: TensorInfo, chunk_elements: int) -> int:
    """Bytes per chunk for a tensor: ``chunk_elements`` values, whole bytes for packed dtypes."""
    if tensor.dtype not in BITS_PER_ELEMENT and is_quantized(tensor.dtype):
        return quantized_chunk_bytes(tensor.dtype, chunk_elements)  # whole GGUF blocks
    bits = BITS_PER_ELEMENT.get(tensor.dtype, 8)
    return max(1, chunk_elements * bits // 8)


def computed_view(checkpoint: Checkpoint, tensor: TensorInfo) -> TensorInfo:
    """The tensor as its bytes are streamed: float32 when its values are computed."""
    if not values_computed(checkpoint, tensor):
        return tensor
    return dataclasses.replace(tensor, dtype="F32", nbytes=4 * tensor.parameters, offset=None)


class TensorStream:
    """Iterate over ``RawChunk``s of ``tensors`` (all from ``checkpoint``) in the given order.

    Every tensor is cut into chunks of ``chunk_elements`` values, so two streams
    over same-shaped tensors of different dtypes stay in step chunk for chunk.
    Use as a context manager (or call ``close()``) so that the reader thread
    and file handles are released, also when the consumer stops early.
    """

    def __init__(
        self,
        checkpoint: Checkpoint,
        tensors: Sequence[TensorInfo],
        chunk_elements: int = STREAM_CHUNK_ELEMENTS,
        prefetch: bool = True,
    ) -> None:
        if chunk_elements % 8:
            raise ValueError("chunk_elements must be a multiple of 8 (packed dtypes)")
        self.checkpoint = checkpoint
        self.tensors = list(tensors)
        self.chunk_elements = chunk_elements
        views = [computed_view(checkpoint, t) for t in self.tensors]
        largest = max((chunk_bytes_for(t, chunk_elements) for t in views), default=1)
        largest = min(largest, max((t.nbytes for t in views), default=1))
        self._buffer_bytes = max(largest, 1)
        self._prefetch = prefetch
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._ready: queue.Queue[Any] = queue.Queue()
        self._free: queue.Queue[bytearray] = queue.Queue()

    def __enter__(self) -> TensorStream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __iter__(self) -> Iterator[RawChunk]:
        if not self._prefetch:
            yield from self._produce([bytearray(self._buffer_bytes)])
            return
        for _ in range(_POOL_SIZE):
            self._free.put(bytearray(self._buffer_bytes))
        self._thread = threading.Thread(target=self._run, name="tensor-stream", daemon=True)
        self._thread.start()
        while True:
            item = self._ready.get()
            if item is None:
                return
            if isinstance(item, BaseException):
                raise item
            chunk, buffer = item
            try:
                yield chunk
            finally:
                self._free.put(buffer)

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None

    # -- reading (on the reader thread when prefetching) -------------------------------------

    def _run(self) -> None:
        pool = _PoolView(self._free, self._stop)
        try:
            for chunk in self._produce(pool):
                self._ready.put((chunk, pool.current))
                if self._stop.is_set():
                    return
            self._ready.put(None)
        except BaseException as exc:
            self._ready.put(exc)

    def _produce(self, pool: Sequence[bytearray] | _PoolView) -> Iterator[RawChunk]:
        files = _OpenFiles(self.checkpoint)
        try:
            for index, tensor in enumerate(self.tensors):
                read_as = computed_view(self.checkpoint, tensor)
                step = chunk_bytes_for(read_as, self.chunk_elements)
                source = files.source_of(tensor)
                for start in range(0, read_as.nbytes, step):
                    if self._stop.is_set():
                        return
                    buffer = pool.take() if isinstance(pool, _PoolView) else pool[0]
                    if buffer is None:
                        return
                    length = min(step, read_as.nbytes - start)
                    view = np.frombuffer(buffer, dtype=np.uint8, count=length)
                    source.read_into(start, view)
                    yield RawChunk(index, tensor, start, view, read_as.dtype, read_as.nbytes)
        finally:
            files.close()


class _PoolView:
    """The reader thread's side of the buffer pool: blocks until the consumer frees one."""

    def __init__(self, free: queue.Queue[bytearray], stop: threading.Event) -> None:
        self._free = free
        self._stop = stop
        self.current: bytearray | None = None

    def take(self) -> bytearray | None:
        while not self._stop.is_set():
            try:
                self.current = self._free.get(timeout=_STOP_POLL_SECONDS)
                return self.current
            except queue.Empty:
                continue
        return None


class _Source:
    # PermutedRows (core/gguf/values.py) has the same read_into.
    def read_into(self, start: int, view: np.ndarray[Any, np.dtype[np.uint8]]) -> None:
        raise NotImplementedError


class _FileSpan(_Source):
    def __init__(self, fd: int, path: Path, tensor: TensorInfo) -> None:
        assert tensor.offset is not None
        self.fd, self.path, self.tensor, self.offset = fd, path, tensor, tensor.offset

    def read_into(self, start: int, view: np.ndarray[Any, np.dtype[np.uint8]]) -> None:
        position = self.offset + start
        done = 0
        target = memoryview(view)  # type: ignore[arg-type]
        while done < len(target):
            try:
                count = read_into_at(self.fd, target[done:], position + done)
            except OSError as exc:
                raise CheckpointError(self.path, exc.strerror or str(exc)) from None
            if count == 0:
                raise CheckpointError(self.path, f"file ends inside tensor '{self.tensor.name}'")
            done += count


class _GatheredTensor(_Source):
    """A strided view's bytes, gathered once into row-major order."""

    def __init__(self, raw: np.ndarray[Any, np.dtype[np.uint8]]) -> None:
        self.raw = raw

    def read_into(self, start: int, view: np.ndarray[Any, np.dtype[np.uint8]]) -> None:
        np.copyto(view, self.raw[start : start + view.size])


class _InMemory(_Source):
    """A tensor already assembled in memory (distributed checkpoints)."""

    def __init__(self, raw: np.ndarray[Any, np.dtype[np.uint8]]) -> None:
        self.raw = raw

    def read_into(self, start: int, view: np.ndarray[Any, np.dtype[np.uint8]]) -> None:
        np.copyto(view, self.raw[start : start + view.size])


class _OpenFiles:
    """One handle at a time per file (files are read one after another)."""

    def __init__(self, checkpoint: Checkpoint) -> None:
        self.checkpoint = checkpoint
        self.fds: dict[Path, int] = {}
        self.distributed: CheckpointPieces | None = None
        if is_distributed(checkpoint):
            # One full tensor at a time, assembled from its chunks on the reader thread.
            self.distributed = CheckpointPieces(checkpoint)

    def source_of(self, tensor: TensorInfo) -> _Source | PermutedRows:
        if self.checkpoint.root is None:
            raise CheckpointError(
                self.checkpoint.source, "tensor values can only be read from local files"
            )
        if self.distributed is not None:
            return _InMemory(self.distributed.tensor_bytes(tensor.name))
        if values_computed(self.checkpoint, tensor):
            from ckpt_gui.core.gguf.hf_values import hf_values_into

            values = np.empty(tensor.parameters, dtype=np.float32)
            hf_values_into(self.checkpoint, tensor, values)
            return _InMemory(values.view(np.uint8))
        path = self.checkpoint.path_of(tensor)
        if tensor.offset is None:
            if not tensor.strided:
                raise CheckpointError(path, f"tensor '{tensor.name}': its bytes cannot be located")
            from ckpt_gui.core.values.strided import strided_bytes

            return _GatheredTensor(strided_bytes(path, tensor))
        fd = self.fds.get(path)
        if fd is None:
            # Files are read one after another: keep only the current one open.
            self._close_fds()
            try:
                fd = os.open(path, os.O_RDONLY | O_BINARY)
            except OSError as exc:
                raise CheckpointError(path, exc.strerror or str(exc)) from None
            advise_sequential(fd)
            self.fds[path] = fd
        heads = permutation_heads(self.checkpoint, tensor)
        if heads is not None:
            # llama.cpp's q/k row order: read the rows in transformers' order.
            return PermutedRows(fd, path, tensor, heads)
        return _FileSpan(fd, path, tensor)

    def _close_fds(self) -> None:
        for fd in self.fds.values():
            os.close(fd)
        self.fds.clear()

    def close(self) -> None:
        self._close_fds()
        if self.distributed is not None:
            self.distributed.close()
