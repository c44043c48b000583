"""Opcodes that build structure: containers, the memo, globals, calls and BUILD.

Calls never call: they make ``PickledObject`` placeholders (see ``objects.py``).
"""

from __future__ import annotations

from typing import Any

from ckpt_gui.core.pickles.machine import Machine, describe, op
from ckpt_gui.core.pickles.objects import Global, PickledObject


@op(b")")
def _empty_tuple(m: Machine) -> None:
    m.push(())


@op(b"t")
def _tuple(m: Machine) -> None:
    m.push(tuple(m.pop_mark()))


@op(b"\x85")
def _tuple1(m: Machine) -> None:
    m.push((m.pop(),))


@op(b"\x86")
def _tuple2(m: Machine) -> None:
    second = m.pop()
    m.push((m.pop(), second))


@op(b"\x87")
def _tuple3(m: Machine) -> None:
    third = m.pop()
    second = m.pop()
    m.push((m.pop(), second, third))


@op(b"]")
def _empty_list(m: Machine) -> None:
    m.push([])


@op(b"l")
def _list(m: Machine) -> None:
    m.push(m.pop_mark())


@op(b"}")
def _empty_dict(m: Machine) -> None:
    m.push({})


@op(b"d")
def _dict(m: Machine) -> None:
    items = m.pop_mark()
    target: dict[Any, Any] = {}
    m.set_items(target, items)
    m.push(target)


@op(b"\x8f")
def _empty_set(m: Machine) -> None:
    m.push(set())


@op(b"\x91")
def _frozenset(m: Machine) -> None:
    try:
        m.push(frozenset(m.pop_mark()))
    except TypeError:
        raise m.fail("unhashable set item") from None


@op(b"\x90")
def _additems(m: Machine) -> None:
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
        raise m.fail(f"ADDITEMS on a {describe(target)}")


@op(b"a")
def _append(m: Machine) -> None:
    value = m.pop()
    m.append_items(m.top(), [value])


@op(b"e")
def _appends(m: Machine) -> None:
    items = m.pop_mark()
    m.append_items(m.top(), items)


@op(b"s")
def _setitem(m: Machine) -> None:
    value = m.pop()
    key = m.pop()
    m.set_items(m.top(), [key, value])


@op(b"u")
def _setitems(m: Machine) -> None:
    items = m.pop_mark()
    m.set_items(m.top(), items)


@op(b"p")
def _put(m: Machine) -> None:
    try:
        m.remember(int(m.read_line()))
    except ValueError:
        raise m.fail("bad PUT index") from None


@op(b"q")
def _binput(m: Machine) -> None:
    m.remember(m.read(1)[0])


@op(b"r")
def _long_binput(m: Machine) -> None:
    m.remember(m.unpack("<I", 4))


@op(b"\x94")
def _memoize(m: Machine) -> None:
    m.remember(len(m.memo))


@op(b"g")
def _get(m: Machine) -> None:
    try:
        m.recall(int(m.read_line()))
    except ValueError:
        raise m.fail("bad GET index") from None


@op(b"h")
def _binget(m: Machine) -> None:
    m.recall(m.read(1)[0])


@op(b"j")
def _long_binget(m: Machine) -> None:
    m.recall(m.unpack("<I", 4))


@op(b"c")
def _global(m: Machine) -> None:
    module = m.read_line().decode("utf-8", "replace")
    qualname = m.read_line().decode("utf-8", "replace")
    m.push(m.make_global(module, qualname))


@op(b"\x93")
def _stack_global(m: Machine) -> None:
    qualname = m.pop()
    module = m.pop()
    m.push(m.make_global(module, qualname))


def _extension(m: Machine, code: int) -> None:
    # The copyreg extension registry is process state: the name cannot be known here.
    m.globals.append(f"<extension {code}>.copyreg")
    m.push(Global(f"<extension {code}>", "copyreg"))


@op(b"\x82")
def _ext1(m: Machine) -> None:
    _extension(m, m.read(1)[0])


@op(b"\x83")
def _ext2(m: Machine) -> None:
    _extension(m, m.unpack("<H", 2))


@op(b"\x84")
def _ext4(m: Machine) -> None:
    _extension(m, m.unpack("<i", 4))


@op(b"R")
def _reduce(m: Machine) -> None:
    args = m.pop()
    target = m.pop()
    m.push(m.call(target, args, None, "reduce"))


@op(b"\x81")
def _newobj(m: Machine) -> None:
    args = m.pop()
    cls = m.pop()
    m.push(m.call(cls, args, None, "newobj"))


@op(b"\x92")
def _newobj_ex(m: Machine) -> None:
    kwargs = m.pop()
    args = m.pop()
    cls = m.pop()
    m.push(m.call(cls, args, kwargs, "newobj"))


@op(b"i")
def _inst(m: Machine) -> None:
    module = m.read_line().decode("utf-8", "replace")
    qualname = m.read_line().decode("utf-8", "replace")
    args = tuple(m.pop_mark())
    m.push(m.call(m.make_global(module, qualname), args, None, "inst"))


@op(b"o")
def _obj(m: Machine) -> None:
    items = m.pop_mark()
    if not items:
        raise m.fail("OBJ without a class")
    m.push(m.call(items[0], tuple(items[1:]), None, "inst"))


@op(b"b")
def _build(m: Machine) -> None:
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


@op(b"P")
def _persid(m: Machine) -> None:
    m.push(m.persistent_load(m.read_line().decode("ascii", "replace")))


@op(b"Q")
def _binpersid(m: Machine) -> None:
    m.push(m.persistent_load(m.pop()))
