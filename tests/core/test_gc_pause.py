"""The collector pause restores whatever state it found (the GUI keeps it off)."""

from __future__ import annotations

import gc

from ckpt_gui.core.gc_pause import collector_paused


def test_pause_restores_the_previous_state() -> None:
    was = gc.isenabled()
    try:
        for start in (True, False):
            (gc.enable if start else gc.disable)()
            with collector_paused():
                assert not gc.isenabled()
            assert gc.isenabled() is start
        gc.enable()
        try:
            with collector_paused():
                raise ValueError("boom")
        except ValueError:
            pass
        assert gc.isenabled()
    finally:
        (gc.enable if was else gc.disable)()
