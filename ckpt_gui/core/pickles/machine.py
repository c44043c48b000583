"""The interpreter's state and its bounded reads; opcodes live in ``ops_*.py``.

Every length a pickle declares is checked against the bytes present before it
is read, and every push against ``PickleLimits``: see ``unpickler.py``.
"""

from __future__ import annotations

import _compat_pickle
import struct
from collections.abc import Callable
from typing import Any

from ckpt_gui.core.errors import CheckpointError
from ckpt_gui.core.pickles.objects import (
    UNRESOLVED,
    Builder,
    Global,
    PersistentLoad,
    PersistentRef,
    PickledObject,
    PickleLimits,
    Reconstruct,
)

STOP = ord(".")


class _Mark:
    __slots__ = ()


_MARK = _Mark()


class Machine:
    def __init__(
        self,
        data: Any,
        name: str,
        start: int,
        persistent_load: PersistentLoad | None,
        reconstruct: Reconstruct | None,
        build: Builder | None,
        limits: PickleLimits,
    ) -> None:
        # A memoryview of a memory-mapped file is released in ``close`` so the map can close.
        self.data: Any = data if isinstance(data, bytes) else memoryview(data).cast("B")
        self.size = len(self.data)
        self.name = name
        self.pos = start
        self.persistent_load = persistent_load or PersistentRef
        self.reconstruct = reconstruct
        self.build = build
        self.limits = limits
        self.stack: list[Any] = []
        self.marks: list[list[Any]] = []
        self.memo: dict[int, Any] = {}
        self.objects = 0
        self.protocol = 0
        self.globals: list[str] = []

    def close(self) -> None:
        if isinstance(self.data, memoryview):
            self.data.release()
        self.data = b""

    # -- low-level reading, every length checked against the bytes present ----------------

    def fail(self, problem: str) -> CheckpointError:
        return CheckpointError(self.name, f"corrupted pickle data at byte {self.pos:,}: {problem}")

    def read(self, count: int) -> bytes:
        if count < 0 or self.pos + count > self.size:
            raise self.fail(
                f"declares {count:,} bytes but only {max(self.size - self.pos, 0):,} remain"
            )
        chunk = bytes(self.data[self.pos : self.pos + count])
        self.pos += count
        return chunk

    def read_line(self) -> bytes:
        end = _find_newline(self.data, self.pos, self.size)
        if end < 0:
            raise self.fail("line without end")
        line = bytes(self.data[self.pos : end])
        self.pos = end + 1
        return line

    def unpack(self, fmt: str, count: int) -> Any:
        value: Any = struct.unpack(fmt, self.read(count))[0]
        return value

    # -- stack -----------------------------------------------------------------------------

    def push(self, value: Any) -> None:
        self.objects += 1
        if self.objects > self.limits.max_objects:
            raise self.fail(f"more than {self.limits.max_objects:,} objects")
        if len(self.stack) >= self.limits.max_stack:
            raise self.fail(f"nesting deeper than {self.limits.max_stack:,} values")
        self.stack.append(value)

    def pop(self) -> Any:
        if not self.stack:
            raise self.fail("stack underflow")
        return self.stack.pop()

    def top(self) -> Any:
        if not self.stack:
            raise self.fail("stack underflow")
        return self.stack[-1]

    def pop_mark(self) -> list[Any]:
        if not self.marks:
            raise self.fail("no mark on the stack")
        items = self.stack
        self.stack = self.marks.pop()
        return items

    # -- the loop --------------------------------------------------------------------------

    def run(self) -> Any:
        handlers = HANDLERS
        while True:
            if self.pos >= self.size:
                raise self.fail("data ends before STOP")
            code = self.data[self.pos]
            self.pos += 1
            if code == STOP:
                return self.pop()
            handler = handlers.get(code)
            if handler is None:
                raise self.fail(f"unknown opcode 0x{code:02x}")
            handler(self)

    def remember(self, index: int) -> None:
        if index not in self.memo and len(self.memo) >= self.limits.max_memo:
            raise self.fail(f"memo holds more than {self.limits.max_memo:,} entries")
        self.memo[index] = self.top()

    def recall(self, index: int) -> None:
        try:
            value = self.memo[index]
        except KeyError:
            raise self.fail(f"memo entry {index} was never stored") from None
        self.push(value)

    def make_global(self, module: Any, qualname: Any) -> Global:
        if not isinstance(module, str) or not isinstance(qualname, str):
            self.globals.append(f"{UNRESOLVED}.{UNRESOLVED}")
            return Global(UNRESOLVED, UNRESOLVED)
        if self.protocol < 3:
            # What the standard unpickler's fix_imports really imports (__builtin__ -> builtins).
            module, qualname = _compat_pickle.NAME_MAPPING.get(
                (module, qualname), (module, qualname)
            )
            module = _compat_pickle.IMPORT_MAPPING.get(module, module)
        found = Global(module, qualname)
        self.globals.append(found.dotted)
        return found

    def call(self, target: Any, args: Any, kwargs: Any, how: str) -> Any:
        if not isinstance(args, tuple):
            args = (args,)
        name = target.dotted if isinstance(target, Global) else f"<call of {describe(target)}>"
        obj = PickledObject(
            name, target, args, dict(kwargs) if isinstance(kwargs, dict) else {}, how
        )
        return self.reconstruct(obj) if self.reconstruct is not None else obj

    def set_items(self, target: Any, pairs: list[Any]) -> None:
        if len(pairs) % 2:
            raise self.fail("odd number of items for a dict")
        if isinstance(target, dict):
            for i in range(0, len(pairs), 2):
                key = pairs[i]
                try:
                    target[key] = pairs[i + 1]
                except TypeError:
                    raise self.fail(f"unhashable dict key ({describe(key)})") from None
        elif isinstance(target, PickledObject):
            target.entries.extend(zip(pairs[::2], pairs[1::2], strict=True))
        else:
            raise self.fail(f"SETITEMS on a {describe(target)}")

    def append_items(self, target: Any, items: list[Any]) -> None:
        if isinstance(target, list):
            target.extend(items)
        elif isinstance(target, PickledObject):
            target.items.extend(items)
        else:
            raise self.fail(f"APPENDS on a {describe(target)}")


def describe(value: Any) -> str:
    if isinstance(value, PickledObject | Global):
        return repr(value)
    return type(value).__name__


def _find_newline(data: Any, start: int, size: int) -> int:
    if isinstance(data, bytes):
        return data.find(b"\n", start)
    # memoryview has no find(); look in bounded windows.
    pos = start
    while pos < size:
        window = bytes(data[pos : min(pos + 65536, size)])
        found = window.find(b"\n")
        if found >= 0:
            return pos + found
        pos += len(window)
    return -1


Handler = Callable[["Machine"], None]
HANDLERS: dict[int, Handler] = {}


def op(code: bytes) -> Callable[[Handler], Handler]:
    def register(handler: Handler) -> Handler:
        HANDLERS[code[0]] = handler
        return handler

    return register
