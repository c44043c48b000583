"""Read a GGUF header with ``gguf.GGUFReader`` and check it against the file.

``GGUFReader`` parses the key/value fields and the tensor table; what it does not
do is say, in words, what is wrong with a damaged file (it fails with an
IndexError or a numpy reshape error). ``_CheckedReader`` therefore bounds every
read to the file's end and replaces the reader's tensor binding (which maps each
tensor's data into a numpy view) with a check of type, size and offset against
the file; the data itself is read later, chunk by chunk (``gguf.values``).

``header_only=True`` accepts a prefix of a file (the Hub reads only the first
megabytes): tensor data past the end is then expected, not an error.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ckpt_gui.core.errors import CheckpointError

GGUF_MAGIC = b"GGUF"


@dataclass(frozen=True)
class GGUFTensor:
    """One entry of the tensor table; ``shape`` in PyTorch order (ggml's reversed)."""

    name: str
    type_name: str  # ggml's spelling: F32, F16, BF16, Q8_0, Q4_K ...
    shape: tuple[int, ...]
    elements: int
    nbytes: int
    offset: int  # absolute, in the file
    file: str = ""  # the split file holding it, relative to the root ("" : the one opened)


@dataclass(frozen=True)
class GGUFHeader:
    version: int
    fields: dict[str, Any]  # key -> Python value (strings decoded, arrays as lists)
    field_types: dict[str, str]  # key -> gguf value type name ("UINT32", "ARRAY[STRING]")
    tensors: tuple[GGUFTensor, ...]
    alignment: int
    data_offset: int
    file_size: int


class _PastEnd(Exception):
    def __init__(self, end: int) -> None:
        self.end = end


class HeaderPastEnd(CheckpointError):
    """The header runs past the bytes given (for a prefix of a remote file: fetch more)."""


def read_header(
    path: Path, display: str | None = None, header_only: bool = False, file_size: int | None = None
) -> GGUFHeader:
    """Parse ``path``'s header; every problem is a one-line CheckpointError naming it.

    ``header_only``: ``path`` holds the first bytes of a file of ``file_size`` bytes.
    """
    name = display or str(path)
    try:
        size = path.stat().st_size
        with path.open("rb") as stream:
            head = stream.read(8)
    except OSError as exc:
        raise CheckpointError(name, exc.strerror or str(exc)) from None
    if len(head) < 4 or head[:4] != GGUF_MAGIC:
        raise CheckpointError(name, f"not a GGUF file (starts with {head[:4]!r}, not b'GGUF')")
    if len(head) < 8:
        raise CheckpointError(name, f"file is {size} bytes, too short for a GGUF header")
    total = file_size if header_only and file_size is not None else size
    try:
        reader = _CheckedReader(path, header_only, total)
    except CheckpointError as exc:
        raise CheckpointError(name, exc.problem) from None
    except _PastEnd as exc:
        raise HeaderPastEnd(
            name,
            f"file ends at byte {size:,} inside the GGUF header (needs at least {exc.end:,} bytes)",
        ) from None
    except KeyError as exc:
        raise CheckpointError(name, f"GGUF header has a duplicate key: {exc.args[0]}") from None
    except (ValueError, OverflowError, UnicodeDecodeError, MemoryError) as exc:
        raise CheckpointError(name, _reader_problem(exc)) from None
    try:
        fields = {key: _field_value(f) for key, f in reader.fields.items()}
        field_types = {key: _type_name(f) for key, f in reader.fields.items()}
    except (ValueError, UnicodeDecodeError) as exc:
        raise CheckpointError(name, f"GGUF metadata cannot be decoded: {exc}") from None
    header = GGUFHeader(
        version=int(fields.get("GGUF.version", 0)),
        fields=fields,
        field_types=field_types,
        tensors=tuple(reader.checked_tensors),
        alignment=int(reader.alignment),
        data_offset=int(reader.data_offset),
        file_size=total,
    )
    del reader  # drops the memory map
    return header


def _reader_problem(exc: BaseException) -> str:
    text = str(exc)
    if "version" in text:
        return (
            f"unsupported GGUF version ({text.split('version')[-1].split()[0]}; gguf reads 2 and 3)"
        )
    if "is not a valid GGUFValueType" in text:
        return f"GGUF metadata has an unknown value type ({text.split()[0]})"
    return f"GGUF header is damaged ({' '.join(text.split())[:200]})"


def _make_checked_reader() -> type:
    from gguf import GGML_QUANT_SIZES, GGMLQuantizationType, GGUFReader

    class CheckedReader(GGUFReader):
        def __init__(self, path: Path, header_only: bool, total: int) -> None:
            self.header_only = header_only
            self.total = total
            self.checked_tensors: list[GGUFTensor] = []
            super().__init__(path, "r")

        def _get(self, offset: int, dtype: Any, count: int = 1, override_order: Any = None) -> Any:
            end = int(offset) + int(np.dtype(dtype).itemsize) * int(count)
            if end > len(self.data):
                raise _PastEnd(end)
            return super()._get(offset, dtype, count, override_order)

        def _build_tensors(self, start_offs: int, fields: list[Any]) -> None:
            size = self.total
            seen: set[str] = set()
            for field in fields:
                _len, name_data, _ndims, dims, raw_type, relative = field.parts
                name = bytes(name_data).decode("utf-8", errors="replace")
                if name in seen:
                    raise CheckpointError("", f"tensor '{name}' appears twice in the GGUF header")
                seen.add(name)
                try:
                    qtype = GGMLQuantizationType(int(raw_type[0]))
                except ValueError:
                    raise CheckpointError(
                        "", f"tensor '{name}' has unknown quantization type {int(raw_type[0])}"
                    ) from None
                block, type_size = GGML_QUANT_SIZES[qtype]
                ggml_dims = [int(d) for d in dims.tolist()]
                elements = math.prod(ggml_dims)
                if ggml_dims and ggml_dims[0] % block:
                    raise CheckpointError(
                        "",
                        f"tensor '{name}': {qtype.name} needs rows of a multiple of {block} "
                        f"values, the header says {ggml_dims[0]}",
                    )
                nbytes = elements // block * type_size
                offset = int(start_offs) + int(relative[0])
                if int(relative[0]) % self.alignment:
                    raise CheckpointError(
                        "", f"tensor '{name}' data offset {int(relative[0]):,} is not aligned"
                    )
                if offset + nbytes > size:
                    raise CheckpointError(
                        "",
                        f"tensor '{name}' data ({nbytes:,} bytes at byte {offset:,}) runs past "
                        f"the end of the file ({size:,} bytes)",
                    )
                self.checked_tensors.append(
                    GGUFTensor(
                        name, qtype.name, tuple(reversed(ggml_dims)), elements, nbytes, offset
                    )
                )

    return CheckedReader


_CHECKED: type | None = None


def _CheckedReader(path: Path, header_only: bool, total: int) -> Any:
    global _CHECKED
    if _CHECKED is None:
        _CHECKED = _make_checked_reader()  # made on first use: gguf is imported lazily
    return _CHECKED(path, header_only, total)


def _field_value(field: Any) -> Any:
    from gguf import GGUFValueType

    if not field.types:
        return None
    main = field.types[0]
    if main == GGUFValueType.ARRAY:
        sub = field.types[-1] if len(field.types) > 1 else None
        if sub == GGUFValueType.STRING:
            return [bytes(field.parts[i]).decode("utf-8", errors="replace") for i in field.data]
        if sub == GGUFValueType.ARRAY:
            return [f"<nested array of {int(field.parts[1][0])}>"]
        values: list[Any] = []
        for i in field.data:
            values.extend(field.parts[i].tolist())
        return values
    if main == GGUFValueType.STRING:
        return bytes(field.parts[-1]).decode("utf-8", errors="replace")
    value = field.parts[-1].tolist()[0]
    return value


def _type_name(field: Any) -> str:
    names = [str(t.name) for t in field.types]
    if not names:
        return ""
    if names[0] == "ARRAY" and len(names) > 1:
        return f"ARRAY[{names[-1]}]"
    return names[0]
