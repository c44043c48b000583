"""The icon, the .desktop entry and the MIME types shipped by the packages."""

from __future__ import annotations

import configparser
import os
import shutil
import struct
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from ckpt_gui.resources import ICON_SIZES, icon_path, icon_paths

ROOT = Path(__file__).resolve().parents[2]
LINUX = ROOT / "packaging" / "linux"
DESKTOP = LINUX / "ckpt-gui.desktop"
MIME_XML = LINUX / "ckpt-gui-mime.xml"
MIME_NS = "{http://www.freedesktop.org/standards/shared-mime-info}"
CHECKPOINT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".ckpt")


def png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", f"{path.name} is not a PNG"
    width, height = struct.unpack(">II", data[16:24])
    return width, height


@pytest.mark.parametrize("size", ICON_SIZES)
def test_icon_png_at_every_size(size: int) -> None:
    assert png_size(icon_path(size)) == (size, size)


def test_icon_helper() -> None:
    assert icon_path().suffix == ".svg" and icon_path().is_file()
    assert [p.name for p in icon_paths()] == [f"ckpt-gui-{s}.png" for s in ICON_SIZES]
    with pytest.raises(ValueError, match="no 20px icon"):
        icon_path(20)


def test_packaged_svg_is_the_source() -> None:
    """ckpt_gui/resources/ckpt-gui.svg is a copy made by resources/render_icons.py."""
    assert icon_path().read_bytes() == (ROOT / "resources" / "icon.svg").read_bytes()
    ET.parse(icon_path())  # well-formed XML


def test_windows_and_macos_icons_embed_every_size() -> None:
    ico = (ROOT / "packaging" / "icons" / "ckpt-gui.ico").read_bytes()
    reserved, kind, count = struct.unpack("<HHH", ico[:6])
    assert (reserved, kind) == (0, 1) and count == 6
    sizes = {ico[6 + 16 * i] or 256 for i in range(count)}
    assert sizes == {16, 32, 48, 64, 128, 256}
    icns = (ROOT / "packaging" / "icons" / "ckpt-gui.icns").read_bytes()
    assert icns[:4] == b"icns" and struct.unpack(">I", icns[4:8])[0] == len(icns)
    assert b"ic09" in icns  # the 512 px image


def read_desktop(path: Path) -> configparser.SectionProxy:
    parser = configparser.ConfigParser(interpolation=None, strict=True)
    parser.optionxform = str  # type: ignore[assignment,method-assign]  # keys are case-sensitive
    parser.read(path, encoding="utf-8")
    return parser["Desktop Entry"]


def mime_types(path: Path) -> dict[str, list[str]]:
    root = ET.parse(path).getroot()
    return {
        node.attrib["type"]: [glob.attrib["pattern"] for glob in node.iter(f"{MIME_NS}glob")]
        for node in root.iter(f"{MIME_NS}mime-type")
    }


def test_desktop_entry_fields() -> None:
    entry = read_desktop(DESKTOP)
    assert entry["Type"] == "Application"
    assert entry["Exec"] == "ckpt-gui %F"  # several files at once, each in its own tab
    assert entry["Icon"] == "ckpt-gui"
    declared = [m for m in entry["MimeType"].split(";") if m]
    assert set(declared) == set(mime_types(MIME_XML))


@pytest.mark.skipif(
    not shutil.which("desktop-file-validate"),
    reason="desktop-file-validate not installed (apt: desktop-file-utils)",
)
def test_desktop_entry_validates() -> None:
    result = subprocess.run(["desktop-file-validate", str(DESKTOP)], capture_output=True, text=True)
    assert result.returncode == 0 and not result.stdout.strip(), result.stdout + result.stderr


def test_mime_xml_names_every_suffix_but_bin_by_glob() -> None:
    globs = {pattern for patterns in mime_types(MIME_XML).values() for pattern in patterns}
    assert globs == {"*.safetensors", "*.pt", "*.pth", "*.ckpt"}  # *.bin only by content


@pytest.mark.skipif(
    not shutil.which("update-mime-database"),
    reason="update-mime-database not installed (apt: shared-mime-info)",
)
def test_mime_database_recognises_checkpoints(tmp_path: Path) -> None:
    """Compile the MIME XML like the desktop does, then ask Qt's MIME database about real files."""
    import torch

    data = tmp_path / "xdg"
    (data / "mime" / "packages").mkdir(parents=True)
    shutil.copyfile(MIME_XML, data / "mime" / "packages" / "ckpt-gui.xml")
    subprocess.run(["update-mime-database", str(data / "mime")], check=True, capture_output=True)
    files = tmp_path / "files"
    files.mkdir()
    state = {"w": torch.zeros(2)}
    torch.save(state, files / "pytorch_model.bin")
    torch.save(state, files / "legacy.bin", _use_new_zipfile_serialization=False)
    torch.save(state, files / "model.pt")
    (files / "model.safetensors").write_bytes(b"\x02\x00\x00\x00\x00\x00\x00\x00{}")
    (files / "firmware.bin").write_bytes(bytes(range(256)))
    (files / "notes.zip").write_bytes(b"PK\x03\x04" + bytes(26) + b"readme.txt")
    probe = (
        "import sys\n"
        "from PySide6.QtCore import QMimeDatabase\n"
        "db = QMimeDatabase()\n"
        "for name in sys.argv[1:]: print(name, db.mimeTypeForFile(name).name())\n"
    )
    names = sorted(p.name for p in files.iterdir())
    env = {**os.environ, "XDG_DATA_DIRS": f"{data}:/usr/local/share:/usr/share"}
    result = subprocess.run(
        [sys.executable, "-c", probe, *names],
        cwd=files,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    found = dict(line.split(" ", 1) for line in result.stdout.splitlines())
    assert found["pytorch_model.bin"] == "application/x-pytorch-checkpoint"
    assert found["legacy.bin"] == "application/x-pytorch-checkpoint"
    assert found["model.pt"] == "application/x-pytorch-checkpoint"
    assert found["model.safetensors"] == "application/x-safetensors"
    assert found["firmware.bin"] != "application/x-pytorch-checkpoint"
    assert found["notes.zip"] != "application/x-pytorch-checkpoint"
