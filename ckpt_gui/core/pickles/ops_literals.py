"""Opcodes for protocol, framing, marks and literal values (ints, floats, text, bytes), each length bounded."""

from __future__ import annotations

import codecs

from ckpt_gui.core.pickles.machine import Machine, op


@op(b"\x80")
def _proto(m: Machine) -> None:
    m.protocol = m.read(1)[0]
    if m.protocol > 5:
        raise m.fail(f"unsupported pickle protocol {m.protocol}")


@op(b"\x95")
def _frame(m: Machine) -> None:
    m.read(8)  # frames are only a read-ahead hint


@op(b"(")
def _mark(m: Machine) -> None:
    if len(m.marks) >= m.limits.max_marks:
        raise m.fail(f"nesting deeper than {m.limits.max_marks:,} marks")
    m.marks.append(m.stack)
    m.stack = []


@op(b"0")
def _pop(m: Machine) -> None:
    if m.stack:
        m.stack.pop()
    else:
        m.pop_mark()


@op(b"1")
def _pop_mark(m: Machine) -> None:
    m.pop_mark()


@op(b"2")
def _dup(m: Machine) -> None:
    m.push(m.top())


@op(b"N")
def _none(m: Machine) -> None:
    m.push(None)


@op(b"\x88")
def _true(m: Machine) -> None:
    m.push(True)


@op(b"\x89")
def _false(m: Machine) -> None:
    m.push(False)


@op(b"I")
def _int(m: Machine) -> None:
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


@op(b"L")
def _long(m: Machine) -> None:
    line = m.read_line().rstrip(b"L")
    if len(line) > m.limits.max_int_bytes:
        raise m.fail("integer literal too long")
    try:
        m.push(int(line))
    except ValueError:
        raise m.fail("bad LONG literal") from None


@op(b"J")
def _binint(m: Machine) -> None:
    m.push(m.unpack("<i", 4))


@op(b"K")
def _binint1(m: Machine) -> None:
    m.push(m.read(1)[0])


@op(b"M")
def _binint2(m: Machine) -> None:
    m.push(m.unpack("<H", 2))


def _long_bytes(m: Machine, count: int) -> None:
    if count > m.limits.max_int_bytes:
        raise m.fail(f"integer of {count:,} bytes")
    m.push(int.from_bytes(m.read(count), "little", signed=True))


@op(b"\x8a")
def _long1(m: Machine) -> None:
    _long_bytes(m, m.read(1)[0])


@op(b"\x8b")
def _long4(m: Machine) -> None:
    _long_bytes(m, m.unpack("<i", 4))


@op(b"F")
def _float(m: Machine) -> None:
    try:
        m.push(float(m.read_line()))
    except ValueError:
        raise m.fail("bad FLOAT literal") from None


@op(b"G")
def _binfloat(m: Machine) -> None:
    m.push(m.unpack(">d", 8))


def _text(m: Machine, raw: bytes, encoding: str = "utf-8") -> None:
    try:
        m.push(raw.decode(encoding, "surrogatepass"))
    except UnicodeDecodeError:
        raise m.fail("string is not valid UTF-8") from None


@op(b"V")
def _unicode(m: Machine) -> None:
    try:
        m.push(m.read_line().decode("raw-unicode-escape"))
    except UnicodeDecodeError:
        raise m.fail("bad UNICODE literal") from None


@op(b"X")
def _binunicode(m: Machine) -> None:
    _text(m, m.read(m.unpack("<I", 4)))


@op(b"\x8c")
def _short_binunicode(m: Machine) -> None:
    _text(m, m.read(m.read(1)[0]))


@op(b"\x8d")
def _binunicode8(m: Machine) -> None:
    _text(m, m.read(m.unpack("<Q", 8)))


def _py2_string(m: Machine, raw: bytes) -> None:
    # The default unpickler (encoding="ASCII") decodes Python 2 str to str.
    try:
        m.push(raw.decode("ascii"))
    except UnicodeDecodeError:
        m.push(raw)


@op(b"S")
def _string(m: Machine) -> None:
    line = m.read_line()
    if len(line) < 2 or line[0] != line[-1] or line[0] not in b"'\"":
        raise m.fail("bad STRING literal")
    try:
        _py2_string(m, codecs.escape_decode(line[1:-1])[0])
    except ValueError:
        raise m.fail("bad STRING literal") from None


@op(b"T")
def _binstring(m: Machine) -> None:
    _py2_string(m, m.read(m.unpack("<i", 4)))


@op(b"U")
def _short_binstring(m: Machine) -> None:
    _py2_string(m, m.read(m.read(1)[0]))


@op(b"B")
def _binbytes(m: Machine) -> None:
    m.push(m.read(m.unpack("<I", 4)))


@op(b"C")
def _short_binbytes(m: Machine) -> None:
    m.push(m.read(m.read(1)[0]))


@op(b"\x8e")
def _binbytes8(m: Machine) -> None:
    m.push(m.read(m.unpack("<Q", 8)))


@op(b"\x96")
def _bytearray8(m: Machine) -> None:
    m.push(bytearray(m.read(m.unpack("<Q", 8))))


@op(b"\x97")
def _next_buffer(m: Machine) -> None:
    raise m.fail("out-of-band buffers are not part of a checkpoint file")


@op(b"\x98")
def _readonly_buffer(m: Machine) -> None:
    pass
