"""quiet_on_this_thread silences only its own thread and leaves every global as it was."""

from __future__ import annotations

import logging
import threading
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest

from ckpt_gui.core.quiet import quiet_on_this_thread


class Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


@pytest.fixture
def collected() -> Iterator[Collect]:
    """A handler on transformers' library logger, the way an application would add one."""
    from transformers.utils import logging as hf_logging

    hf_logging.get_logger("transformers.models.llama")  # sets up transformers' own handler
    handler = Collect()
    library = logging.getLogger("transformers")
    level = library.level
    library.setLevel(logging.WARNING)  # transformers' default, whatever ran before
    library.addHandler(handler)
    yield handler
    library.removeHandler(handler)
    library.setLevel(level)


def globals_now() -> tuple[object, ...]:
    library = logging.getLogger("transformers")
    return (
        library.level,
        tuple(library.handlers),
        tuple(tuple(h.filters) for h in library.handlers),
        tuple(tuple(h.filters) for h in logging.getLogger().handlers),
        tuple(warnings.filters),
        warnings.showwarning,
    )


def run_on_thread(target: object) -> None:
    thread = threading.Thread(target=target)  # type: ignore[arg-type]
    thread.start()
    thread.join(60)
    assert not thread.is_alive()


def test_only_the_quiet_thread_is_silenced(collected: Collect) -> None:
    from transformers.utils import logging as hf_logging

    llama_logger = hf_logging.get_logger("transformers.models.llama")
    before = globals_now()
    inside = threading.Event()
    release = threading.Event()
    during: list[tuple[object, ...]] = []

    def quiet_worker() -> None:
        with quiet_on_this_thread():
            llama_logger.warning("from the quiet thread")
            llama_logger.error("an error from the quiet thread")
            warnings.warn("warning from the quiet thread", UserWarning, stacklevel=1)
            inside.set()
            release.wait(60)

    worker = threading.Thread(target=quiet_worker)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        filters = tuple(warnings.filters)
        worker.start()
        try:
            assert inside.wait(60)
            llama_logger.warning("from another thread")
            warnings.warn("warning from another thread", UserWarning, stacklevel=1)
            during.append((logging.getLogger("transformers").level, tuple(warnings.filters)))
        finally:
            release.set()
            worker.join(60)
        shown = [str(w.message) for w in caught]
    assert collected.messages == ["an error from the quiet thread", "from another thread"]
    assert shown == ["warning from another thread"]
    # The level and the filter list never changed, not even while the worker was quiet.
    assert during == [(before[0], filters)]
    assert globals_now() == before


def test_overlapping_threads_restore_everything_whatever_the_order(collected: Collect) -> None:
    before = globals_now()
    a_in, b_in, a_out = threading.Event(), threading.Event(), threading.Event()

    def first() -> None:
        with quiet_on_this_thread():
            a_in.set()
            assert b_in.wait(60)
        a_out.set()

    def second() -> None:
        assert a_in.wait(60)
        with quiet_on_this_thread(), quiet_on_this_thread():  # nested too
            b_in.set()
            assert a_out.wait(60)
            # The first thread has left; this one is still quiet.
            logging.getLogger("transformers.x").warning("still quiet")

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert collected.messages == []
    assert globals_now() == before
    logging.getLogger("transformers.x").warning("after")
    assert collected.messages == ["after"]


def test_a_showwarning_replaced_meanwhile_is_kept() -> None:
    original = warnings.showwarning

    def replacement(*args: object) -> None:
        pass

    try:
        with quiet_on_this_thread():
            warnings.showwarning = replacement
        assert warnings.showwarning is replacement
    finally:
        warnings.showwarning = original


def test_building_a_model_leaves_logging_and_warnings_as_they_were(
    llama_dir: Path,
) -> None:
    from ckpt_gui.core.check.config_source import resolve_config
    from ckpt_gui.core.check.expected import build_expected

    before = globals_now()
    run_on_thread(lambda: build_expected(resolve_config(llama_dir / "config.json")))
    assert globals_now() == before
