"""The inert values the unpickler builds: globals, placeholders, persistent ids, limits.

See ``unpickler.py`` for how they are made; nothing here imports or calls a name.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

UNRESOLVED = "<unresolved>"


@dataclass(frozen=True)
class PickleLimits:
    """Hard bounds on what one pickle may make us build (far above any real checkpoint)."""

    max_objects: int = 2_000_000
    max_stack: int = 200_000
    max_marks: int = 10_000
    max_memo: int = 2_000_000
    max_int_bytes: int = 256


@dataclass(eq=False)
class Global:
    """A name the pickle would import (``module.qualname``); never imported."""

    module: str
    qualname: str

    @property
    def dotted(self) -> str:
        return f"{self.module}.{self.qualname}"

    @property
    def short(self) -> str:
        return self.qualname.rsplit(".", 1)[-1]

    def __repr__(self) -> str:
        return self.dotted


@dataclass(eq=False)
class PickledObject:
    """What calling ``callable`` with ``args`` would have produced; nothing was called.

    ``name`` is the callable's dotted name (``argparse.Namespace``); ``how`` the
    opcode that made it ("reduce", "newobj", "inst"). ``state`` is what BUILD
    would pass to ``__setstate__`` (usually the object's ``__dict__``); ``items``
    and ``entries`` collect APPENDS and SETITEMS aimed at the object.
    """

    name: str
    callable: Any
    args: tuple[Any, ...] = ()
    kwargs: dict[Any, Any] = field(default_factory=dict)
    how: str = "reduce"
    state: Any = None
    items: list[Any] = field(default_factory=list)
    entries: list[tuple[Any, Any]] = field(default_factory=list)

    @property
    def short(self) -> str:
        return self.name.rsplit(".", 1)[-1]

    @property
    def attributes(self) -> dict[str, Any]:
        """The object's attributes as BUILD would set them (a dict state, or its first half)."""
        state = self.state
        if isinstance(state, tuple) and len(state) == 2 and isinstance(state[0], dict | None):
            merged = dict(state[0] or {})
            if isinstance(state[1], dict):
                merged.update(state[1])
            state = merged
        if isinstance(state, dict):
            return {str(k): v for k, v in state.items()}
        return {}

    def __repr__(self) -> str:
        return f"<{self.name}>"


@dataclass(frozen=True, eq=False)
class PersistentRef:
    """A persistent id the pickle refers to (``persistent_load`` decides what it means)."""

    pid: Any


@dataclass
class PickleResult:
    value: Any
    end: int
    globals: list[str]


PersistentLoad = Callable[[Any], Any]
Reconstruct = Callable[[PickledObject], Any]
Builder = Callable[[Any, Any], bool]
