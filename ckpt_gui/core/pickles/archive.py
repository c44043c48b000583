"""Torch files as ``torch.load`` reads them, unpickled by ``unpickler`` (nothing runs).

``read_torch_file(path)`` returns a ``TorchArchive``: the unpickled object
graph (inert placeholders and ``TensorRef``s), where every storage's bytes sit
in the file, and every global the pickles name. Three layouts:

- zip (torch >= 1.6; also TorchScript): chosen, as torch chooses, by the first
  bytes ``PK\\x03\\x04``. The archive's folder is the first record's; of two
  records with one name the last one counts: measured with torch 2.13, its
  reader (miniz) returns the last duplicate, as Python's ``zipfile`` does.
  pickle-risk walks every record anyway. ``<folder>/data.pkl`` holds the object, storages are
  ``<folder>/data/<key>`` records, stored uncompressed (their bytes are read in
  place). TorchScript archives add ``constants.pkl`` (storages under
  ``constants/``) and ``code/``, which is never read.
- legacy (``_use_new_zipfile_serialization=False``): five pickles in a row
  (magic number, protocol version, sys info, the object, the storage keys),
  then each storage as an 8-byte element count and its raw bytes.

Every declared size is checked against the bytes present; problems are one
``CheckpointError`` naming the file.
"""

from __future__ import annotations

import mmap
import os
import struct
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from ckpt_gui.core.dtypes import BITS_PER_ELEMENT
from ckpt_gui.core.errors import CheckpointError
from ckpt_gui.core.pickles import reconstruct as rebuild
from ckpt_gui.core.pickles.unpickler import (
    DEFAULT_LIMITS,
    Global,
    PickleLimits,
    PickleResult,
    load_pickle,
)

ZIP_MAGIC = b"PK\x03\x04"
LEGACY_MAGIC_NUMBER = 0x1950A86A20F9469CFC6C
LEGACY_PROTOCOL_VERSION = 1001
# data.pkl of a 70B model is a few MB; anything this large is not a checkpoint's pickle.
MAX_PICKLE_BYTES = 1 << 30
_LOCAL_HEADER = struct.Struct("<4s5H3I2H")


@dataclass(frozen=True)
class StorageSpan:
    """Where one storage's bytes are: ``nbytes`` bytes at absolute ``offset`` in the file."""

    key: str
    dtype: str
    numel: int
    offset: int
    nbytes: int


@dataclass
class TorchArchive:
    path: Path
    kind: str  # "zip", "legacy" or "torchscript"
    value: Any
    storages: dict[str, StorageSpan]
    globals: list[str]
    constants: Any = None
    members: list[str] = field(default_factory=list)


def is_zip(head: bytes) -> bool:
    return head.startswith(ZIP_MAGIC)


def read_torch_file(path: Path, limits: PickleLimits = DEFAULT_LIMITS) -> TorchArchive:
    """Unpickle a torch file (zip, legacy or TorchScript) without running any of it."""
    try:
        with path.open("rb") as stream:
            head = stream.read(4)
            size = os.fstat(stream.fileno()).st_size
            if size == 0:
                raise CheckpointError(path, "file is empty")
            if is_zip(head):
                return _read_zip(path, stream, size, limits)
            with mmap.mmap(stream.fileno(), 0, access=mmap.ACCESS_READ) as mapped:
                return _read_legacy(path, mapped, size, limits)
    except OSError as exc:
        raise CheckpointError(path, exc.strerror or str(exc)) from None


class _Storages:
    """``persistent_load`` for torch pids: one StorageRef per key, dtype from the storage type."""

    def __init__(self, path: Path, prefix: str = "") -> None:
        self.path = path
        self.prefix = prefix
        self.refs: dict[str, rebuild.StorageRef] = {}

    def __call__(self, pid: Any) -> Any:
        if isinstance(pid, tuple) and len(pid) >= 2 and pid[0] == "module":
            # Legacy whole-module saves replace the class by ('module', cls, file, source):
            # the class stays a name; its source text is never compiled.
            return pid[1]
        if not (isinstance(pid, tuple) and len(pid) >= 5 and pid[0] == "storage"):
            raise CheckpointError(self.path, f"unknown persistent id in pickle ({_short(pid)})")
        storage_type, key, location, numel = pid[1:5]
        if len(pid) > 5 and pid[5] is not None:
            raise CheckpointError(
                self.path, "storage views of the pre-1.0 legacy format are not supported"
            )
        if not isinstance(key, str) or not isinstance(numel, int) or numel < 0:
            raise CheckpointError(self.path, f"malformed storage id ({_short(pid)})")
        dtype = _storage_dtype(storage_type)
        if dtype is None:
            raise CheckpointError(self.path, f"unknown storage type {_short(storage_type)}")
        full_key = self.prefix + key
        known = self.refs.get(full_key)
        if known is None:
            known = rebuild.StorageRef(full_key, dtype, numel, str(location))
            self.refs[full_key] = known
        return known


def _storage_dtype(storage_type: Any) -> str | None:
    if isinstance(storage_type, Global):
        if storage_type.module == "torch" and storage_type.qualname in rebuild.STORAGE_DTYPES:
            return rebuild.STORAGE_DTYPES[storage_type.qualname]
        if storage_type.dotted in ("torch.storage.UntypedStorage", "torch.UntypedStorage"):
            return "U8"
        if storage_type.module == "torch" and storage_type.qualname in rebuild.TORCH_DTYPE_GLOBALS:
            return rebuild.TORCH_DTYPE_GLOBALS[storage_type.qualname]
    return None


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 120 else text[:117] + "..."


def load_torch_pickle(
    data: Any, path: Path, storages: _Storages | None, limits: PickleLimits, start: int = 0
) -> PickleResult:
    return load_pickle(
        data,
        name=str(path),
        start=start,
        persistent_load=storages,
        reconstruct=rebuild.reconstruct,
        build=rebuild.build,
        limits=limits,
    )


# -- zip ----------------------------------------------------------------------------------


class Locator(Protocol):
    """Where a zip record's bytes start: ``member`` for records read, ``storage`` for spans."""

    def member(self, record: zipfile.ZipInfo) -> int: ...

    def storage(self, record: zipfile.ZipInfo) -> int: ...


class LocalHeaders:
    """Data starts read from each record's local header: exact, one read per record.

    Right for a local file; a remote listing uses ``pickles/listing.py``'s locator,
    which takes the storages' starts from the central directory instead.
    """

    def __init__(self, path: Path, stream: Any, size: int, archive: zipfile.ZipFile) -> None:
        self.path, self.stream, self.size = path, stream, size

    def member(self, record: zipfile.ZipInfo) -> int:
        return _data_start(self.path, self.stream, record, self.size)

    def storage(self, record: zipfile.ZipInfo) -> int:
        return _data_start(self.path, self.stream, record, self.size)


def _read_zip(
    path: Path, stream: Any, size: int, limits: PickleLimits, locator: Any = LocalHeaders
) -> TorchArchive:
    """``locator(path, stream, size, archive)`` makes the ``Locator`` used for data starts."""
    try:
        archive = zipfile.ZipFile(stream)
        records = archive.infolist()
    except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError, EOFError) as exc:
        raise CheckpointError(path, f"not a readable torch zip archive ({exc})") from None
    if not records:
        raise CheckpointError(path, "zip archive is empty")
    where: Locator = locator(path, stream, size, archive)
    # torch 2.13 reads the last of duplicate records (tests/core/pickles/test_judged_as_torch.py).
    by_name: dict[str, zipfile.ZipInfo] = {r.filename: r for r in records}
    folder = records[0].filename.split("/", 1)[0] + "/"
    pickle_record = by_name.get(folder + "data.pkl")
    if pickle_record is None:
        raise CheckpointError(path, "zip archive has no data.pkl: not a torch checkpoint")
    byteorder = by_name.get(folder + "byteorder")
    if byteorder is not None and _member_bytes(path, stream, byteorder, size, 16, where) == b"big":
        raise CheckpointError(path, "big-endian checkpoint: not supported")
    globals_: list[str] = []
    storages = _Storages(path, "data/")
    data = _member_bytes(path, stream, pickle_record, size, MAX_PICKLE_BYTES, where)
    result = load_torch_pickle(data, path, storages, limits)
    globals_ += result.globals
    kind = "zip"
    constants: Any = None
    refs = dict(storages.refs)
    constants_record = by_name.get(folder + "constants.pkl")
    if constants_record is not None or any(n.startswith(folder + "code/") for n in by_name):
        kind = "torchscript"
    if constants_record is not None:
        constant_storages = _Storages(path, "constants/")
        raw = _member_bytes(path, stream, constants_record, size, MAX_PICKLE_BYTES, where)
        constants_result = load_torch_pickle(raw, path, constant_storages, limits)
        constants = constants_result.value
        globals_ += constants_result.globals
        refs.update(constant_storages.refs)
    spans = {
        key: _zip_span(path, by_name.get(folder + key), ref, where) for key, ref in refs.items()
    }
    return TorchArchive(path, kind, result.value, spans, globals_, constants, list(by_name))


def _data_start(path: Path, stream: Any, record: zipfile.ZipInfo, size: int) -> int:
    stream.seek(record.header_offset)
    header = stream.read(_LOCAL_HEADER.size)
    if len(header) != _LOCAL_HEADER.size or header[:4] != ZIP_MAGIC:
        raise CheckpointError(path, f"zip record {record.filename} has no local header")
    fields = _LOCAL_HEADER.unpack(header)
    start = int(record.header_offset + _LOCAL_HEADER.size + fields[9] + fields[10])
    if start + record.file_size > size:
        raise CheckpointError(
            path, f"zip record {record.filename} runs past the end of the file ({size:,} bytes)"
        )
    return start


def _member_bytes(
    path: Path, stream: Any, record: zipfile.ZipInfo, size: int, limit: int, where: Locator
) -> bytes:
    if record.file_size > min(limit, size) and record.compress_type == zipfile.ZIP_STORED:
        raise CheckpointError(path, f"{record.filename} is {record.file_size:,} bytes: too large")
    if record.compress_type != zipfile.ZIP_STORED:
        if record.file_size > limit:
            raise CheckpointError(
                path, f"{record.filename} is {record.file_size:,} bytes: too large"
            )
        raise CheckpointError(path, f"{record.filename} is compressed: torch archives never are")
    start = where.member(record)
    stream.seek(start)
    data: bytes = stream.read(record.file_size)
    if len(data) != record.file_size:
        raise CheckpointError(path, f"file ends inside {record.filename}")
    return data


def _zip_span(
    path: Path,
    record: zipfile.ZipInfo | None,
    ref: rebuild.StorageRef,
    where: Locator,
) -> StorageSpan:
    if record is None:
        raise CheckpointError(path, f"storage {ref.key} is missing from the archive")
    if record.compress_type != zipfile.ZIP_STORED:
        raise CheckpointError(path, f"storage {ref.key} is compressed: torch archives never are")
    needed = _storage_bytes(ref)
    if needed > record.file_size:
        raise CheckpointError(
            path,
            f"storage {ref.key} declares {needed:,} bytes but the archive holds "
            f"{record.file_size:,}",
        )
    start = where.storage(record)
    return StorageSpan(ref.key, ref.dtype, ref.numel, start, needed)


def _storage_bytes(ref: rebuild.StorageRef) -> int:
    return (ref.numel * BITS_PER_ELEMENT.get(ref.dtype, 8) + 7) // 8


# -- legacy -------------------------------------------------------------------------------


def _read_legacy(path: Path, data: Any, size: int, limits: PickleLimits) -> TorchArchive:
    view = memoryview(data)
    try:
        return _read_legacy_view(path, view, size, limits)
    finally:
        view.release()


def _read_legacy_view(
    path: Path, view: memoryview, size: int, limits: PickleLimits
) -> TorchArchive:
    """``view`` is the file, or (listing a remote file) only its first ``len(view)`` bytes.

    A storage's element count is read from the file where ``view`` holds it; past the
    prefix it is taken from the pickle, and then the storages must end exactly at the
    end of the file, as torch writes them, or the file is refused.
    """
    if size < 2 or view[0] != 0x80:
        raise CheckpointError(path, "not a PyTorch file (no pickle or zip archive at its start)")
    globals_: list[str] = []
    magic = load_torch_pickle(view, path, None, limits)
    globals_ += magic.globals
    if magic.value != LEGACY_MAGIC_NUMBER:
        # torch.load refuses it too ("Invalid magic number"): a plain pickle, not a checkpoint.
        raise CheckpointError(
            path, "a plain pickle, not a PyTorch checkpoint (no torch magic number)"
        )
    protocol = load_torch_pickle(view, path, None, limits, magic.end)
    if protocol.value != LEGACY_PROTOCOL_VERSION:
        raise CheckpointError(path, f"unsupported legacy protocol version {protocol.value!r}")
    sys_info = load_torch_pickle(view, path, None, limits, protocol.end)
    if isinstance(sys_info.value, dict) and sys_info.value.get("little_endian") is False:
        raise CheckpointError(path, "big-endian checkpoint: not supported")
    storages = _Storages(path)
    main = load_torch_pickle(view, path, storages, limits, sys_info.end)
    globals_ += main.globals
    keys = load_torch_pickle(view, path, None, limits, main.end)
    globals_ += keys.globals
    if not isinstance(keys.value, list) or not all(isinstance(k, str) for k in keys.value):
        raise CheckpointError(path, "malformed storage key list")
    spans: dict[str, StorageSpan] = {}
    position = keys.end
    assumed = False
    for key in keys.value:
        ref = storages.refs.get(key)
        if ref is None:
            raise CheckpointError(path, f"storage {key} is listed but never used")
        if position + 8 > size:
            raise CheckpointError(path, f"file ends before storage {key}")
        if position + 8 <= len(view):
            (numel,) = struct.unpack_from("<q", view, position)
        else:
            numel, assumed = ref.numel, True
        needed = _storage_bytes(ref)
        record_bytes = (numel * BITS_PER_ELEMENT.get(ref.dtype, 8) + 7) // 8
        if numel < ref.numel or position + 8 + record_bytes > size:
            raise CheckpointError(
                path,
                f"storage {key} declares {needed:,} bytes but the file holds "
                f"{max(0, min(record_bytes, size - position - 8)):,}",
            )
        spans[key] = StorageSpan(key, ref.dtype, ref.numel, position + 8, needed)
        position += 8 + record_bytes
    if assumed and position != size:
        raise CheckpointError(
            path,
            f"legacy storages add up to {position:,} bytes, not the file's {size:,}: "
            "they cannot be located from the pickle alone",
        )
    missing = set(storages.refs) - set(spans)
    if missing:
        raise CheckpointError(path, f"storage {sorted(missing)[0]} has no data in the file")
    return TorchArchive(path, "legacy", main.value, spans, globals_)


def read_torch_stream(
    path: Path,
    stream: Any,
    size: int,
    limits: PickleLimits = DEFAULT_LIMITS,
    locator: Any = LocalHeaders,
) -> TorchArchive:
    """A torch zip archive held in ``stream`` (e.g. one DCP chunk cut out of a rank file).

    ``path`` names the file in errors; storage offsets are positions in ``stream``.
    ``locator`` says how storages are located (``LocalHeaders``: exactly, by their headers).
    """
    if not is_zip(stream.read(4)):
        raise CheckpointError(path, "chunk is not a torch zip archive")
    stream.seek(0)
    return _read_zip(path, stream, size, limits, locator)


def read_legacy_prefix(
    path: Path, prefix: bytes, size: int, limits: PickleLimits = DEFAULT_LIMITS
) -> TorchArchive:
    """A legacy torch file of ``size`` bytes from its first ``len(prefix)`` bytes alone."""
    return _read_legacy(path, prefix, size, limits)
