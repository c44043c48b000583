"""Describe one remote weight file from a few byte ranges, never its tensor data.

- safetensors: the 8-byte length and the JSON header (one request when the header
  fits the read-ahead, else two).
- PyTorch zip (``.bin``): the zip's central directory at the end of the file, then
  the ``data.pkl`` member alone. Its globals are checked against the weights-only
  allow list without unpickling; only then is it loaded, by ``torch.load(...,
  weights_only=True, map_location="meta")``, from a small in-memory zip holding
  that pickle and empty storage records: shapes and dtypes, no weights, and no
  unpickler but torch's weights-only one ever sees the bytes.
"""

from __future__ import annotations

import io
import struct
import zipfile
from pathlib import Path
from typing import Any

from ckpt_gui.core.errors import CheckpointError, UnsafePickleError
from ckpt_gui.core.formats import safetensors
from ckpt_gui.core.hub.http import READ_AHEAD, HubClient
from ckpt_gui.core.hub.ref import HubRef
from ckpt_gui.core.model import PickleGlobal, TensorInfo

MAX_PICKLE_BYTES = 256 * 1024 * 1024
MAX_RANGE_BYTES = MAX_PICKLE_BYTES + 1024 * 1024
# The zip's end record and central directory: 64 kB covers about 600 tensors.
ZIP_READ_AHEAD = 65_536


class RangedFile(io.RawIOBase):
    """A read-only, seekable view of a remote file; reads become HTTP range requests.

    Reads are cached in one window, fetched with read-ahead; near the end of the
    file the window extends backwards, so a zip reader's tail reads cost one request.
    """

    def __init__(
        self,
        client: HubClient,
        ref: HubRef,
        filename: str,
        commit: str,
        size: int,
        read_ahead: int = READ_AHEAD,
    ) -> None:
        super().__init__()
        self._client, self._ref, self._name, self._commit = client, ref, filename, commit
        self._size = size
        self._read_ahead = read_ahead
        self._position = 0
        self._window_start = 0
        self._window = b""

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._position

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._position, io.SEEK_END: self._size}[whence]
        self._position = max(0, base + offset)
        return self._position

    def prefetch(self, start: int, length: int) -> None:
        """Fetch ``[start, start + length)`` in one request for the reads that follow."""
        end = min(self._size, start + length)
        if not (self._window_start <= start and end <= self._window_start + len(self._window)):
            self._fetch(start, end)

    def read(self, size: int | None = -1) -> bytes:
        if size is None or size < 0:
            size = self._size - self._position
        end = min(self._size, self._position + size)
        if end <= self._position:
            return b""
        window_end = self._window_start + len(self._window)
        if not (self._window_start <= self._position and end <= window_end):
            fetch_end = min(self._size, max(end, self._position + self._read_ahead))
            fetch_start = self._position
            if fetch_end == self._size:
                fetch_start = max(0, min(self._position, self._size - self._read_ahead))
            self._fetch(fetch_start, fetch_end)
        offset = self._position - self._window_start
        data = self._window[offset : offset + (end - self._position)]
        self._position += len(data)
        return data

    def readinto(self, buffer: Any) -> int:
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def _fetch(self, start: int, end: int) -> None:
        if end - start > MAX_RANGE_BYTES:
            # A hostile or broken file (e.g. a zip claiming a 4 GB directory) must not
            # make us download and hold that much.
            raise CheckpointError(
                f"{self._ref.repo_id}/{self._name}",
                f"would need a {end - start:,}-byte read just to describe the file; refused",
            )
        data = self._client.read_range(self._ref, self._name, self._commit, start, end - start)
        if len(data) != end - start:
            raise CheckpointError(
                f"{self._ref.repo_id}/{self._name}",
                f"server sent {len(data):,} bytes for a {end - start:,}-byte range: "
                "file shorter than the repo listing says",
            )
        self._window_start, self._window = start, data


def read_safetensors_header(
    client: HubClient,
    ref: HubRef,
    filename: str,
    commit: str,
    size: int,
    read_ahead: int = READ_AHEAD,
) -> tuple[list[TensorInfo], dict[str, str]]:
    """Tensors and ``__metadata__`` of a remote safetensors file, from its header alone.

    The first request reads ``read_ahead`` bytes (at least the 8-byte length); a
    header longer than that costs a second request for exactly the rest.
    """
    name = f"{ref.repo_id}/{filename}"
    if size < 8:
        raise CheckpointError(name, f"file is {size} bytes, too short for a safetensors header")
    remote = RangedFile(client, ref, filename, commit, size, read_ahead=max(8, read_ahead))
    (length,) = struct.unpack("<Q", remote.read(8))
    if length > safetensors.MAX_HEADER_BYTES:
        raise CheckpointError(
            name, f"header length {length:,} bytes exceeds the 100 MB safetensors limit"
        )
    if 8 + length > size:
        raise CheckpointError(
            name, f"header length {length:,} bytes runs past the end of the file ({size:,} bytes)"
        )
    remote.prefetch(8, length)
    raw = remote.read(length)
    header = safetensors.parse_header_bytes(raw, name)
    return safetensors.tensors_from_header(header, 8 + length, size - 8 - length, name, filename)


def read_torch_zip(
    client: HubClient,
    ref: HubRef,
    filename: str,
    commit: str,
    size: int,
    read_ahead: int = ZIP_READ_AHEAD,
) -> tuple[list[TensorInfo], dict[str, Any], list[PickleGlobal]]:
    """Tensors of a remote torch zip checkpoint, from its central directory and data.pkl."""
    from ckpt_gui.core.pickles.opcodes import (
        classify,
        globals_in_pickle,
        weights_only_allowed_names,
    )
    from ckpt_gui.core.pickles.torch_load import find_state_dict, tensor_info

    name = f"{ref.repo_id}/{filename}"
    remote = RangedFile(client, ref, filename, commit, size, read_ahead=max(22, read_ahead))
    try:
        archive = zipfile.ZipFile(remote)
        members = archive.infolist()
        pickles = [m for m in members if m.filename.endswith("/data.pkl")]
        if len(pickles) != 1:
            raise CheckpointError(name, "zip has no single data.pkl: not a torch checkpoint")
        entry = pickles[0]
        if entry.file_size > MAX_PICKLE_BYTES:
            raise CheckpointError(name, f"pickle is {entry.file_size:,} bytes: too large")
        # Local header (30 bytes + name + extra: torch pads to 64-byte alignment, zip64
        # adds 20) + data. A longer extra field costs one more request, not a failure.
        remote.prefetch(entry.header_offset, 30 + len(entry.filename) + 128 + entry.compress_size)
        data = archive.read(entry)
    except CheckpointError:
        raise
    except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError, EOFError, OSError) as exc:
        raise CheckpointError(name, f"not a readable torch zip checkpoint ({exc})") from None
    prefix = entry.filename[: -len("data.pkl")]
    try:
        allowed = weights_only_allowed_names()
        pickle_globals = [
            classify(g, allowed) for g in dict.fromkeys(globals_in_pickle(io.BytesIO(data)))
        ]
    except (ValueError, EOFError, UnicodeDecodeError) as exc:
        raise CheckpointError(name, f"corrupted pickle data ({exc})") from None
    refused = [g.name for g in pickle_globals if not g.allowed]
    if refused:
        raise UnsafePickleError(name, refused)
    storage_keys = [
        m.filename[len(prefix) + len("data/") :]
        for m in members
        if m.filename.startswith(prefix + "data/")
    ]
    loaded = _load_meta_pickle(data, storage_keys, name)
    state_dict, location, metadata = find_state_dict(loaded, Path(name))
    tensors = [tensor_info(key, value, filename) for key, value in state_dict.items()]
    if location:
        metadata["state_dict_key"] = location
    return tensors, metadata, pickle_globals


def _load_meta_pickle(data: bytes, storage_keys: list[str], name: str) -> Any:
    """``torch.load(weights_only=True, map_location="meta")`` on a zip with only the pickle."""
    import pickle

    import torch

    stub = io.BytesIO()
    with zipfile.ZipFile(stub, "w", zipfile.ZIP_STORED) as archive:
        archive.writestr("archive/data.pkl", data)
        archive.writestr("archive/byteorder", "little")
        archive.writestr("archive/version", "3\n")
        for key in storage_keys:
            # Empty records: with meta storages torch never reads them, it only looks them up.
            archive.writestr(f"archive/data/{key}", b"")
    stub.seek(0)
    try:
        return torch.load(stub, map_location="meta", weights_only=True)
    except pickle.UnpicklingError as exc:
        last = str(exc).strip().splitlines()[-1] if str(exc).strip() else "unpickling failed"
        raise CheckpointError(name, f"refuses to load safely: {last[:200]}") from None
    except (RuntimeError, ValueError, EOFError, OSError, KeyError, IndexError) as exc:
        message = " ".join(str(exc).split())[:200] or type(exc).__name__
        raise CheckpointError(name, f"corrupted PyTorch pickle ({message})") from None
