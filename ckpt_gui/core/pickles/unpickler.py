"""A pickle interpreter that never imports or calls anything the pickle names.

Why our own: ``pickle.Unpickler`` with a ``find_class`` override still calls
whatever ``find_class`` returns (REDUCE, NEWOBJ, BUILD run ``__setstate__``),
and torch's weights-only unpickler refuses whole-model saves outright. This
module walks the opcodes itself and builds inert values:

- a global (``GLOBAL``/``STACK_GLOBAL``/``INST``) becomes a ``Global`` that
  only records its dotted name;
- calling one (``REDUCE``, ``NEWOBJ``, ``NEWOBJ_EX``, ``OBJ``, ``INST``) becomes
  a ``PickledObject`` recording the name, the arguments, and later its
  ``BUILD`` state, ``APPENDS`` items and ``SETITEMS`` entries;
- a persistent id (``BINPERSID``) is handed to ``persistent_load`` (default:
  ``PersistentRef``), which is how torch refers to tensor storages.

A few well-known reconstructions are understood as *data* (see
``reconstruct.py``): torch tensors and parameters become ``TensorRef``
(storage key, dtype, offset, shape, stride; never the bytes), ``torch.Size`` a
tuple, ``OrderedDict``/``defaultdict`` a dict, numpy arrays, scalars and dtypes
real numpy values built from the bytes in the pickle.

Everything a pickle declares is bounded by ``PickleLimits`` and the bytes
actually present: a declared length past the end of the data, too many
objects, too deep a nesting or too large a memo stop the walk with one
``CheckpointError`` naming the file and the problem.

API (used by ``archive.py`` for torch files, and by DCP/DeepSpeed readers for
their plain pickles)::

    result = load_pickle(data, name="model.bin")          # bytes, memoryview or mmap
    result.value       # the unpickled object graph (inert)
    result.end         # offset just past STOP (legacy torch files hold several pickles)
    result.globals     # every global the pickle names, in order of appearance
"""

from __future__ import annotations

import _compat_pickle
import codecs
import struct
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ckpt_gui.core.errors import CheckpointError

UNRESOLVED = "<unresolved>"


@dataclass(frozen=True)
class PickleLimits:
    """Hard bounds on what one pickle may make us build (far above any real checkpoint)."""

    max_objects: int = 2_000_000
    max_stack: int = 200_000
    max_marks: int = 10_000
    max_memo: int = 2_000_000
    max_int_bytes: int = 256


DEFAULT_LIMITS = PickleLimits()


@dataclass(eq=False)
class Global:
    """A name the pickle would import (``module.qualname``); never imported."""

    module: str
    qualname: str

    @property
    def dotted(self) -> str:
        return f"{self.module}.{self.qualname}"

    @property
    def short(self) -> str:
        return self.qualname.rsplit(".", 1)[-1]

    def __repr__(self) -> str:
        return self.dotted


@dataclass(eq=False)
class PickledObject:
    """What calling ``callable`` with ``args`` would have produced; nothing was called.

    ``name`` is the callable's dotted name (``argparse.Namespace``); ``how`` the
    opcode that made it ("reduce", "newobj", "inst"). ``state`` is what BUILD
    would pass to ``__setstate__`` (usually the object's ``__dict__``); ``items``
    and ``entries`` collect APPENDS and SETITEMS aimed at the object.
    """

    name: str
    callable: Any
    args: tuple[Any, ...] = ()
    kwargs: dict[Any, Any] = field(default_factory=dict)
    how: str = "reduce"
    state: Any = None
    items: list[Any] = field(default_factory=list)
    entries: list[tuple[Any, Any]] = field(default_factory=list)

    @property
    def short(self) -> str:
        return self.name.rsplit(".", 1)[-1]

    @property
    def attributes(self) -> dict[str, Any]:
        """The object's attributes as BUILD would set them (a dict state, or its first half)."""
        state = self.state
        if isinstance(state, tuple) and len(state) == 2 and isinstance(state[0], dict | None):
            merged = dict(state[0] or {})
            if isinstance(state[1], dict):
                merged.update(state[1])
            state = merged
        if isinstance(state, dict):
            return {str(k): v for k, v in state.items()}
        return {}

    def __repr__(self) -> str:
        return f"<{self.name}>"


@dataclass(frozen=True, eq=False)
class PersistentRef:
    """A persistent id the pickle refers to (``persistent_load`` decides what it means)."""

    pid: Any


@dataclass
class PickleResult:
    value: Any
    end: int
    globals: list[str]


PersistentLoad = Callable[[Any], Any]
Reconstruct = Callable[["PickledObject"], Any]
Builder = Callable[[Any, Any], bool]


class _Mark:
    __slots__ = ()


_MARK = _Mark()


def load_pickle(
    data: bytes | bytearray | memoryview | Any,
    *,
    name: str = "pickle",
    start: int = 0,
    persistent_load: PersistentLoad | None = None,
    reconstruct: Reconstruct | None = None,
    build: Builder | None = None,
    limits: PickleLimits = DEFAULT_LIMITS,
) -> PickleResult:
    """Interpret one pickle in ``data`` from ``start`` to its STOP, running nothing.

    ``reconstruct(obj)`` may turn a fresh ``PickledObject`` into a plain value
    (return the object unchanged otherwise); ``build(target, state)`` may
    apply a BUILD to a known value and return True. ``reconstruct.py`` provides
    the torch/numpy ones; ``archive.load_torch_pickle`` wires them up.
    """
    machine = _Machine(data, name, start, persistent_load, reconstruct, build, limits)
    value = machine.run()
    return PickleResult(value, machine.pos, machine.globals)


class _Machine:
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
        self.data = memoryview(data).cast("B") if not isinstance(data, bytes) else data
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

    # -- low-level reading, every length checked against the bytes present ----------------

    def fail(self, problem: str) -> CheckpointError:
        return CheckpointError(self.name, f"malformed pickle at byte {self.pos:,}: {problem}")

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
        handlers = _HANDLERS
        while True:
            if self.pos >= self.size:
                raise self.fail("data ends before STOP")
            code = self.data[self.pos]
            self.pos += 1
            handler = handlers.get(code)
            if handler is None:
                raise self.fail(f"unknown opcode 0x{code:02x}")
            if handler is _stop:
                return self.pop()
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
        name = target.dotted if isinstance(target, Global) else f"<call of {_kind(target)}>"
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
                    raise self.fail(f"unhashable dict key ({_kind(key)})") from None
        elif isinstance(target, PickledObject):
            target.entries.extend(zip(pairs[::2], pairs[1::2], strict=True))
        else:
            raise self.fail(f"SETITEMS on a {_kind(target)}")

    def append_items(self, target: Any, items: list[Any]) -> None:
        if isinstance(target, list):
            target.extend(items)
        elif isinstance(target, PickledObject):
            target.items.extend(items)
        else:
            raise self.fail(f"APPENDS on a {_kind(target)}")


def _kind(value: Any) -> str:
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


# -- opcode handlers ---------------------------------------------------------------------------

_H = Callable[[_Machine], None]
_HANDLERS: dict[int, _H] = {}


def _op(code: bytes) -> Callable[[_H], _H]:
    def register(handler: _H) -> _H:
        _HANDLERS[code[0]] = handler
        return handler

    return register


@_op(b".")
def _stop(m: _Machine) -> None:  # handled in the loop
    pass


@_op(b"\x80")
def _proto(m: _Machine) -> None:
    m.protocol = m.read(1)[0]
    if m.protocol > 5:
        raise m.fail(f"unsupported pickle protocol {m.protocol}")


@_op(b"\x95")
def _frame(m: _Machine) -> None:
    m.read(8)  # frames are only a read-ahead hint


@_op(b"(")
def _mark(m: _Machine) -> None:
    if len(m.marks) >= m.limits.max_marks:
        raise m.fail(f"nesting deeper than {m.limits.max_marks:,} marks")
    m.marks.append(m.stack)
    m.stack = []


@_op(b"0")
def _pop(m: _Machine) -> None:
    if m.stack:
        m.stack.pop()
    else:
        m.pop_mark()


@_op(b"1")
def _pop_mark(m: _Machine) -> None:
    m.pop_mark()


@_op(b"2")
def _dup(m: _Machine) -> None:
    m.push(m.top())


@_op(b"N")
def _none(m: _Machine) -> None:
    m.push(None)


@_op(b"\x88")
def _true(m: _Machine) -> None:
    m.push(True)


@_op(b"\x89")
def _false(m: _Machine) -> None:
    m.push(False)


@_op(b"I")
def _int(m: _Machine) -> None:
    line = m.read_line()
    if len(line) > m.limits.max_int_bytes:
        raise m.fail("integer literal too long")
    if line == b"00":
        m.push(False)
    elif line == b"01":
        m.push(True)
    else:
        try:
            m.push(int(line))
        except ValueError:
            raise m.fail("bad INT literal") from None


@_op(b"L")
def _long(m: _Machine) -> None:
    line = m.read_line().rstrip(b"L")
    if len(line) > m.limits.max_int_bytes:
        raise m.fail("integer literal too long")
    try:
        m.push(int(line))
    except ValueError:
        raise m.fail("bad LONG literal") from None


@_op(b"J")
def _binint(m: _Machine) -> None:
    m.push(m.unpack("<i", 4))


@_op(b"K")
def _binint1(m: _Machine) -> None:
    m.push(m.read(1)[0])


@_op(b"M")
def _binint2(m: _Machine) -> None:
    m.push(m.unpack("<H", 2))


def _long_bytes(m: _Machine, count: int) -> None:
    if count > m.limits.max_int_bytes:
        raise m.fail(f"integer of {count:,} bytes")
    m.push(int.from_bytes(m.read(count), "little", signed=True))


@_op(b"\x8a")
def _long1(m: _Machine) -> None:
    _long_bytes(m, m.read(1)[0])


@_op(b"\x8b")
def _long4(m: _Machine) -> None:
    _long_bytes(m, m.unpack("<i", 4))


@_op(b"F")
def _float(m: _Machine) -> None:
    try:
        m.push(float(m.read_line()))
    except ValueError:
        raise m.fail("bad FLOAT literal") from None


@_op(b"G")
def _binfloat(m: _Machine) -> None:
    m.push(m.unpack(">d", 8))


def _text(m: _Machine, raw: bytes, encoding: str = "utf-8") -> None:
    try:
        m.push(raw.decode(encoding, "surrogatepass"))
    except UnicodeDecodeError:
        raise m.fail("string is not valid UTF-8") from None


@_op(b"V")
def _unicode(m: _Machine) -> None:
    try:
        m.push(m.read_line().decode("raw-unicode-escape"))
    except UnicodeDecodeError:
        raise m.fail("bad UNICODE literal") from None


@_op(b"X")
def _binunicode(m: _Machine) -> None:
    _text(m, m.read(m.unpack("<I", 4)))


@_op(b"\x8c")
def _short_binunicode(m: _Machine) -> None:
    _text(m, m.read(m.read(1)[0]))


@_op(b"\x8d")
def _binunicode8(m: _Machine) -> None:
    _text(m, m.read(m.unpack("<Q", 8)))


def _py2_string(m: _Machine, raw: bytes) -> None:
    # The default unpickler (encoding="ASCII") decodes Python 2 str to str.
    try:
        m.push(raw.decode("ascii"))
    except UnicodeDecodeError:
        m.push(raw)


@_op(b"S")
def _string(m: _Machine) -> None:
    line = m.read_line()
    if len(line) < 2 or line[0] != line[-1] or line[0] not in b"'\"":
        raise m.fail("bad STRING literal")
    try:
        _py2_string(m, codecs.escape_decode(line[1:-1])[0])
    except ValueError:
        raise m.fail("bad STRING literal") from None


@_op(b"T")
def _binstring(m: _Machine) -> None:
    _py2_string(m, m.read(m.unpack("<i", 4)))


@_op(b"U")
def _short_binstring(m: _Machine) -> None:
    _py2_string(m, m.read(m.read(1)[0]))


@_op(b"B")
def _binbytes(m: _Machine) -> None:
    m.push(m.read(m.unpack("<I", 4)))


@_op(b"C")
def _short_binbytes(m: _Machine) -> None:
    m.push(m.read(m.read(1)[0]))


@_op(b"\x8e")
def _binbytes8(m: _Machine) -> None:
    m.push(m.read(m.unpack("<Q", 8)))


@_op(b"\x96")
def _bytearray8(m: _Machine) -> None:
    m.push(bytearray(m.read(m.unpack("<Q", 8))))


@_op(b"\x97")
def _next_buffer(m: _Machine) -> None:
    raise m.fail("out-of-band buffers are not part of a checkpoint file")


@_op(b"\x98")
def _readonly_buffer(m: _Machine) -> None:
    pass


@_op(b")")
def _empty_tuple(m: _Machine) -> None:
    m.push(())


@_op(b"t")
def _tuple(m: _Machine) -> None:
    m.push(tuple(m.pop_mark()))


@_op(b"\x85")
def _tuple1(m: _Machine) -> None:
    m.push((m.pop(),))


@_op(b"\x86")
def _tuple2(m: _Machine) -> None:
    second = m.pop()
    m.push((m.pop(), second))


@_op(b"\x87")
def _tuple3(m: _Machine) -> None:
    third = m.pop()
    second = m.pop()
    m.push((m.pop(), second, third))


@_op(b"]")
def _empty_list(m: _Machine) -> None:
    m.push([])


@_op(b"l")
def _list(m: _Machine) -> None:
    m.push(m.pop_mark())


@_op(b"}")
def _empty_dict(m: _Machine) -> None:
    m.push({})


@_op(b"d")
def _dict(m: _Machine) -> None:
    items = m.pop_mark()
    target: dict[Any, Any] = {}
    m.set_items(target, items)
    m.push(target)


@_op(b"\x8f")
def _empty_set(m: _Machine) -> None:
    m.push(set())


@_op(b"\x91")
def _frozenset(m: _Machine) -> None:
    try:
        m.push(frozenset(m.pop_mark()))
    except TypeError:
        raise m.fail("unhashable set item") from None


@_op(b"\x90")
def _additems(m: _Machine) -> None:
    items = m.pop_mark()
    target = m.top()
    if isinstance(target, set):
        try:
            target.update(items)
        except TypeError:
            raise m.fail("unhashable set item") from None
    elif isinstance(target, PickledObject):
        target.items.extend(items)
    else:
        raise m.fail(f"ADDITEMS on a {_kind(target)}")


@_op(b"a")
def _append(m: _Machine) -> None:
    value = m.pop()
    m.append_items(m.top(), [value])


@_op(b"e")
def _appends(m: _Machine) -> None:
    items = m.pop_mark()
    m.append_items(m.top(), items)


@_op(b"s")
def _setitem(m: _Machine) -> None:
    value = m.pop()
    key = m.pop()
    m.set_items(m.top(), [key, value])


@_op(b"u")
def _setitems(m: _Machine) -> None:
    items = m.pop_mark()
    m.set_items(m.top(), items)


@_op(b"p")
def _put(m: _Machine) -> None:
    try:
        m.remember(int(m.read_line()))
    except ValueError:
        raise m.fail("bad PUT index") from None


@_op(b"q")
def _binput(m: _Machine) -> None:
    m.remember(m.read(1)[0])


@_op(b"r")
def _long_binput(m: _Machine) -> None:
    m.remember(m.unpack("<I", 4))


@_op(b"\x94")
def _memoize(m: _Machine) -> None:
    m.remember(len(m.memo))


@_op(b"g")
def _get(m: _Machine) -> None:
    try:
        m.recall(int(m.read_line()))
    except ValueError:
        raise m.fail("bad GET index") from None


@_op(b"h")
def _binget(m: _Machine) -> None:
    m.recall(m.read(1)[0])


@_op(b"j")
def _long_binget(m: _Machine) -> None:
    m.recall(m.unpack("<I", 4))


@_op(b"c")
def _global(m: _Machine) -> None:
    module = m.read_line().decode("utf-8", "replace")
    qualname = m.read_line().decode("utf-8", "replace")
    m.push(m.make_global(module, qualname))


@_op(b"\x93")
def _stack_global(m: _Machine) -> None:
    qualname = m.pop()
    module = m.pop()
    m.push(m.make_global(module, qualname))


def _extension(m: _Machine, code: int) -> None:
    # The copyreg extension registry is process state: the name cannot be known here.
    m.globals.append(f"<extension {code}>.copyreg")
    m.push(Global(f"<extension {code}>", "copyreg"))


@_op(b"\x82")
def _ext1(m: _Machine) -> None:
    _extension(m, m.read(1)[0])


@_op(b"\x83")
def _ext2(m: _Machine) -> None:
    _extension(m, m.unpack("<H", 2))


@_op(b"\x84")
def _ext4(m: _Machine) -> None:
    _extension(m, m.unpack("<i", 4))


@_op(b"R")
def _reduce(m: _Machine) -> None:
    args = m.pop()
    target = m.pop()
    m.push(m.call(target, args, None, "reduce"))


@_op(b"\x81")
def _newobj(m: _Machine) -> None:
    args = m.pop()
    cls = m.pop()
    m.push(m.call(cls, args, None, "newobj"))


@_op(b"\x92")
def _newobj_ex(m: _Machine) -> None:
    kwargs = m.pop()
    args = m.pop()
    cls = m.pop()
    m.push(m.call(cls, args, kwargs, "newobj"))


@_op(b"i")
def _inst(m: _Machine) -> None:
    module = m.read_line().decode("utf-8", "replace")
    qualname = m.read_line().decode("utf-8", "replace")
    args = tuple(m.pop_mark())
    m.push(m.call(m.make_global(module, qualname), args, None, "inst"))


@_op(b"o")
def _obj(m: _Machine) -> None:
    items = m.pop_mark()
    if not items:
        raise m.fail("OBJ without a class")
    m.push(m.call(items[0], tuple(items[1:]), None, "inst"))


@_op(b"b")
def _build(m: _Machine) -> None:
    state = m.pop()
    target = m.top()
    if m.build is not None and m.build(target, state):
        return
    if isinstance(target, PickledObject):
        target.state = state
    elif isinstance(target, dict) and isinstance(state, dict):
        # An OrderedDict subclass's attributes: keep them out of the entries.
        return
    # BUILD on other plain values is ignored: nothing of theirs would run anyway.


@_op(b"P")
def _persid(m: _Machine) -> None:
    m.push(m.persistent_load(m.read_line().decode("ascii", "replace")))


@_op(b"Q")
def _binpersid(m: _Machine) -> None:
    m.push(m.persistent_load(m.pop()))
