"""The status of each checkpoint key in a comparison, and how bad each one is.

Members are strings (``StrEnum``), so the JSON report and any code comparing with
``"ok"`` see the same spellings as before. Definition order is the report's order
(``counts``); :attr:`KeyStatus.severity` ranks them for display (0 is the worst),
e.g. a module row showing the worst status found below it.
"""

from __future__ import annotations

from enum import StrEnum


class KeyStatus(StrEnum):
    OK = "ok"  # loads into the model as it is
    MISSING = "missing"  # the model expects it and the checkpoint lacks it (a ghost key)
    UNEXPECTED = "unexpected"  # the checkpoint has it and the model does not use it
    MISMATCHED = "mismatched"  # loads under a model key whose shape differs
    IGNORED = "ignored"  # dropped by the model's ignore lists; loads fine

    @property
    def severity(self) -> int:
        """0 for the worst status; larger is milder."""
        return _SEVERITY.index(self)

    @property
    def is_problem(self) -> bool:
        """Whether from_pretrained would report this key (missing, unexpected, mismatched)."""
        return self in _PROBLEMS

    @classmethod
    def by_severity(cls) -> tuple[KeyStatus, ...]:
        """Every status, the worst first."""
        return _SEVERITY


_SEVERITY = (
    KeyStatus.MISMATCHED,
    KeyStatus.MISSING,
    KeyStatus.UNEXPECTED,
    KeyStatus.OK,
    KeyStatus.IGNORED,
)
_PROBLEMS = frozenset({KeyStatus.MISSING, KeyStatus.UNEXPECTED, KeyStatus.MISMATCHED})
