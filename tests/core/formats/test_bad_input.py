"""Malformed and hostile files are normal input: each gets a one-line error naming the file.

One data-driven table: a builder writes the bad file, the expected fragment says
what the message must explain. Nothing may hang, crash, or run code.
"""

from __future__ import annotations

import io
import json
import os
import pickle
import shutil
import struct
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest

from ckpt_gui.core.errors import CheckpointError
from ckpt_gui.core.formats import open_checkpoint

MARKER_NAME = "PWNED"


def safetensors_bytes(header: object, data: bytes = b"", length: int | None = None) -> bytes:
    raw = json.dumps(header).encode() if not isinstance(header, bytes) else header
    return struct.pack("<Q", len(raw) if length is None else length) + raw + data


def good_header(**overrides: object) -> dict:
    entry = {"dtype": "F32", "shape": [2, 2], "data_offsets": [0, 16]}
    entry.update(overrides)
    return {"w": entry}


def write(name: str, content: bytes) -> Callable[[Path], Path]:
    def build(tmp: Path) -> Path:
        path = tmp / name
        path.write_bytes(content)
        return path

    return build


def torch_save(
    name: str, make_obj: Callable[[Path], object], **kwargs: object
) -> Callable[[Path], Path]:
    def build(tmp: Path) -> Path:
        import torch

        path = tmp / name
        torch.save(make_obj(tmp), path, **kwargs)
        return path

    return build


class SystemCall:
    """Pickles to a call of os.system that would create the marker file."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


class EvalCall:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (eval, (f"open({str(self.marker)!r}, 'w')",))


def corrupted_zip_member(tmp: Path) -> Path:
    import torch

    path = tmp / "corrupt.pt"
    torch.save({"w": torch.zeros(4)}, path)
    raw = bytearray(path.read_bytes())
    start = raw.index(b"data.pkl") + len(b"data.pkl")
    # Overwrite the start of the stored (uncompressed) pickle member.
    for i in range(start + 40, start + 60):
        raw[i] ^= 0xFF
    path.write_bytes(bytes(raw))
    return path


def plain_zip(tmp: Path) -> Path:
    path = tmp / "archive.pt"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("readme.txt", "hello")
    return path


def png_renamed(tmp: Path) -> Path:
    path = tmp / "model.bin"
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 100)
    return path


def truncated_legacy(tmp: Path) -> Path:
    import torch

    path = tmp / "legacy.bin"
    torch.save({"w": torch.zeros(1000)}, path, _use_new_zipfile_serialization=False)
    path.write_bytes(path.read_bytes()[:60])
    return path


def truncated_safetensors(tmp: Path) -> Path:
    path = tmp / "cut.safetensors"
    path.write_bytes(safetensors_bytes(good_header(), b"\x00" * 16)[:-5])
    return path


def deep_pickle(tmp: Path) -> Path:
    path = tmp / "deep.pt"
    # A legacy-looking stream: protocol 2, then 200k nested empty lists.
    path.write_bytes(b"\x80\x02" + b"]" * 200_000 + b".")
    return path


def a_fifo(tmp: Path) -> Path:
    path = tmp / "pipe.safetensors"
    os.mkfifo(path)
    return path


def a_directory_named_like_a_file(tmp: Path) -> Path:
    path = tmp / "model.safetensors"
    path.mkdir()
    (path / "notes.txt").write_text("not weights")
    return path


def index_case(
    weight_map: object, shards: dict[str, dict] | None = None, raw: bytes | None = None
) -> Callable[[Path], Path]:
    def build(tmp: Path) -> Path:
        folder = tmp / "sharded"
        folder.mkdir()
        for name, header in (shards or {}).items():
            size = sum(e["data_offsets"][1] - e["data_offsets"][0] for e in header.values())
            (folder / name).write_bytes(safetensors_bytes(header, b"\x00" * size))
        index = folder / "model.safetensors.index.json"
        index.write_bytes(
            raw if raw is not None else json.dumps({"weight_map": weight_map}).encode()
        )
        return index

    return build


A = {"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}}
B = {"b": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}}
AB = {
    "a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
    "b": {"dtype": "F32", "shape": [2], "data_offsets": [8, 16]},
}
S1, S2 = "model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"

CASES: list[tuple[str, Callable[[Path], Path], str]] = [
    ("empty file", write("empty.safetensors", b""), "file is empty"),
    ("shorter than a header", write("tiny.safetensors", b"\x05\x00"), "too short"),
    (
        "header length beyond the file",
        write("x.safetensors", safetensors_bytes({}, length=5000)),
        "runs past the end",
    ),
    (
        "absurd header length",
        write("x.safetensors", struct.pack("<Q", 2**62) + b"{}"),
        "exceeds the 100 MB",
    ),
    ("header not JSON", write("x.safetensors", safetensors_bytes(b"{not json")), "not valid JSON"),
    ("header not an object", write("x.safetensors", safetensors_bytes([1, 2, 3])), "not an object"),
    ("header not UTF-8", write("x.safetensors", safetensors_bytes(b'{"\xff": 1}')), "not UTF-8"),
    (
        "unknown dtype",
        write("x.safetensors", safetensors_bytes(good_header(dtype="F128"), b"\x00" * 16)),
        "unknown dtype 'F128'",
    ),
    (
        "negative shape",
        write("x.safetensors", safetensors_bytes(good_header(shape=[-1, 2]), b"\x00" * 16)),
        "invalid shape",
    ),
    (
        "offsets reversed",
        write("x.safetensors", safetensors_bytes(good_header(data_offsets=[16, 0]), b"\x00" * 16)),
        "invalid data_offsets",
    ),
    (
        "shape and bytes disagree",
        write("x.safetensors", safetensors_bytes(good_header(shape=[3, 2]), b"\x00" * 16)),
        "offsets span 16 bytes",
    ),
    (
        "offsets out of range",
        write("x.safetensors", safetensors_bytes(good_header(data_offsets=[16, 32]), b"\x00" * 16)),
        "data section has only 16 bytes",
    ),
    ("truncated data", truncated_safetensors, "data section has only 11 bytes"),
    (
        "overlapping tensors",
        write(
            "x.safetensors",
            safetensors_bytes(
                {
                    "a": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]},
                    "b": {"dtype": "F32", "shape": [2], "data_offsets": [8, 16]},
                },
                b"\x00" * 16,
            ),
        ),
        "overlaps",
    ),
    (
        "gap between tensors",
        write("x.safetensors", safetensors_bytes(good_header(data_offsets=[4, 20]), b"\x00" * 20)),
        "gap of 4 bytes",
    ),
    (
        "trailing bytes",
        write("x.safetensors", safetensors_bytes(good_header(), b"\x00" * 24)),
        "8 bytes after the last tensor",
    ),
    (
        "bad __metadata__",
        write("x.safetensors", safetensors_bytes({"__metadata__": {"a": 1}})),
        "__metadata__ must map strings",
    ),
    ("a directory named like a file", a_directory_named_like_a_file, "folder holds no checkpoint"),
    ("a pipe", a_fifo, "not a regular file (a pipe)"),
    (
        "pickle calling os.system",
        torch_save("evil.pt", SystemCall),
        "refuses to load safely: uses posix.system",
    ),
    (
        "legacy pickle calling os.system",
        torch_save("evil_legacy.bin", SystemCall, _use_new_zipfile_serialization=False),
        "uses posix.system",
    ),
    ("pickle calling eval", torch_save("eval.pt", EvalCall), "uses builtins.eval"),
    ("corrupted zip member", corrupted_zip_member, "corrupted"),
    ("zip that is not a checkpoint", plain_zip, "no data.pkl"),
    ("PNG renamed to .bin", png_renamed, "not a checkpoint: unrecognised content"),
    ("truncated legacy pickle", truncated_legacy, "corrupted"),
    ("garbage after a pickle header", write("junk.pt", b"\x80\x02" + os.urandom(64)), "corrupted"),
    ("deeply nested pickle", deep_pickle, ""),
    (
        "pickle holding a list",
        torch_save("list.pt", lambda _: [1, 2, 3]),
        "contains a list, not a state dict",
    ),
    (
        "pickle holding no tensors",
        torch_save("dict.pt", lambda _: {"epoch": 1}),
        "no state dict found",
    ),
    ("index not JSON", index_case(None, raw=b"{weight_map: nope"), "index is not valid JSON"),
    ("index without weight_map", index_case(None, raw=b'{"weight_map": 5}'), "no weight_map"),
    ("index naming a missing shard", index_case({"a": S1}), f"shard {S1} is missing"),
    ("index listing an absent key", index_case({"a": S1, "zzz": S1}, {S1: A}), "index lists 'zzz'"),
    ("tensor in two shards", index_case({"a": S1, "b": S2}, {S1: AB, S2: B}), "in both"),
    ("tensor the index does not list", index_case({"a": S1}, {S1: AB}), "does not list"),
    (
        "index putting a key in the wrong shard",
        index_case({"a": S2, "b": S1}, {S1: A, S2: B}),
        "index puts 'a'",
    ),
    (
        "shard path leaving the folder",
        index_case({"a": "../outside.safetensors"}),
        "leaves the checkpoint folder",
    ),
    ("absolute shard path", index_case({"a": "/etc/passwd"}), "leaves the checkpoint folder"),
    (
        "numbered shard not in the index",
        index_case({"a": S1}, {S1: A, S2: B}),
        f"shard {S2} is in the folder but not in the index",
    ),
]


@pytest.mark.parametrize(("build", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_input_gives_one_line_error(
    tmp_path: Path, build: Callable[[Path], Path], expected: str
) -> None:
    path = build(tmp_path)
    with pytest.raises(CheckpointError) as caught:
        open_checkpoint(path)
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith(str(path) if path.suffix != ".json" else str(path.parent))
    assert expected in message
    assert not (tmp_path / MARKER_NAME).exists()
    assert not list(tmp_path.rglob(MARKER_NAME))


def test_hostile_pickles_never_run_code(tmp_path: Path) -> None:
    """The marker each payload would create stays absent, whatever path the file takes."""
    import torch

    marker = tmp_path / MARKER_NAME
    for i, payload in enumerate([SystemCall(marker), EvalCall(marker)]):
        for legacy in (False, True):
            path = tmp_path / f"evil{i}{legacy}.pt"
            torch.save({"x": payload}, path, _use_new_zipfile_serialization=not legacy)
            with pytest.raises(CheckpointError):
                open_checkpoint(path)
            assert not marker.exists()


def test_unsafe_error_lists_the_refused_globals(tmp_path: Path) -> None:
    from ckpt_gui.core.errors import UnsafePickleError

    path = torch_save("evil.pt", SystemCall)(tmp_path)
    with pytest.raises(UnsafePickleError) as caught:
        open_checkpoint(path)
    assert caught.value.refused_globals == ["posix.system"]


def test_renamed_safetensors_is_read_by_content(tmp_path: Path, llama_dir: Path) -> None:
    renamed = tmp_path / "weights.bin"
    shutil.copy(llama_dir / "model.safetensors", renamed)
    assert open_checkpoint(renamed).format == "safetensors"


def test_pickle_scan_sees_stack_global_through_memo() -> None:
    """Protocol 4 pickles name globals with STACK_GLOBAL, often through the memo."""
    from ckpt_gui.core.pickles.opcodes import globals_in_pickle

    data = pickle.dumps([SystemCall(Path("/x")), SystemCall(Path("/y"))], protocol=4)
    assert globals_in_pickle(io.BytesIO(data))[0] in ("posix.system", "nt.system")
