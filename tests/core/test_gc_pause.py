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


def test_overlapping_pauses_on_two_threads_end_with_the_last() -> None:
    import threading

    was = gc.isenabled()
    gc.enable()
    first_in, first_out, second_checked = threading.Event(), threading.Event(), threading.Event()
    seen: list[bool] = []

    def first() -> None:
        with collector_paused():
            first_in.set()
            assert second_in.wait(60)
        first_out.set()

    def second() -> None:
        assert first_in.wait(60)
        with collector_paused():
            second_in.set()
            assert first_out.wait(60)
            seen.append(gc.isenabled())  # the first has left: still paused for this one
        second_checked.set()

    second_in = threading.Event()
    try:
        threads = [threading.Thread(target=first), threading.Thread(target=second)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        assert second_checked.is_set() and seen == [False]
        assert gc.isenabled()
    finally:
        (gc.enable if was else gc.disable)()
