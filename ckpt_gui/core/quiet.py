"""Silence a library's log records and Python warnings on this thread only.

Building a model logs and warns about its config; our report says what matters.
The usual tools change process-wide state: a logger's level and
``warnings.catch_warnings`` (which swaps the global filter list) affect every
thread while they are in force, and two threads leaving them in the wrong order
restore each other's settings, leaving the process silenced for good.

:func:`quiet_on_this_thread` changes neither. While any thread is inside it, a
filter sits on the handlers that the library's records reach and a wrapper on
``warnings.showwarning``; both drop only what the quiet threads emit (handlers
run on the emitting thread). The last thread to leave takes them away again.
Records of level ERROR and above still pass.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import warnings
from collections.abc import Iterator
from typing import Any

QUIET_LOGGER = "transformers"  # its child loggers (transformers.models...) included
_lock = threading.Lock()
_depth: dict[int, int] = {}  # thread ident -> nesting depth, for threads inside a block
_filtered: list[tuple[logging.Handler, logging.Filter]] = []
_saved_showwarning: Any = None


class _QuietThreadsFilter(logging.Filter):
    def __init__(self, prefix: str) -> None:
        super().__init__()
        self.prefix = prefix

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno >= logging.ERROR or threading.get_ident() not in _depth:
            return True
        name = record.name
        return not (name == self.prefix or name.startswith(self.prefix + "."))


def _showwarning(
    message: Warning | str,
    category: type[Warning],
    filename: str,
    lineno: int,
    file: Any = None,
    line: str | None = None,
) -> None:
    if threading.get_ident() in _depth:
        return
    _saved_showwarning(message, category, filename, lineno, file, line)


def _handlers_reached(logger: logging.Logger) -> list[logging.Handler]:
    """The handlers a record logged under ``logger`` goes through (propagation included)."""
    handlers: list[logging.Handler] = []
    current: logging.Logger | None = logger
    while current is not None:
        handlers.extend(current.handlers)
        if not current.propagate:
            break
        current = current.parent
    if not handlers and logging.lastResort is not None:
        handlers.append(logging.lastResort)
    return handlers


@contextlib.contextmanager
def quiet_on_this_thread() -> Iterator[None]:
    """Drop transformers' records below ERROR and all warnings raised on this thread."""
    global _saved_showwarning
    ident = threading.get_ident()
    with _lock:
        if not _depth:
            record_filter = _QuietThreadsFilter(QUIET_LOGGER)
            for handler in _handlers_reached(logging.getLogger(QUIET_LOGGER)):
                handler.addFilter(record_filter)
                _filtered.append((handler, record_filter))
            _saved_showwarning = warnings.showwarning
            warnings.showwarning = _showwarning
        _depth[ident] = _depth.get(ident, 0) + 1
    try:
        yield
    finally:
        with _lock:
            _depth[ident] -= 1
            if not _depth[ident]:
                del _depth[ident]
            if not _depth:
                for handler, added in _filtered:
                    handler.removeFilter(added)
                _filtered.clear()
                # Someone who replaced it after us keeps theirs.
                if warnings.showwarning is _showwarning:
                    warnings.showwarning = _saved_showwarning
