"""Assemble one full tensor of a distributed checkpoint from its pieces, as raw bytes.

Pieces are read with plain ``pread``-style file reads and placed with numpy; no
torch. A DCP chunk in the default encoding is a small torch zip archive of one
tensor, unpickled by our own reader (``core/pickles/archive``) to find its
storage, offset and strides. Memory: the full tensor plus one piece.
"""

from __future__ import annotations

import io
import math
from pathlib import Path
from typing import Any

import numpy as np

from ckpt_gui.core.dtypes import BITS_PER_ELEMENT
from ckpt_gui.core.errors import CheckpointError
from ckpt_gui.core.formats.distributed import dcp
from ckpt_gui.core.formats.distributed.layout import Piece, TensorLayout
from ckpt_gui.core.pickles.archive import read_torch_stream
from ckpt_gui.core.pickles.reconstruct import TensorRef
from ckpt_gui.core.positional_io import advise_will_need, can_advise
from ckpt_gui.core.values.decode import decode

ZIP_MAGIC = b"PK\x03\x04"
# What a chunk's archive directory or pickle needs, at either end of the chunk.
_CHUNK_END_BYTES = 8192


# DeepSpeed keeps buffers in the module dtype; zero_to_fp32 widens them (``v.float()``).
_WIDENED = ("BF16", "F16")


class _Window(io.RawIOBase):
    """``length`` bytes of ``stream`` from ``base``, as a seekable file of their own."""

    def __init__(self, stream: Any, base: int, length: int) -> None:
        self.stream, self.base, self.length, self.position = stream, base, length, 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self.position

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        origin = {io.SEEK_SET: 0, io.SEEK_CUR: self.position, io.SEEK_END: self.length}[whence]
        self.position = max(0, min(self.length, origin + offset))
        return self.position

    def readinto(self, buffer: Any) -> int:
        count = min(len(buffer), self.length - self.position)
        if count <= 0:
            return 0
        self.stream.seek(self.base + self.position)
        done: int = self.stream.readinto(memoryview(buffer)[:count])
        self.position += done
        return done


def _row_block(layout: TensorLayout, piece: Piece, item: int) -> tuple[int, int] | None:
    """The byte range a chunk fills in the full tensor when it is one run there (FSDP's row shards)."""
    offsets, sizes = piece.box_offsets, piece.box_sizes
    assert offsets is not None and sizes is not None
    if not layout.shape or any(o != 0 for o in offsets[1:]) or sizes[1:] != layout.shape[1:]:
        return None
    row = math.prod(layout.shape[1:]) * item
    return offsets[0] * row, (offsets[0] + sizes[0]) * row


def _contiguous_target(
    out: np.ndarray[Any, np.dtype[np.uint8]], layout: TensorLayout, piece: Piece, item: int
) -> np.ndarray[Any, np.dtype[np.uint8]] | None:
    """Where a chunk goes in ``out`` when it is one run of bytes there."""
    block = _row_block(layout, piece, item)
    return None if block is None else out[block[0] : block[1]]


# One run of a full tensor's bytes that is one run of a file's bytes: (file, offset, length).
ByteRun = tuple[str, int, int]


class PieceReader:
    """Reads pieces of one checkpoint folder; keeps the files it opened until ``close``."""

    def __init__(self, folder: Path, byte_entries: dict[str, Piece] | None = None) -> None:
        self.folder = folder
        self.byte_entries = byte_entries or {}
        self._files: dict[str, Any] = {}
        self._safetensors: dict[str, tuple[int, dict[str, Any]]] = {}

    def close(self) -> None:
        for stream in self._files.values():
            stream.close()
        self._files.clear()

    def __enter__(self) -> PieceReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def tensor_bytes(self, layout: TensorLayout) -> np.ndarray[Any, np.dtype[np.uint8]]:
        """The full tensor's bytes, C order, in ``layout.dtype``."""
        bits = BITS_PER_ELEMENT[layout.dtype]
        if bits % 8:
            raise CheckpointError(self.folder, f"'{layout.name}': {layout.dtype} cannot be assembled")
        item = bits // 8
        out = np.empty(layout.numel * item, dtype=np.uint8)
        cells = out.view(np.dtype(f"V{item}")) if item else out
        full = cells.reshape(layout.shape)
        for piece in layout.pieces:
            if piece.box_sizes is not None and piece.box_offsets is not None:
                target = _contiguous_target(out, layout, piece, item)
                box = self._box(layout, piece, item, target)
                if box is not None:
                    where = tuple(
                        slice(o, o + s)
                        for o, s in zip(piece.box_offsets, piece.box_sizes, strict=True)
                    )
                    full[where] = box
            elif not piece.key or piece.key == layout.dtype:
                start = piece.flat_start * item
                self._read_into(piece.file, piece.offset, out[start : start + piece.length])
            else:
                values = self._flat(layout, piece, item)
                cells[piece.flat_start : piece.flat_start + piece.flat_count] = values
        return out

    def tensor_runs(self, layout: TensorLayout) -> list[ByteRun] | None:
        """The full tensor as runs of file bytes in order, or None when it must be assembled.

        Row-block chunks stored contiguously (what FSDP2 writes) and DeepSpeed
        fragments kept in the tensor's dtype are such runs: a merge then copies
        them file to file (``copy_file_range``) without reading them into memory,
        and without torch. Chunks are checked exactly as ``tensor_bytes`` checks them.
        """
        bits = BITS_PER_ELEMENT[layout.dtype]
        if bits % 8:
            return None
        item = bits // 8
        placed: list[tuple[int, str, int, int]] = []
        for piece in layout.pieces:
            if piece.box_sizes is not None and piece.box_offsets is not None:
                block = _row_block(layout, piece, item)
                run = None if block is None else self._box_run(layout, piece, item)
                if block is None or run is None or run[2] != block[1] - block[0]:
                    return None
                placed.append((block[0], *run))
            elif (not piece.key or piece.key == layout.dtype) and piece.length:
                placed.append((piece.flat_start * item, piece.file, piece.offset, piece.length))
            elif piece.length:
                return None
        placed.sort()
        position = 0
        for start, _file, _offset, length in placed:
            if start != position:
                return None  # a gap or an overlap: leave it to the assembly
            position += length
        if position != layout.numel * item:
            return None
        return [(file, offset, length) for _start, file, offset, length in placed]

    def prefetch_chunk_ends(self, layout: TensorLayout) -> None:
        """Ask the kernel for the first and last pages of the tensor's DCP chunks, now.

        Finding where a chunk's values lie means reading its little zip
        directory (at the chunk's end) and pickle (at its start): small reads
        that, cold, each wait for the disk. Issued ahead, they are served from
        the page cache by the time the merge reaches the tensor.
        """
        if not can_advise():
            return
        for piece in layout.pieces:
            if piece.box_sizes is None or not piece.length:
                continue
            fd = self._stream(piece.file).fileno()
            head = min(_CHUNK_END_BYTES, piece.length)
            advise_will_need(fd, piece.offset, head)
            tail = max(piece.offset, piece.offset + piece.length - _CHUNK_END_BYTES)
            advise_will_need(fd, tail, piece.offset + piece.length - tail)

    # -- pieces --------------------------------------------------------------------------
    def _stream(self, file: str) -> Any:
        stream = self._files.get(file)
        if stream is None:
            path = self.folder / file
            try:
                stream = path.open("rb", buffering=0)
            except OSError as exc:
                raise CheckpointError(path, exc.strerror or str(exc)) from None
            self._files[file] = stream
        return stream

    def _read(self, file: str, offset: int, length: int) -> bytes:
        out = np.empty(length, dtype=np.uint8)
        self._read_into(file, offset, out)
        return out.tobytes()

    def _read_into(self, file: str, offset: int, view: np.ndarray[Any, np.dtype[np.uint8]]) -> None:
        """Fill ``view`` from ``offset`` in ``file``: straight into the output, no copy."""
        stream = self._stream(file)
        stream.seek(offset)
        target = memoryview(view)  # type: ignore[arg-type]
        done = 0
        while done < len(target):
            count = stream.readinto(target[done:])
            if not count:
                raise CheckpointError(
                    self.folder / file, f"file ends inside a chunk (at byte {offset + done:,})"
                )
            done += count

    def _flat(self, layout: TensorLayout, piece: Piece, item: int) -> np.ndarray[Any, Any]:
        """A fragment stored in another dtype: DeepSpeed's buffers, widened to float32 (``v.float()``)."""
        raw = self._read(piece.file, piece.offset, piece.length)
        if layout.dtype != "F32" or piece.key not in _WIDENED:
            raise CheckpointError(
                self.folder, f"'{layout.name}': cannot convert {piece.key} to {layout.dtype}"
            )
        return decode(raw, piece.key).astype(np.float32).view(np.dtype("V4"))

    def _box(
        self,
        layout: TensorLayout,
        piece: Piece,
        item: int,
        target: np.ndarray[Any, np.dtype[np.uint8]] | None,
    ) -> np.ndarray[Any, Any] | None:
        """The chunk's values, or None when they were read straight into ``target``."""
        assert piece.box_sizes is not None
        head = self._read(piece.file, piece.offset, min(4, piece.length))
        if head == ZIP_MAGIC:
            return self._torch_save_box(layout, piece, item, target)
        return self._safetensors_box(layout, piece, item)

    def _box_run(self, layout: TensorLayout, piece: Piece, item: int) -> ByteRun | None:
        """Where a chunk's values lie in its file when they are one run, C order."""
        assert piece.box_sizes is not None
        head = self._read(piece.file, piece.offset, min(4, piece.length))
        if head != ZIP_MAGIC:
            start, length = self._safetensors_span(layout, piece, item)
            return piece.file, start, length
        ref, start = self._torch_chunk(layout, piece, item)
        if not ref.contiguous:
            return None
        return piece.file, start + ref.offset * item, math.prod(piece.box_sizes) * item

    def _torch_save_box(
        self,
        layout: TensorLayout,
        piece: Piece,
        item: int,
        target: np.ndarray[Any, np.dtype[np.uint8]] | None,
    ) -> np.ndarray[Any, Any] | None:
        ref, start = self._torch_chunk(layout, piece, item)
        if target is not None and ref.contiguous:
            self._read_into(piece.file, start + ref.offset * item, target)
            return None
        raw = np.empty(ref.extent() * item, dtype=np.uint8)
        self._read_into(piece.file, start, raw)
        storage = raw.view(np.dtype(f"V{item}"))
        return np.lib.stride_tricks.as_strided(
            storage[ref.offset :],
            shape=ref.shape,
            strides=tuple(s * item for s in ref.stride),
            writeable=False,
        )

    def _torch_chunk(self, layout: TensorLayout, piece: Piece, item: int) -> tuple[TensorRef, int]:
        """A chunk in DCP's default encoding: its tensor and where its storage starts in the file."""
        assert piece.box_sizes is not None
        path = self.folder / piece.file
        # Only the archive's directory and pickle are read here; the data stays on disk.
        window = _Window(self._stream(piece.file), piece.offset, piece.length)
        archive = read_torch_stream(path, window, piece.length)
        ref = archive.value
        if not isinstance(ref, TensorRef):
            raise CheckpointError(path, f"chunk of '{layout.name}' holds no tensor")
        if ref.dtype != layout.dtype or ref.shape != piece.box_sizes:
            raise CheckpointError(
                path,
                f"chunk of '{layout.name}' is {ref.dtype} {list(ref.shape)}, the metadata says "
                f"{layout.dtype} {list(piece.box_sizes)}",
            )
        span = archive.storages[ref.storage.key]
        if ref.extent() * item > span.nbytes:
            raise CheckpointError(path, f"chunk of '{layout.name}' reaches past its storage")
        return ref, piece.offset + span.offset

    def _safetensors_box(self, layout: TensorLayout, piece: Piece, item: int) -> np.ndarray[Any, Any]:
        assert piece.box_sizes is not None
        start, length = self._safetensors_span(layout, piece, item)
        raw = self._read(piece.file, start, length)
        return np.frombuffer(raw, dtype=np.dtype(f"V{item}")).reshape(piece.box_sizes)

    def _safetensors_span(self, layout: TensorLayout, piece: Piece, item: int) -> tuple[int, int]:
        """A chunk in DCP's ``SAFETENSORS`` encoding: (offset in the file, length)."""
        assert piece.box_sizes is not None
        path = self.folder / piece.file
        if piece.file not in self._safetensors:
            self._safetensors[piece.file] = dcp.safetensors_part(
                self.folder, piece.file, self.byte_entries
            )
        start, header = self._safetensors[piece.file]
        entry = header.get(layout.name)
        if not isinstance(entry, dict):
            raise CheckpointError(path, f"no chunk of '{layout.name}' in the file")
        begin, end = entry.get("data_offsets", (0, -1))
        if entry.get("dtype") != layout.dtype or tuple(entry.get("shape", ())) != piece.box_sizes:
            raise CheckpointError(path, f"chunk of '{layout.name}' disagrees with the metadata")
        if end - begin != math.prod(piece.box_sizes) * item:
            raise CheckpointError(path, f"chunk of '{layout.name}' has the wrong size")
        return start + begin, end - begin


class CheckpointPieces:
    """Full tensors of a distributed ``Checkpoint`` by name (layouts read once, lazily)."""

    def __init__(self, checkpoint: Any) -> None:
        self.checkpoint = checkpoint
        self._layouts: dict[str, TensorLayout] | None = None
        self._reader: PieceReader | None = None

    def tensor_bytes(self, name: str) -> np.ndarray[Any, np.dtype[np.uint8]]:
        reader, layout = self._layout(name)
        return reader.tensor_bytes(layout)

    def tensor_runs(self, name: str) -> list[ByteRun] | None:
        """``PieceReader.tensor_runs`` of the tensor called ``name``."""
        reader, layout = self._layout(name)
        return reader.tensor_runs(layout)

    def prefetch(self, names: list[str]) -> None:
        """Start the kernel reading what locating these tensors' chunks needs."""
        for name in names:
            reader, layout = self._layout(name)
            reader.prefetch_chunk_ends(layout)

    def _layout(self, name: str) -> tuple[PieceReader, TensorLayout]:
        from ckpt_gui.core.formats.distributed.checkpoint import layouts

        if self._layouts is None or self._reader is None:
            self._layouts, byte_entries = layouts(self.checkpoint)
            self._reader = PieceReader(self.checkpoint.root, byte_entries)
        layout = self._layouts.get(name)
        if layout is None:
            raise CheckpointError(self.checkpoint.source, f"no tensor '{name}'")
        return self._reader, layout

    def close(self) -> None:
        if self._reader is not None:
            self._reader.close()
        self._reader = None
