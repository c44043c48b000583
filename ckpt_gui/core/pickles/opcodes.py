"""List the globals a pickle would import, without executing it.

The opcode stream is walked with ``pickletools.genops`` and a symbolic stack:
only the strings a pickle pushes are tracked (through the memo, ``DUP`` and
marks), which is what ``STACK_GLOBAL`` needs to name its module and attribute.
Nothing is unpickled. This walk keeps going where the full reader
(``unpickler.py``) must stop, so that pickle-risk can list every global a
malformed or hostile file names. Files are read as ``torch.load`` reads them:
zip or legacy by the first bytes, zip records in the archive's own order.
"""

from __future__ import annotations

import _compat_pickle
import io
import pickletools
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from ckpt_gui.core.errors import CheckpointError
from ckpt_gui.core.pickles.groups import classify, reason_for

__all__ = ["classify", "globals_in_pickle", "refusal_reason", "scan_file", "scan_pickle_file"]

UNRESOLVED = "<unresolved>"

# The legacy (non-zip) torch format is a sequence of pickles: magic number,
# protocol version, sys info, the object, storage keys; raw data follows.
_LEGACY_PICKLE_COUNT = 5
# Any sane state-dict pickle is far smaller; bound the work a hostile one can cause.
_MAX_PICKLE_BYTES = 512 * 1024 * 1024
_STRING_OPS = frozenset(
    {
        "SHORT_BINUNICODE",
        "BINUNICODE",
        "BINUNICODE8",
        "UNICODE",
        # Python 2 strings: the default unpickler decodes them to str (ASCII).
        "STRING",
        "BINSTRING",
        "SHORT_BINSTRING",
    }
)
_MARK = object()
_OTHER = object()  # any value that is not a string: its content does not matter here


@dataclass
class PickleScan:
    """The globals of one file's pickles, and what stopped the walk early, if anything."""

    globals: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def globals_in_pickle(stream: IO[bytes]) -> list[str]:
    """Names (``module.qualname``) of every global one pickle imports, in order.

    Raises ValueError/EOFError on a malformed pickle (from ``pickletools``).
    """
    found: list[str] = []
    _walk(stream, found)
    return found


def refusal_reason(name: str) -> str:
    """Why the weights-only loader refuses ``name``, in words a user can act on."""
    from ckpt_gui.core.pickles.groups import group_of

    return reason_for(name, group_of(name)) or "not on the weights-only allow list"


def walk_globals(stream: IO[bytes], found: list[str]) -> None:
    """Walk one pickle to its STOP, appending every global met to ``found`` (see ``_walk``)."""
    _walk(stream, found)


def _walk(stream: IO[bytes], found: list[str]) -> None:
    """Walk one pickle to its STOP, appending every global to ``found`` as it is met.

    ``found`` is filled in place so that a caller still sees the globals met
    before a malformed or truncated part (a real unpickler would have imported
    those already).
    """
    stack: list[Any] = []
    memo: dict[int, Any] = {}
    protocol = 0
    for opcode, arg, _ in pickletools.genops(stream):
        name = opcode.name
        if name == "PROTO":
            protocol = _int_arg(arg)
        if name in _STRING_OPS:
            stack.append(arg if isinstance(arg, str) else _OTHER)
            continue
        if name in ("GLOBAL", "INST"):
            module, _, qualname = str(arg).partition(" ")
            found.append(_python3_name(module, qualname, protocol))
        elif name == "STACK_GLOBAL":
            attribute: Any = stack.pop() if stack else _OTHER
            owner: Any = stack.pop() if stack else _OTHER
            if isinstance(owner, str) and isinstance(attribute, str):
                found.append(_python3_name(owner, attribute, protocol))
            else:
                found.append(f"{UNRESOLVED}.{UNRESOLVED}")
            stack.append(_OTHER)
            continue
        elif name in ("EXT1", "EXT2", "EXT4"):
            found.append(f"<extension {arg}>.copyreg")
        elif name in ("PUT", "BINPUT", "LONG_BINPUT"):
            memo[_int_arg(arg)] = stack[-1] if stack else _OTHER
            continue
        elif name == "MEMOIZE":
            memo[len(memo)] = stack[-1] if stack else _OTHER
            continue
        elif name in ("GET", "BINGET", "LONG_BINGET"):
            stack.append(memo.get(_int_arg(arg), _OTHER))
            continue
        elif name == "DUP":
            stack.append(stack[-1] if stack else _OTHER)
            continue
        elif name == "STOP":
            return
        _apply_stack_effect(opcode, stack)


def _python3_name(module: str, qualname: str, protocol: int) -> str:
    """The name the unpickler really imports: below protocol 3 it maps Python 2 names
    (``__builtin__.eval`` is ``builtins.eval``), as the standard unpickler's ``fix_imports`` does."""
    if protocol < 3:
        module, qualname = _compat_pickle.NAME_MAPPING.get((module, qualname), (module, qualname))
        module = _compat_pickle.IMPORT_MAPPING.get(module, module)
    return f"{module}.{qualname}"


def _int_arg(arg: Any) -> int:
    return int(arg)


def _apply_stack_effect(opcode: pickletools.OpcodeInfo, stack: list[Any]) -> None:
    before = opcode.stack_before
    if pickletools.markobject in before:
        while stack and stack.pop() is not _MARK:
            pass
        # Fixed operands sit below the mark (APPENDS: list, mark, items...).
        fixed = before.index(pickletools.markobject)
    else:
        fixed = len(before)
    del stack[len(stack) - min(fixed, len(stack)) :]
    for item in opcode.stack_after:
        stack.append(_MARK if item is pickletools.markobject else _OTHER)


def scan_pickle_file(path: Path) -> PickleScan:
    """Globals imported by a torch checkpoint's pickles (zip or legacy format).

    A problem met after some globals were found is reported in ``problems``
    (the globals found so far are kept); a file that yields nothing raises
    CheckpointError.
    """
    try:
        with path.open("rb") as stream:
            return scan_pickle_stream(path, stream, path.stat().st_size)
    except OSError as exc:
        raise CheckpointError(path, f"corrupted pickle data ({exc})") from None


def scan_pickle_stream(path: Path, stream: Any, size: int) -> PickleScan:
    """``scan_pickle_file`` over an open, seekable binary stream (``path`` names it in errors)."""
    result = PickleScan()
    try:
        head = stream.read(4)
        stream.seek(0)
        # torch's choice: the first bytes, not zipfile.is_zipfile (which looks at the end).
        if head.startswith(b"PK\x03\x04"):
            _scan_zip(path, stream, result)
        else:
            _scan_legacy(stream, size, path, result)
    except CheckpointError:
        raise
    except (ValueError, EOFError, zipfile.BadZipFile, OSError, UnicodeDecodeError) as exc:
        problem = f"corrupted pickle data ({' '.join(str(exc).split())[:200]})"
        if not result.globals:
            raise CheckpointError(path, problem) from None
        result.problems.append(problem)
    result.globals = _unique(result.globals)
    return result


def _scan_zip(path: Path, stream: Any, result: PickleScan) -> None:
    with zipfile.ZipFile(stream) as archive:
        # torch reads <folder>/data.pkl (the first record of that name); every pickle
        # record in the archive is walked, duplicates included, so that nothing a
        # different loader might read goes unchecked.
        records = [r for r in archive.infolist() if r.filename.endswith(".pkl")]
        if not any(r.filename.endswith("data.pkl") for r in records):
            raise CheckpointError(path, "zip archive has no data.pkl: not a torch checkpoint")
        for record in records:
            if record.file_size > _MAX_PICKLE_BYTES:
                raise CheckpointError(
                    path, f"{record.filename} is {record.file_size:,} bytes: too large for a pickle"
                )
            _walk(io.BytesIO(archive.read(record)), result.globals)


def _scan_legacy(stream: Any, size: int, path: Path, result: PickleScan) -> None:
    for index in range(_LEGACY_PICKLE_COUNT):
        if index > 0 and stream.tell() >= size:
            break  # a plain pickle, not torch's legacy sequence: all of it was read
        if stream.tell() > _MAX_PICKLE_BYTES:
            raise CheckpointError(path, "pickle data is too large")
        _walk(stream, result.globals)


def scan_file(path: Path) -> list[str]:
    """Globals of a torch checkpoint's pickles; a malformed pickle raises CheckpointError."""
    scanned = scan_pickle_file(path)
    if scanned.problems:
        raise CheckpointError(path, scanned.problems[0])
    return scanned.globals


def weights_only_allowed_names() -> frozenset[str]:
    """The globals torch's weights-only unpickler accepts (needs torch)."""
    from torch import _weights_only_unpickler as unpickler

    names = set(unpickler._get_allowed_globals())
    names |= set(unpickler._get_user_allowed_globals())  # type: ignore[no-untyped-call]
    return frozenset(names)


def _unique(names: list[str]) -> list[str]:
    return list(dict.fromkeys(names))
