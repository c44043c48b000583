"""Damaged GGUF files: one line naming the file and what is wrong, never a traceback."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest

from ckpt_gui.core.errors import CheckpointError
from ckpt_gui.core.formats import open_checkpoint


@pytest.fixture()
def good(gguf_dir: Path) -> bytes:
    return (gguf_dir / "tiny-Q8_0.gguf").read_bytes()


def _fails(path: Path, *words: str) -> str:
    with pytest.raises(CheckpointError) as caught:
        open_checkpoint(path)
    message = str(caught.value)
    assert message.startswith(str(path) + ": "), message
    assert "\n" not in message
    for word in words:
        assert word in message, message
    return message


def _first_tensor_type_offset(path: Path) -> int:
    """Byte position of the first tensor's ggml type field, from gguf's own reader."""
    from gguf import GGUFReader

    reader = GGUFReader(path)
    field = reader.tensors[0].field
    # parts: name length, name, n_dims, dims, type, offset; offsets are into the memmap.
    raw_type = field.parts[4]
    return int(raw_type.ctypes.data - reader.data.ctypes.data)


def test_wrong_magic(tmp_path: Path, good: bytes) -> None:
    path = tmp_path / "model.gguf"
    path.write_bytes(b"GGUX" + good[4:])
    # Not sniffed as GGUF; the .gguf suffix lets the GGUF reader say why.
    _fails(path, "not a GGUF file")


def test_unsupported_version(tmp_path: Path, good: bytes) -> None:
    path = tmp_path / "v99.gguf"
    path.write_bytes(good[:4] + struct.pack("<I", 99) + good[8:])
    _fails(path, "unsupported GGUF version", "99")


@pytest.mark.parametrize("keep", [6, 30, 200, 1000])
def test_truncated_inside_the_header(tmp_path: Path, good: bytes, keep: int) -> None:
    path = tmp_path / f"cut{keep}.gguf"
    path.write_bytes(good[:keep])
    _fails(path, "GGUF")


def test_tensor_data_past_the_end(tmp_path: Path, good: bytes) -> None:
    path = tmp_path / "short.gguf"
    path.write_bytes(good[:-100])
    _fails(path, "runs past the end of the file", "output.weight")


def test_unknown_quantization_type(tmp_path: Path, gguf_dir: Path, good: bytes) -> None:
    position = _first_tensor_type_offset(gguf_dir / "tiny-Q8_0.gguf")
    assert struct.unpack_from("<I", good, position)[0] == 8  # Q8_0: the field is found
    data = bytearray(good)
    struct.pack_into("<I", data, position, 77)
    path = tmp_path / "type77.gguf"
    path.write_bytes(bytes(data))
    _fails(path, "token_embd.weight", "unknown quantization type 77")


def test_huge_counts_do_not_exhaust_memory(tmp_path: Path, good: bytes) -> None:
    # tensor_count and kv_count are the two uint64 after magic and version.
    path = tmp_path / "counts.gguf"
    path.write_bytes(good[:8] + struct.pack("<QQ", 2**62, 2**62) + good[24:])
    _fails(path, "GGUF")


def test_huge_string_length(tmp_path: Path, good: bytes) -> None:
    # The first key's length (uint64 at byte 24) claims more bytes than the file has.
    path = tmp_path / "string.gguf"
    path.write_bytes(good[:24] + struct.pack("<Q", 2**40) + good[32:])
    _fails(path, "file ends at byte")
