"""A loaded tab's tree is kept out of full collections, and handed back when the tab goes."""

from __future__ import annotations

import gc
import weakref
from pathlib import Path

from PySide6.QtCore import QCoreApplication, QEvent


class _Cycle:
    def __init__(self) -> None:
        self.me = self


def test_a_loaded_tab_is_frozen_out_of_collections_until_it_closes(
    qtbot, window, llama_dir: Path
) -> None:  # type: ignore[no-untyped-def]
    gc.unfreeze()
    (tab,) = window.open_targets([str(llama_dir)])
    qtbot.waitUntil(lambda: tab.checkpoint is not None and window.is_idle(), timeout=30_000)
    assert gc.get_freeze_count() > 0
    # A reference cycle the tab holds, frozen with it (as a load freezes the tab's tree).
    tab.gc_probe = _Cycle()  # type: ignore[attr-defined]
    probe = weakref.ref(tab.gc_probe)  # type: ignore[attr-defined]
    gc.freeze()
    gc.collect()
    assert probe() is not None
    window.close_tab(window.tab_widget.indexOf(tab))
    tab = None  # the test holds no reference either
    QCoreApplication.sendPostedEvents(None, QEvent.Type.DeferredDelete)
    assert gc.get_freeze_count() == 0
    gc.collect()
    assert probe() is None  # garbage once the tab is gone, and collected
