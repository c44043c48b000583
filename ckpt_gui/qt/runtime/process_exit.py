"""Ending the GUI process promptly once the window has closed.

Measured on this machine (2 cores, loaded): after Ctrl+Q the event loop returns
in about 20 ms, with no worker running and no wait entered; then the
interpreter's own teardown takes 1.2-1.9 s, longer than the whole quit should,
because by then torch, numpy and PySide6 are imported and Python frees every
module, Qt wrapper and cached object one by one (about 3 s on the machine the
issue was seen on). Nothing in that teardown is ours to finish: settings are
synced and workers stopped in ``closeEvent``, exports are committed or removed
by their own shutdown. So once no worker is left, the process ends without it
(``os._exit`` after flushing stdio). If a worker is still alive (it ignored its
stop request within the shutdown timeout), the normal, slow exit runs instead,
so that nothing is cut off mid-write.
"""

from __future__ import annotations

import os
import sys

from ckpt_gui.qt.runtime.workers import active_workers


def end_gui_process(code: int) -> int:
    """Exit now with ``code`` when nothing runs; otherwise return it for a normal exit."""
    if active_workers():
        return code
    for stream in (sys.stdout, sys.stderr):
        try:
            if stream is not None:
                stream.flush()
        except (OSError, ValueError):
            pass
    os._exit(code)
