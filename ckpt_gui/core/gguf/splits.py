"""Split GGUF files (llama.cpp's gguf-split, ``convert_hf_to_gguf.py --split-max-*``).

A model split in N parts is N files ``NAME-00001-of-0000N.gguf`` ... ; each holds
``split.no`` (0-based), ``split.count`` (N) and ``split.tensors.count`` (the total),
the first also every other key/value field, and each its share of the tensors.
Opening any part opens the whole set: the fields of the first part, the tensors of
all parts (each knowing its file). A missing part, or parts that disagree with each
other or with their names, is a one-line error naming the part.
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

from ckpt_gui.core.errors import CheckpointError
from ckpt_gui.core.gguf.header import GGUFHeader, read_header

SPLIT_NO = "split.no"
SPLIT_COUNT = "split.count"
SPLIT_TENSORS = "split.tensors.count"
_NAME = re.compile(r"^(?P<stem>.+)-(?P<no>\d{5})-of-(?P<count>\d{5})\.gguf$")


def split_name(stem: str, number: int, count: int) -> str:
    """gguf's SHARD_NAME_FORMAT (``number`` 1-based)."""
    return f"{stem}-{number:05d}-of-{count:05d}.gguf"


def later_split_part(name: str) -> bool:
    """``NAME-0000k-of-0000n.gguf`` with k > 1: a part opened through the first."""
    match = _NAME.match(name)
    return match is not None and int(match["no"]) > 1


def read_gguf_set(
    path: Path, base: Path, display: str | None = None
) -> tuple[GGUFHeader, tuple[tuple[str, int], ...]]:
    """The header of ``path``'s model, all splits joined, and (relative name, size) per file."""
    name = display or str(path)
    header = read_header(path, name)
    relative = path.relative_to(base).as_posix()
    count = header.fields.get(SPLIT_COUNT)
    if not isinstance(count, int) or count <= 1:
        return header, ((relative, header.file_size),)
    match = _NAME.match(path.name)
    if match is None or int(match["count"]) != count:
        raise CheckpointError(
            name,
            f"GGUF split {_number(header)} of {count}, but the file name does not follow "
            f"NAME-{1:05d}-of-{count:05d}.gguf: the other parts cannot be found",
        )
    headers: list[GGUFHeader] = []
    files: list[tuple[str, int]] = []
    for number in range(1, count + 1):
        part = path.with_name(split_name(match["stem"], number, count))
        if not part.is_file():
            raise CheckpointError(name, f"GGUF split {number} of {count} is missing ({part.name})")
        part_header = header if part == path else read_header(part, str(part))
        if part_header.fields.get(SPLIT_NO) != number - 1:
            raise CheckpointError(
                part,
                f"GGUF split file says it is part {_number(part_header)}, "
                f"its name says {number} of {count}",
            )
        if part_header.fields.get(SPLIT_COUNT) != count:
            raise CheckpointError(
                part,
                f"GGUF split count {part_header.fields.get(SPLIT_COUNT)} differs from the "
                f"{count} of {path.name}",
            )
        part_relative = part.relative_to(base).as_posix()
        headers.append(part_header)
        files.append((part_relative, part_header.file_size))
    return _joined(headers, files, count, name), tuple(files)


def _joined(
    headers: list[GGUFHeader], files: list[tuple[str, int]], count: int, name: str
) -> GGUFHeader:
    first = headers[0]
    tensors = []
    seen: dict[str, str] = {}
    for header, (relative, _size) in zip(headers, files, strict=True):
        for tensor in header.tensors:
            if tensor.name in seen:
                raise CheckpointError(
                    name, f"tensor '{tensor.name}' is in both {seen[tensor.name]} and {relative}"
                )
            seen[tensor.name] = relative
            tensors.append(dataclasses.replace(tensor, file=relative))
    expected = first.fields.get(SPLIT_TENSORS)
    if isinstance(expected, int) and expected != len(tensors):
        raise CheckpointError(
            name,
            f"GGUF splits hold {len(tensors)} tensors, split.tensors.count says {expected}",
        )
    return dataclasses.replace(first, tensors=tuple(tensors))


def _number(header: GGUFHeader) -> str:
    number = header.fields.get(SPLIT_NO)
    return str(number + 1) if isinstance(number, int) else "?"
