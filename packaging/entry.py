"""PyInstaller entry point: the same ``main`` as the ``ckpt-gui`` console script."""

from __future__ import annotations

import multiprocessing

from ckpt_gui.cli import main

if __name__ == "__main__":
    # torch and PyInstaller both need this for any child process started by the bundle.
    multiprocessing.freeze_support()
    raise SystemExit(main())
