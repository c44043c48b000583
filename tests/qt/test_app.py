"""The application entry, in subprocesses: screenshot mode, smoke test, no torch at startup."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def run(args: list[str], tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    environment = {
        **os.environ,
        "PYTHONPATH": str(REPO),
        "QT_QPA_PLATFORM": "offscreen",
        "XDG_CONFIG_HOME": str(tmp_path / "config"),
        **env,
    }
    return subprocess.run(
        args, capture_output=True, text=True, env=environment, timeout=300, cwd=tmp_path
    )


def test_screenshot_writes_a_real_image(tmp_path: Path, llama_sharded_dir: Path) -> None:
    from PySide6.QtGui import QImage

    out = tmp_path / "shot.png"
    result = run(
        [sys.executable, "-m", "ckpt_gui", str(llama_sharded_dir), "--screenshot", str(out)],
        tmp_path,
    )
    assert result.returncode == 0, result.stderr
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    image = QImage(str(out))
    assert (image.width(), image.height()) == (1280, 800)
    colours = {
        image.pixel(x, y) for x in range(0, image.width(), 7) for y in range(0, image.height(), 7)
    }
    assert len(colours) > 20  # text, bars, plot: not a blank window


def test_screenshot_of_an_unreadable_file_exits_2_with_the_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"\x00" * 16)
    out = tmp_path / "error.png"
    result = run([sys.executable, "-m", "ckpt_gui", str(bad), "--screenshot", str(out)], tmp_path)
    assert result.returncode == 2
    assert f"ckpt-gui: error: {bad}" in result.stderr
    assert out.is_file()  # the window, with the error in its tab, is still rendered


def test_window_opens_a_safetensors_checkpoint_without_torch(
    tmp_path: Path, llama_dir: Path
) -> None:
    script = (
        "import json, sys\n"
        "from ckpt_gui.cli import main\n"
        f"code = main([{str(llama_dir)!r}, '--screenshot', {str(tmp_path / 'shot.png')!r}])\n"
        "print(json.dumps({'code': code, 'torch': 'torch' in sys.modules,"
        " 'transformers': 'transformers' in sys.modules, 'qt': 'PySide6.QtWidgets' in sys.modules}))\n"
    )
    result = run([sys.executable, "-c", script], tmp_path)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report == {"code": 0, "torch": False, "transformers": False, "qt": True}


def test_no_demo_screenshot_shows_the_welcome_view(tmp_path: Path) -> None:
    out = tmp_path / "welcome.png"
    result = run(
        [sys.executable, "-m", "ckpt_gui", "--no-demo", "--screenshot", str(out)], tmp_path
    )
    assert result.returncode == 0, result.stderr
    assert out.stat().st_size > 1000
