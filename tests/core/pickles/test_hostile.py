"""Hostile pickles: every declared size is bounded by the file's own bytes.

Each file is opened in a child process limited to 1 GiB of address space
(RLIMIT_AS): a reader that allocated what the file declares would die there.
The child prints the one-line error and its peak memory.
"""

from __future__ import annotations

import json
import os
import struct
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
LIMIT = 1 << 30

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="RLIMIT_AS and /proc/self/status")

CHILD = """
import json, resource, sys
limit = int(sys.argv[1])
resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
from pathlib import Path
from ckpt_gui.core.errors import CheckpointError
from ckpt_gui.core.formats import open_checkpoint
from ckpt_gui.core.pickles.risk import pickle_risk
out = {}
try:
    open_checkpoint(Path(sys.argv[2]))
    out["error"] = None
except CheckpointError as exc:
    out["error"] = str(exc)
out["risk_safe"] = pickle_risk(sys.argv[2]).safe
# VmHWM: this process's own peak (ru_maxrss would carry over the parent's across exec).
hwm = [l for l in open("/proc/self/status") if l.startswith("VmHWM:")][0]
out["maxrss"] = int(hwm.split()[1]) * 1024
print(json.dumps(out))
"""


def torch_zip(path: Path, data_pkl: bytes, records: dict[str, bytes] | None = None) -> Path:
    """A zip laid out as torch writes it, with our own data.pkl."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as archive:
        archive.writestr("archive/data.pkl", data_pkl)
        archive.writestr("archive/byteorder", b"little")
        for name, data in (records or {}).items():
            archive.writestr(f"archive/{name}", data)
        archive.writestr("archive/version", b"3\n")
    return path


def huge_storage(folder: Path) -> Path:
    # {'w': _rebuild_tensor_v2(('storage', FloatStorage, '0', 'cpu', 2**40), 0, (2**40,), (1,))}
    pid = b"(X\x07\x00\x00\x00storagectorch\nFloatStorage\nX\x01\x00\x00\x000X\x03\x00\x00\x00cpu\x8a\x06\x00\x00\x00\x00\x00\x01tQ"
    pickle = (
        b"\x80\x02}X\x01\x00\x00\x00wctorch._utils\n_rebuild_tensor_v2\n("
        + pid
        + b"K\x00\x8a\x06\x00\x00\x00\x00\x00\x01\x85K\x01\x85\x89}tRs."
    )
    return torch_zip(folder / "huge_storage.pt", pickle, {"data/0": b"\x00" * 16})


def bytearray_bomb(folder: Path) -> Path:
    # {'x': bytearray(8 GiB)} in about 100 bytes: a placeholder, never allocated.
    pickle = b"\x80\x02}X\x01\x00\x00\x00xcbuiltins\nbytearray\n\x8a\x05\x00\x00\x00\x00\x02\x85Rs."
    return torch_zip(folder / "bomb.pt", pickle)


def legacy_bytearray_bomb(folder: Path) -> Path:
    path = folder / "bomb_legacy.bin"
    path.write_bytes(b"\x80\x02cbuiltins\nbytearray\n\x8a\x05\x00\x00\x00\x00\x02\x85R.")
    return path


def declared_bytes(folder: Path) -> Path:
    # BINBYTES8 declaring 8 GiB with 10 bytes behind it.
    return torch_zip(
        folder / "bytes8.pt", b"\x80\x04\x8e" + struct.pack("<Q", 8 << 30) + b"0123456789"
    )


def deep_marks(folder: Path) -> Path:
    return torch_zip(folder / "marks.pt", b"\x80\x02" + b"(" * 200_000 + b".")


def deep_lists(folder: Path) -> Path:
    # 150,000 nested lists: within the stack bound, so reading must survive the depth.
    depth = 150_000
    return torch_zip(folder / "nested.pt", b"\x80\x02" + b"]" * depth + b"a" * (depth - 1) + b".")


def huge_memo(folder: Path) -> Path:
    puts = b"".join(b"r" + struct.pack("<I", i) for i in range(2_100_000))
    return torch_zip(folder / "memo.pt", b"\x80\x02N" + puts + b".")


def many_objects(folder: Path) -> Path:
    return torch_zip(folder / "objects.pt", b"\x80\x02" + b"N0" * 2_100_000 + b"N.")


CASES = [
    (huge_storage, "storage data/0 declares 4,398,046,511,104 bytes but the archive holds 16"),
    (bytearray_bomb, "no state dict found"),
    (legacy_bytearray_bomb, "a plain pickle, not a PyTorch checkpoint"),
    (declared_bytes, "declares 8,589,934,592 bytes but only 10 remain"),
    (deep_marks, "nesting deeper than 10,000 marks"),
    (deep_lists, "contains a list, not a state dict or a model"),
    (huge_memo, "memo holds more than 2,000,000 entries"),
    (many_objects, "more than 2,000,000 objects"),
]


@pytest.mark.parametrize(("build", "expected"), CASES, ids=[c[0].__name__ for c in CASES])
def test_hostile_file_gives_one_line_error_in_bounded_memory(
    tmp_path: Path, build, expected: str
) -> None:
    path = build(tmp_path)
    assert path.stat().st_size < 20 << 20
    done = subprocess.run(
        [sys.executable, "-c", CHILD, str(LIMIT), str(path)],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT), "OPENBLAS_NUM_THREADS": "1"},
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    error = result["error"]
    assert error is not None and "\n" not in error
    assert error.startswith(str(path)), error
    assert expected in error, error
    assert result["maxrss"] < LIMIT // 2, result
    assert isinstance(result["risk_safe"], bool)  # pickle-risk walked it in bounded memory too


def test_the_bomb_is_real() -> None:
    """Control: the same bytes make the standard unpickler try to allocate 8 GiB."""
    data = b"\x80\x02cbuiltins\nbytearray\n\x8a\x05\x00\x00\x00\x00\x02\x85R."
    script = (
        "import pickle, resource, sys; resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30));"
        "pickle.loads(sys.stdin.buffer.read())"
    )
    done = subprocess.run([sys.executable, "-c", script], input=data, capture_output=True)
    assert done.returncode != 0 and b"MemoryError" in done.stderr
    assert len(data) < 100
