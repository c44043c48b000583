"""Cancel and dispose for a view that runs one background ``Worker`` at a time."""

from __future__ import annotations

from PySide6.QtWidgets import QLabel, QPushButton

from ckpt_gui.qt.runtime.workers import Worker


class CancellableWorkerView:
    """Mixin (list it before QWidget): the view sets these attributes itself."""

    _worker: Worker | None
    _disposed: bool
    cancelled: bool
    cancel_button: QPushButton
    progress_label: QLabel

    def cancel(self) -> None:
        """Stop the background work (results so far stay)."""
        if self._worker is not None:
            self.cancelled = True
            self._worker.quit()
            self.cancel_button.setEnabled(False)
            self.progress_label.setText("Cancelling…")

    def dispose(self) -> None:
        """Called when the tab closes: stop background work, drop late results."""
        self._disposed = True
        if self._worker is not None:
            self._worker.quit()
