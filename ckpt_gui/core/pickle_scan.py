"""List the globals a pickle would import, without executing it.

The opcode stream is walked with ``pickletools.genops``; nothing is unpickled.
Each global is classified against torch's weights-only allow list so that the
user sees which imports a safe load refuses, and why.
"""

from __future__ import annotations

import _compat_pickle
import io
import pickletools
import zipfile
from pathlib import Path
from typing import IO

from ckpt_gui.core.errors import CheckpointError
from ckpt_gui.core.model import PickleGlobal

# Globals that are dangerous by themselves, with the reason shown to users.
_KNOWN_DANGERS: dict[str, str] = {
    "os.system": "runs a shell command",
    "posix.system": "runs a shell command (os.system)",
    "nt.system": "runs a shell command (os.system)",
    "subprocess.Popen": "starts a process",
    "subprocess.run": "starts a process",
    "subprocess.call": "starts a process",
    "subprocess.check_output": "starts a process",
    "builtins.eval": "evaluates Python code",
    "builtins.exec": "executes Python code",
    "builtins.compile": "compiles Python code",
    "builtins.__import__": "imports arbitrary modules",
    "builtins.getattr": "reaches arbitrary attributes",
    "builtins.open": "opens files",
    "runpy._run_code": "executes Python code",
    "webbrowser.open": "opens a browser",
    "shutil.rmtree": "deletes files",
}

# The legacy (non-zip) torch format is a sequence of pickles: magic number,
# protocol version, sys info, the object, storage keys; raw data follows.
_LEGACY_PICKLE_COUNT = 5
# Any sane state-dict pickle is far smaller; bound the work a hostile one can cause.
_MAX_PICKLE_BYTES = 512 * 1024 * 1024


def normalise(module: str, qualname: str) -> str:
    """Protocol-2 pickles use Python 2 names (``__builtin__.eval``); map them as the unpickler does."""
    if (module, qualname) in _compat_pickle.NAME_MAPPING:
        module, qualname = _compat_pickle.NAME_MAPPING[(module, qualname)]
    module = _compat_pickle.IMPORT_MAPPING.get(module, module)
    return f"{module}.{qualname}"


def classify(name: str, allowed_names: frozenset[str]) -> PickleGlobal:
    if name in allowed_names:
        return PickleGlobal(name, True, "")
    reason = _KNOWN_DANGERS.get(name)
    if reason is None:
        module = name.rsplit(".", 1)[0]
        reason = (
            "custom class or function: not on the weights-only allow list"
            if not module.startswith(("torch", "collections", "builtins", "numpy"))
            else "not on the weights-only allow list"
        )
    return PickleGlobal(name, False, reason)


def globals_in_pickle(stream: IO[bytes]) -> list[str]:
    """Names (``module.qualname``) of every global one pickle imports, in order."""
    found: list[str] = []
    recent_strings: list[str] = []
    memo: dict[int, str] = {}
    next_memo = 0
    for opcode, arg, _ in pickletools.genops(stream):
        name = opcode.name
        if name == "GLOBAL" or name == "INST":
            module, _, qualname = str(arg).partition(" ")
            found.append(normalise(module, qualname))
        elif name in ("SHORT_BINUNICODE", "BINUNICODE", "BINUNICODE8", "UNICODE"):
            recent_strings.append(str(arg))
        elif name == "MEMOIZE":
            if recent_strings:
                memo[next_memo] = recent_strings[-1]
            next_memo += 1
        elif name in ("BINPUT", "LONG_BINPUT", "PUT"):
            if recent_strings:
                memo[int(str(arg))] = recent_strings[-1]
        elif name in ("BINGET", "LONG_BINGET", "GET") and int(str(arg)) in memo:
            recent_strings.append(memo[int(str(arg))])
        elif name == "STACK_GLOBAL" and len(recent_strings) >= 2:
            found.append(normalise(recent_strings[-2], recent_strings[-1]))
        if name == "STOP":
            break
    return found


def scan_file(path: Path) -> list[str]:
    """Globals imported by a torch checkpoint's pickles (zip or legacy format)."""
    try:
        if zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as archive:
                members = [n for n in archive.namelist() if n.endswith("data.pkl")]
                if not members:
                    raise CheckpointError(
                        path, "zip archive has no data.pkl: not a torch checkpoint"
                    )
                info = archive.getinfo(members[0])
                if info.file_size > _MAX_PICKLE_BYTES:
                    raise CheckpointError(path, f"pickle is {info.file_size:,} bytes: too large")
                data = archive.read(members[0])
            return _unique(globals_in_pickle(io.BytesIO(data)))
        names: list[str] = []
        with path.open("rb") as stream:
            for _ in range(_LEGACY_PICKLE_COUNT):
                names.extend(globals_in_pickle(stream))
        return _unique(names)
    except CheckpointError:
        raise
    except (ValueError, EOFError, zipfile.BadZipFile, OSError, UnicodeDecodeError) as exc:
        raise CheckpointError(path, f"corrupted pickle data ({exc})") from None


def weights_only_allowed_names() -> frozenset[str]:
    """The globals torch's weights-only unpickler accepts (needs torch)."""
    from torch import _weights_only_unpickler as unpickler

    names = set(unpickler._get_allowed_globals())
    names |= set(unpickler._get_user_allowed_globals())  # type: ignore[no-untyped-call]
    return frozenset(names)


def _unique(names: list[str]) -> list[str]:
    return list(dict.fromkeys(names))
