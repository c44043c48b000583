"""Render resources/icon.svg into the PNG sizes the desktops need, plus .ico and .icns.

Run after editing the SVG (the outputs are committed, so the app and the build need no SVG
renderer):

    QT_QPA_PLATFORM=offscreen python resources/render_icons.py

Writes ckpt_gui/resources/ckpt-gui-{16..512}.png and ckpt-gui.svg (installed with the package,
used by the window, the .desktop entry and the bundle) and packaging/icons/ckpt-gui.ico
(Windows) and ckpt-gui.icns (macOS). Both container formats simply embed PNG images.
"""

from __future__ import annotations

import shutil
import struct
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SOURCE = ROOT / "resources" / "icon.svg"
PACKAGE_DIR = ROOT / "ckpt_gui" / "resources"
PACKAGING_DIR = ROOT / "packaging" / "icons"
SIZES = (16, 32, 48, 64, 128, 256, 512)
ICO_SIZES = (16, 32, 48, 64, 128, 256)
# icns element types that hold PNG data, by pixel size (Apple's "ic07".."ic10" family).
ICNS_TYPES = {16: b"icp4", 32: b"icp5", 64: b"icp6", 128: b"ic07", 256: b"ic08", 512: b"ic09"}


def render_png(size: int) -> bytes:
    from PySide6.QtCore import QBuffer, QByteArray, QIODevice, Qt
    from PySide6.QtGui import QImage, QPainter
    from PySide6.QtSvg import QSvgRenderer

    renderer = QSvgRenderer(str(SOURCE))
    if not renderer.isValid():
        raise SystemExit(f"{SOURCE}: not a valid SVG")
    image = QImage(size, size, QImage.Format.Format_ARGB32_Premultiplied)
    image.fill(Qt.GlobalColor.transparent)
    painter = QPainter(image)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform)
    renderer.render(painter)
    painter.end()
    data = QByteArray()
    buffer = QBuffer(data)
    buffer.open(QIODevice.OpenModeFlag.WriteOnly)
    image.convertToFormat(QImage.Format.Format_ARGB32).save(buffer, "PNG")
    return bytes(data.data())


def ico_bytes(pngs: dict[int, bytes]) -> bytes:
    """ICO with PNG-compressed entries (supported since Windows Vista)."""
    header = struct.pack("<HHH", 0, 1, len(ICO_SIZES))
    offset = len(header) + 16 * len(ICO_SIZES)
    directory, images = b"", b""
    for size in ICO_SIZES:
        png = pngs[size]
        dim = 0 if size >= 256 else size  # 0 means 256 in an ICO directory entry
        directory += struct.pack("<BBBBHHII", dim, dim, 0, 0, 1, 32, len(png), offset)
        images += png
        offset += len(png)
    return header + directory + images


def icns_bytes(pngs: dict[int, bytes]) -> bytes:
    elements = b"".join(
        kind + struct.pack(">I", 8 + len(pngs[size])) + pngs[size]
        for size, kind in ICNS_TYPES.items()
    )
    return b"icns" + struct.pack(">I", 8 + len(elements)) + elements


def main() -> int:
    from PySide6.QtGui import QGuiApplication

    _app = QGuiApplication.instance() or QGuiApplication(sys.argv[:1])
    PACKAGE_DIR.mkdir(parents=True, exist_ok=True)
    PACKAGING_DIR.mkdir(parents=True, exist_ok=True)
    pngs = {size: render_png(size) for size in SIZES}
    for size, png in pngs.items():
        (PACKAGE_DIR / f"ckpt-gui-{size}.png").write_bytes(png)
    shutil.copyfile(SOURCE, PACKAGE_DIR / "ckpt-gui.svg")
    (PACKAGING_DIR / "ckpt-gui.ico").write_bytes(ico_bytes(pngs))
    (PACKAGING_DIR / "ckpt-gui.icns").write_bytes(icns_bytes(pngs))
    print(f"wrote {len(pngs)} PNGs, ckpt-gui.svg, .ico and .icns")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
