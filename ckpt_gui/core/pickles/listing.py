"""Torch files read for listing from a stream where every read costs (a remote file).

The same reader as local files (``archive.py``), so a Hub ``.bin`` shows what the
downloaded file shows; only where storages are located differs, because locating
them as a local read does (each record's local header) would be one range request
per storage:

- zip: ``DirectoryLocator`` takes each storage's data start from the central
  directory: a record's bytes end where the next record's local header begins
  (or the directory, for the last), minus its data descriptor. torch writes one
  (16 bytes, 24 in zip64 archives) and starts data on 64-byte boundaries; of the
  four descriptor sizes the zip format allows (12, 16, 20, 24) at most one gives
  an aligned start. A record without a descriptor ends exactly at the next header.
  The records that are read (``data.pkl``, ``byteorder``, ``constants.pkl``) are
  read through their real local headers, one prefetch per run of records side by
  side, and ``data.pkl``'s derived start is checked against its header; a record
  whose start cannot be derived (or a file whose ``data.pkl`` disagrees) falls
  back to its local header, for at most ``MAX_HEADER_READS`` records (then the
  file is refused, with the advice to download it). The starts are only shown: a remote listing never reads
  tensor bytes. A file with bytes hidden between records (neither torch nor zipfile
  writes one) may show other offsets than the same file opened locally; names,
  dtypes, shapes and sizes never depend on them.
- first read: the end of the file. A zip's end record there (torch writes no
  comment) gives the directory, and then one read from byte 0 through ``data.pkl``
  and the records beside it, so the first bytes that decide zip or legacy (as
  torch decides) come with the pickle.
- legacy: the pickles are read from a prefix of the file, grown (one request each
  time, four times larger) until they parse; the storages' element counts past
  that prefix are the pickle's, checked to end exactly at the end of the file.
"""

from __future__ import annotations

import zipfile
from pathlib import Path
from typing import Any

from ckpt_gui.core.errors import CheckpointError
from ckpt_gui.core.pickles.archive import (
    LocalHeaders,
    TorchArchive,
    is_zip,
    read_legacy_prefix,
    read_torch_stream,
)
from ckpt_gui.core.pickles.unpickler import DEFAULT_LIMITS, PickleLimits

_LOCAL_HEADER_SIZE = 30
_END_RECORD_SIZE = 22
_DESCRIPTOR_SIZES = (12, 16, 20, 24)
_ALIGNMENT = 64  # torch's kFieldAlignment
_DESCRIPTOR_FLAG = 0x08
_UTF8_FLAG = 0x800
# The records read to list an archive (the rest are storages, and code/ never read).
_READ_RECORDS = ("/data.pkl", "/byteorder", "/constants.pkl")
_RUN_GAP = 4096
# The first read of a listing fetches at most this much ahead of knowing the format.
_HINT_LIMIT = 64 * 1024 * 1024
# Storages whose start cannot be derived are located by their header, this many at most.
MAX_HEADER_READS = 16
# The legacy pickles' prefix: first try, and the largest tried (a 70B model's is a few MB).
LEGACY_FIRST_PREFIX = 65_536
LEGACY_MAX_PREFIX = 256 * 1024 * 1024
# How the unpickler (machine.py) says the data ended early.
_RAN_OUT = ("remain", "data ends before STOP", "line without end")


class DirectoryLocator(LocalHeaders):
    """Storage starts from the central directory; read records through their headers."""

    def __init__(self, path: Path, stream: Any, size: int, archive: zipfile.ZipFile) -> None:
        super().__init__(path, stream, size, archive)
        records = sorted(archive.infolist(), key=lambda r: r.header_offset)
        ends = [r.header_offset for r in records[1:]] + [int(getattr(archive, "start_dir", size))]
        self._next: dict[int, int] = {}
        for record, end in zip(records, ends, strict=True):
            self._next.setdefault(record.header_offset, end)
        self._runs = _runs(
            [(r.header_offset, self._next[r.header_offset]) for r in records if _is_read(r)]
        )
        self._trusted = True
        self._header_reads = 0

    def prefetch_run(self, record: zipfile.ZipInfo, include_start: bool = False) -> None:
        """One read for ``record`` and the records read beside it (from byte 0 if asked)."""
        prefetch = getattr(self.stream, "prefetch", None)
        for start, end in self._runs:
            if prefetch is not None and start <= record.header_offset < end:
                first = 0 if include_start and start <= _RUN_GAP else start
                if end - first <= _HINT_LIMIT or not include_start:
                    prefetch(first, end - first)

    def member(self, record: zipfile.ZipInfo) -> int:
        self.prefetch_run(record)
        start = super().member(record)
        if self._derived(record) != start:
            # Not laid out as torch and zipfile write archives: trust headers only.
            self._trusted = False
        return start

    def storage(self, record: zipfile.ZipInfo) -> int:
        derived = self._derived(record) if self._trusted else None
        if derived is None:
            self._header_reads += 1
            if self._header_reads > MAX_HEADER_READS:
                raise CheckpointError(
                    self.path,
                    "storages are not laid out as torch writes them: locating them would "
                    "take a read of each record's header",
                )
            return super().storage(record)
        if derived + record.file_size > self.size:
            raise CheckpointError(
                self.path,
                f"zip record {record.filename} runs past the end of the file ({self.size:,} bytes)",
            )
        return derived

    def _derived(self, record: zipfile.ZipInfo) -> int | None:
        end = self._next.get(record.header_offset)
        lowest = record.header_offset + _LOCAL_HEADER_SIZE + _name_length(record)
        if end is None or lowest is None:
            return None
        data_end = end - record.compress_size
        if not record.flag_bits & _DESCRIPTOR_FLAG:
            return data_end if lowest <= data_end <= lowest + 0xFFFF else None
        aligned = [
            data_end - d
            for d in _DESCRIPTOR_SIZES
            if (data_end - d) % _ALIGNMENT == 0 and lowest <= data_end - d <= lowest + 0xFFFF
        ]
        return aligned[0] if len(aligned) == 1 else None


def _is_read(record: zipfile.ZipInfo) -> bool:
    return record.filename.endswith(_READ_RECORDS) and record.filename.count("/") == 1


def _runs(spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Byte ranges that are close (``_RUN_GAP``) merged: one prefetch for records side by side."""
    merged: list[tuple[int, int]] = []
    for start, end in sorted(spans):
        if merged and start - merged[-1][1] <= _RUN_GAP:
            merged[-1] = (merged[-1][0], max(end, merged[-1][1]))
        elif end > start:
            merged.append((start, end))
    return merged


def _name_length(record: zipfile.ZipInfo) -> int:
    encoding = "utf-8" if record.flag_bits & _UTF8_FLAG else "cp437"
    try:
        return len(record.orig_filename.encode(encoding))
    except UnicodeEncodeError:
        return len(record.orig_filename.encode("utf-8"))


def read_torch_listing(
    path: Path, stream: Any, size: int, limits: PickleLimits = DEFAULT_LIMITS
) -> TorchArchive:
    """A torch file (zip, TorchScript or legacy) in ``stream``, located for listing.

    The end of the file is read first: for a zip (nearly every ``.bin``) its directory
    says where ``data.pkl`` is, and one read then gets the first bytes (zip or legacy
    is decided by them, as torch decides) together with the pickle.
    """
    _prefetch_pickle_run(path, stream, size)
    stream.seek(0)
    head = stream.read(4)
    stream.seek(0)
    if is_zip(head):
        return read_torch_stream(path, stream, size, limits, DirectoryLocator)
    if not head:
        raise CheckpointError(path, "file is empty")
    return _read_legacy(path, stream, size, limits)


def _prefetch_pickle_run(path: Path, stream: Any, size: int) -> None:
    """If ``stream`` ends with a zip directory, fetch the run of records holding data.pkl."""
    if getattr(stream, "prefetch", None) is None or size < _END_RECORD_SIZE:
        return
    stream.seek(size - _END_RECORD_SIZE)
    if stream.read(4) != b"PK\x05\x06":
        # No end record where torch puts it (a legacy file, or a zip with a comment):
        # no hint; zipfile's search for the record would cost another request.
        return
    try:
        archive = zipfile.ZipFile(stream)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError, EOFError):
        return  # not a zip (a legacy file), or a broken one: the reader says which
    records = archive.infolist()
    if records:
        pickle_name = records[0].filename.split("/", 1)[0] + "/data.pkl"
        locator = DirectoryLocator(path, stream, size, archive)
        for record in records:
            if record.filename == pickle_name:
                locator.prefetch_run(record, include_start=True)


def _read_legacy(path: Path, stream: Any, size: int, limits: PickleLimits) -> TorchArchive:
    prefix = bytearray()
    want = min(size, LEGACY_FIRST_PREFIX)
    while True:
        stream.seek(len(prefix))
        prefix += stream.read(want - len(prefix))
        try:
            return read_legacy_prefix(path, bytes(prefix), size, limits)
        except CheckpointError as exc:
            # The pickles run past the prefix: read more, up to a bound.
            ran_out = any(marker in exc.problem for marker in _RAN_OUT)
            if not ran_out or len(prefix) >= min(size, LEGACY_MAX_PREFIX):
                raise
        want = min(size, LEGACY_MAX_PREFIX, 4 * len(prefix))
