"""The pickle-risk feature: a tab whose pickle was refused shows what the pickle would run.

A checkpoint that the weights-only loader refuses (``UnsafePickleError``) fails to
open; this feature puts the pickle-risk view (``UnsafePickleView``: the globals the
pickle imports and calls, and the verdict) under the tab's one-line error.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QObject

from ckpt_gui.core.errors import UnsafePickleError
from ckpt_gui.qt.inspect.checkpoint_tab import CheckpointTab
from ckpt_gui.qt.pickles.risk_view import UnsafePickleView
from ckpt_gui.qt.shell import Shell


class PickleRiskFeature(QObject):
    def __init__(self, shell: Shell) -> None:
        super().__init__(shell.main_widget())
        shell.tab_opened.connect(self._watch_tab)

    def _watch_tab(self, tab: CheckpointTab) -> None:
        tab.failed.connect(lambda _message, tab=tab: self.explain_failure(tab))

    @staticmethod
    def explain_failure(tab: CheckpointTab) -> None:
        """The risk view under the error of a tab whose local pickle was refused."""
        if isinstance(tab.exception, UnsafePickleError) and Path(tab.target).expanduser().exists():
            tab.set_error_details(UnsafePickleView(tab.target))


def register(shell: Shell) -> PickleRiskFeature:
    return PickleRiskFeature(shell)
