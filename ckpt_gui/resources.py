"""Files shipped inside the package (``ckpt_gui/resources/``): the application icon.

The PNGs are rendered from ``resources/icon.svg`` by ``resources/render_icons.py`` and committed,
so nothing renders SVG at run time. In a PyInstaller bundle the same folder is collected as data,
so these paths work there too.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from PySide6.QtGui import QIcon

RESOURCE_DIR = Path(__file__).resolve().parent / "resources"
ICON_SIZES = (16, 32, 48, 64, 128, 256, 512)


def icon_path(size: int | None = None) -> Path:
    """The icon at ``size`` pixels (one of ICON_SIZES), or the scalable SVG when None."""
    if size is None:
        return RESOURCE_DIR / "ckpt-gui.svg"
    if size not in ICON_SIZES:
        raise ValueError(f"no {size}px icon; sizes: {', '.join(map(str, ICON_SIZES))}")
    return RESOURCE_DIR / f"ckpt-gui-{size}.png"


def icon_paths() -> list[Path]:
    """Every PNG size, smallest first: what a QIcon should be built from."""
    return [icon_path(size) for size in ICON_SIZES]


def application_icon() -> QIcon:
    """The app's QIcon with every size (for ``QApplication.setWindowIcon``). Imports Qt lazily
    so that the CLI can use the paths above without PySide6."""
    from PySide6.QtGui import QIcon

    icon = QIcon()
    for path in icon_paths():
        icon.addFile(str(path))
    return icon
