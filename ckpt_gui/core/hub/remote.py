"""Describe one remote weight file from a few byte ranges, never its tensor data.

- safetensors: the 8-byte length and the JSON header (one request when the header
  fits the read-ahead, else two).
- PyTorch pickles (``.bin``, zip, TorchScript or legacy): read by the same
  non-executing reader as a local file (``core/pickles/``, then
  ``formats/pytorch.py``), so a repo shows what the downloaded file shows, with no
  torch import. A zip costs its end (the central directory; one more request if
  that outgrows the read-ahead), then one read from its first byte through
  ``data.pkl``: storages are located from the directory, not one request each
  (``pickles/listing.py``).
"""

from __future__ import annotations

import io
import struct
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ckpt_gui.core.errors import CheckpointError
from ckpt_gui.core.formats import safetensors
from ckpt_gui.core.hub.http import READ_AHEAD, HubClient
from ckpt_gui.core.hub.ref import HubRef
from ckpt_gui.core.model import TensorInfo

if TYPE_CHECKING:
    from ckpt_gui.core.formats.pytorch import TorchFileContents

# The pickle of a 70B model is a few MB: reads this large are refused (see _fetch_range).
MAX_RANGE_BYTES = 257 * 1024 * 1024
# The zip's end record and central directory: 64 kB covers about 600 tensors.
ZIP_READ_AHEAD = 65_536


class RangedFile(io.RawIOBase):
    """A read-only, seekable view of a remote file; reads become HTTP range requests.

    Fetched ranges are kept (the last ``WINDOWS``, at most ``MAX_RANGE_BYTES`` in all),
    fetched with read-ahead; near the end of the file a range extends backwards, so a
    zip reader's tail reads cost one request, and a pickle read at the start of the
    file stays available after the directory at its end was read.
    """

    WINDOWS = 8

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
        self._windows: list[tuple[int, bytes]] = []
        # The error a fetch raised (transport, refused size): not the file's fault.
        self.fetch_error: CheckpointError | None = None

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
        if self._window_for(start, end) is None and end > start:
            self._fetch(start, end)

    def read(self, size: int | None = -1) -> bytes:
        if size is None or size < 0:
            size = self._size - self._position
        end = min(self._size, self._position + size)
        if end <= self._position:
            return b""
        window = self._window_for(self._position, end)
        if window is None:
            fetch_end = min(self._size, max(end, self._position + self._read_ahead))
            fetch_start = self._position
            if fetch_end == self._size:
                fetch_start = max(0, min(self._position, self._size - self._read_ahead))
            window = self._fetch(fetch_start, fetch_end)
        window_start, data = window
        offset = self._position - window_start
        chunk = data[offset : offset + (end - self._position)]
        self._position += len(chunk)
        return chunk

    def readinto(self, buffer: Any) -> int:
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def _window_for(self, start: int, end: int) -> tuple[int, bytes] | None:
        for window in reversed(self._windows):
            if window[0] <= start and end <= window[0] + len(window[1]):
                return window
        return None

    def _fetch(self, start: int, end: int) -> tuple[int, bytes]:
        try:
            data = self._fetch_range(start, end)
        except CheckpointError as exc:
            self.fetch_error = exc
            raise
        window = (start, data)
        self._windows.append(window)
        while len(self._windows) > self.WINDOWS or (
            len(self._windows) > 1 and sum(len(w[1]) for w in self._windows) > MAX_RANGE_BYTES
        ):
            del self._windows[0]
        return window

    def _fetch_range(self, start: int, end: int) -> bytes:
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
        return data


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


def read_torch_pickle(
    client: HubClient,
    ref: HubRef,
    filename: str,
    commit: str,
    size: int,
    read_ahead: int = ZIP_READ_AHEAD,
    weights_key: str | None = None,
) -> TorchFileContents:
    """What the same file opened locally shows (``formats/pytorch.py``), from a few ranges.

    Read by our own pickle reader, never run and without torch; the storages are
    located without a request each (``pickles/listing.py``).
    """
    from ckpt_gui.core.formats.pytorch import archive_contents, refuse_if_dangerous
    from ckpt_gui.core.pickles.listing import read_torch_listing
    from ckpt_gui.core.pickles.opcodes import scan_pickle_stream

    path = Path(f"{ref.repo_id}/{filename}")
    remote = RangedFile(client, ref, filename, commit, size, read_ahead=max(22, read_ahead))
    try:
        archive = read_torch_listing(path, remote, size)
    except CheckpointError:
        if remote.fetch_error is None:
            # As for a local file: one our reader cannot read may still be one torch would run.
            refuse_if_dangerous(path, lambda: scan_pickle_stream(path, remote, size).globals)
        raise
    return archive_contents(archive, filename, weights_key)
