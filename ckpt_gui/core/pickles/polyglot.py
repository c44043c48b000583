"""Would torch.load unpickle a file that parses as safetensors? Walked as torch would.

torch picks zip or legacy by the first bytes, so any file not starting with
``PK`` goes to its legacy path, which unpickles from byte 0. A real
safetensors file fails there within its first bytes (its 8-byte header length
is mostly zero bytes, which are no opcode). A crafted one can be both: valid
safetensors and a pickle naming ``os.system``. Both ``inspect`` and
``pickle-risk`` ask this module before calling a file "safetensors".

The walk is bounded: the header, then up to ``SLACK`` more bytes. A walk still
going at that point (or declaring a length that the file could hold beyond
it) cannot be judged from those bytes, and is reported so.
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass, field
from pathlib import Path

from ckpt_gui.core.pickles.opcodes import walk_globals

SLACK = 1 << 20
_DECLARED = re.compile(r"expected (\d+) bytes")


@dataclass
class LegacyWalk:
    """What torch's legacy path would meet: the globals named, and whether the walk ended."""

    globals: list[str] = field(default_factory=list)
    judged: bool = True
    limit: int = 0


def walk_as_torch(path: Path, header_length: int, size: int) -> LegacyWalk:
    """Walk ``path`` as a pickle from byte 0, over its header first, then up to ``SLACK`` more."""
    first = 8 + min(max(header_length, 0), 100_000_000)
    result = LegacyWalk(limit=first)
    for limit in (first, first + SLACK):
        result = LegacyWalk(limit=limit)
        if _walk_prefix(path, min(limit, size), size, result):
            return result
        if limit >= size:
            break
    result.judged = False
    return result


def _walk_prefix(path: Path, limit: int, size: int, result: LegacyWalk) -> bool:
    """True when the walk ended inside the first ``limit`` bytes (or the file ends there)."""
    with path.open("rb") as stream:
        data = stream.read(limit)
    buffer = io.BytesIO(data)
    try:
        walk_globals(buffer, result.globals)
    except EOFError:
        return limit >= size
    except (ValueError, UnicodeDecodeError, IndexError, KeyError) as exc:
        if limit >= size or buffer.tell() < len(data):
            return True  # torch's unpickler fails here too
        # A declared length no file this size can hold: torch fails too. Otherwise the
        # walk ran off the bytes read, and the rest of the file decides.
        declared = _DECLARED.search(str(exc))
        return declared is not None and int(declared.group(1)) > size
    return True


def refuse_if_torch_would_unpickle(path: Path, head: bytes, size: int) -> None:
    """A file torch.load would unpickle is never called safetensors, alone or as a shard."""
    from ckpt_gui.core.errors import CheckpointError, UnsafePickleError
    from ckpt_gui.core.pickles.groups import CODE, classify

    walk = walk_as_torch(path, int.from_bytes(head[:8], "little"), size)
    names = list(dict.fromkeys(walk.globals))
    dangers = [n for n in names if classify(n).group == CODE]
    if dangers:
        raise UnsafePickleError(path, dangers)
    if names:
        raise CheckpointError(
            path, f"parses as safetensors, but torch.load would unpickle it (names {names[0]})"
        )
    if not walk.judged:
        raise CheckpointError(
            path, "parses as safetensors, but torch.load would unpickle it: cannot be judged"
        )
