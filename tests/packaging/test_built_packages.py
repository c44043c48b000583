"""Inspect what `make package` built (dist/): the .deb, the tarball and the bundle.

Building takes minutes, so these tests inspect an existing build and are skipped, with the
reason, when there is none. CKPT_GUI_DIST points them at another dist folder.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tarfile
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from ckpt_gui.resources import ICON_SIZES

ROOT = Path(__file__).resolve().parents[2]
DIST = Path(os.environ.get("CKPT_GUI_DIST", ROOT / "dist"))
MIME_NS = "{http://www.freedesktop.org/standards/shared-mime-info}"
NO_BUILD = f"no package built in {DIST} (run `make package`; it takes a few minutes)"


def newest(pattern: str) -> Path | None:
    found = sorted(DIST.glob(pattern), key=lambda p: p.stat().st_mtime)
    return found[-1] if found else None


@pytest.fixture(scope="module")
def deb() -> Path:
    path = newest("ckpt-gui_*.deb")
    if path is None:
        pytest.skip(NO_BUILD)
    if not shutil.which("dpkg-deb"):
        pytest.skip("dpkg-deb not installed")
    return path


@pytest.fixture(scope="module")
def deb_files(deb: Path) -> set[str]:
    listing = subprocess.run(
        ["dpkg-deb", "-c", str(deb)], capture_output=True, text=True, check=True
    )
    # Lines look like: "-rw-r--r-- root/root  1234 2026-01-01 00:00 ./usr/share/..."
    return {
        line.split(None, 5)[5].split(" -> ")[0].removeprefix(".")
        for line in listing.stdout.splitlines()
    }


@pytest.fixture(scope="module")
def deb_desktop_files(deb: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The desktop entry and MIME XML extracted from the .deb (one pass over its data)."""
    out = tmp_path_factory.mktemp("deb")
    fsys = subprocess.Popen(["dpkg-deb", "--fsys-tarfile", str(deb)], stdout=subprocess.PIPE)
    members = [
        "./usr/share/applications/ckpt-gui.desktop",
        "./usr/share/mime/packages/ckpt-gui.xml",
    ]
    subprocess.run(["tar", "-x", "-C", str(out), *members], stdin=fsys.stdout, check=True)
    assert fsys.wait() == 0
    return out


def test_deb_control(deb: Path) -> None:
    info = subprocess.run(
        ["dpkg-deb", "-I", str(deb)], capture_output=True, text=True, check=True
    ).stdout
    fields = dict(
        line.strip().split(": ", 1)
        for line in info.splitlines()
        if line.startswith(" ") and ": " in line
    )
    assert fields["Package"] == "ckpt-gui"
    depends = {d.strip().split()[0] for d in fields["Depends"].split(",")}
    # The Qt xcb platform plugin's libraries that the bundle does not carry.
    assert {"libxcb-icccm4", "libxcb-keysyms1", "libxcb-cursor0", "libxkbcommon-x11-0"} <= depends
    assert "libwayland-cursor0" in fields["Recommends"]


def test_deb_installs_app_launcher_desktop_entry_icons_and_mime(deb_files: set[str]) -> None:
    expected = {
        "/opt/ckpt-gui/ckpt-gui",
        "/usr/bin/ckpt-gui",
        "/usr/share/applications/ckpt-gui.desktop",
        "/usr/share/mime/packages/ckpt-gui.xml",
        "/usr/share/icons/hicolor/scalable/apps/ckpt-gui.svg",
        "/opt/ckpt-gui/_internal/torch/bin/torch_shm_manager",
        "/opt/ckpt-gui/_internal/ckpt_gui/resources/ckpt-gui-256.png",
    } | {f"/usr/share/icons/hicolor/{s}x{s}/apps/ckpt-gui.png" for s in ICON_SIZES}
    assert expected <= deb_files, sorted(expected - deb_files)


def test_deb_leaves_out_tests_cuda_and_unused_qt(deb_files: set[str]) -> None:
    unwanted = [
        f
        for f in deb_files
        if "/torch/test/" in f
        or "/torch/bin/test_" in f
        or "libcudnn" in f
        or "libtorch_cuda" in f
        or "libQt6Qml" in f
        or "libQt6Quick" in f
        or "libQt6WebEngine" in f
        or "__pycache__" in f
    ]
    assert not unwanted, unwanted[:10]


def test_deb_desktop_entry_matches_its_mime_types(deb_desktop_files: Path) -> None:
    desktop = (deb_desktop_files / "usr/share/applications/ckpt-gui.desktop").read_text("utf-8")
    entry = dict(line.split("=", 1) for line in desktop.splitlines() if "=" in line)
    assert entry["Icon"] == "ckpt-gui" and entry["Exec"].startswith("ckpt-gui ")
    declared = {m for m in entry["MimeType"].split(";") if m}
    mime = ET.parse(deb_desktop_files / "usr/share/mime/packages/ckpt-gui.xml").getroot()
    defined = {node.attrib["type"]: node for node in mime.iter(f"{MIME_NS}mime-type")}
    assert (
        declared
        == set(defined)
        == {"application/x-safetensors", "application/x-pytorch-checkpoint"}
    )
    globs = {g.attrib["pattern"] for node in defined.values() for g in node.iter(f"{MIME_NS}glob")}
    assert globs == {"*.safetensors", "*.pt", "*.pth", "*.ckpt"}
    assert list(
        defined["application/x-pytorch-checkpoint"].iter(f"{MIME_NS}magic")
    )  # .bin by content


def test_tarball_has_bundle_and_installer() -> None:
    tarball = newest("ckpt-gui-*-linux-*.tar.zst")
    if tarball is None:
        pytest.skip(NO_BUILD)
    if not shutil.which("zstd"):
        pytest.skip("zstd not installed")
    # Streamed: the archive unpacks to about 700 MB.
    unpack = subprocess.Popen(["zstd", "-dc", str(tarball)], stdout=subprocess.PIPE)
    with tarfile.open(fileobj=unpack.stdout, mode="r|") as archive:
        modes = {member.name: member.mode for member in archive}
    assert unpack.wait() == 0
    top = tarball.name.removesuffix(".tar.zst")
    assert {
        f"{top}/install.sh",
        f"{top}/ckpt-gui/ckpt-gui",
        f"{top}/share/ckpt-gui.desktop",
    } <= set(modes)
    assert modes[f"{top}/install.sh"] & 0o111 and modes[f"{top}/ckpt-gui/ckpt-gui"] & 0o111


def test_bundle_smoke_test() -> None:
    """The built bundle's own --smoke-test (as build.sh runs it); slow, so only with a bundle."""
    executable = DIST / "ckpt-gui" / "ckpt-gui"
    if not executable.is_file():
        pytest.skip(NO_BUILD)
    result = subprocess.run(
        [str(executable), "--smoke-test"], capture_output=True, text=True, timeout=600
    )
    verdicts = {
        line.split()[2].rstrip(":"): line.split()[1] for line in result.stdout.splitlines()[:-1]
    }
    assert len(verdicts) == 8, result.stdout + result.stderr[-2000:]
    failed = {step for step, verdict in verdicts.items() if verdict != "PASS"}
    assert failed == set(), result.stdout + result.stderr[-2000:]
    assert result.returncode == 0
