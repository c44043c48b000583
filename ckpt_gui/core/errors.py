"""One error family: every message names the file and the problem."""

from __future__ import annotations

from pathlib import Path


class CheckpointError(Exception):
    """A checkpoint (or a file belonging to one) cannot be read as asked.

    ``str(error)`` is the one line shown to the user: ``<file>: <problem>``.
    """

    def __init__(self, file: str | Path, problem: str) -> None:
        self.file = str(file)
        self.problem = problem
        super().__init__(f"{self.file}: {problem}")


class UnsafePickleError(CheckpointError):
    """A pickle asks for globals the weights-only loader refuses; it was not loaded."""

    def __init__(self, file: str | Path, refused_globals: list[str]) -> None:
        self.refused_globals = list(refused_globals)
        shown = ", ".join(refused_globals[:5])
        more = f" and {len(refused_globals) - 5} more" if len(refused_globals) > 5 else ""
        super().__init__(file, f"refuses to load safely: uses {shown}{more}")
