"""Download a remotely inspected Hub repo's weights into the Hugging Face cache.

``DownloadBar`` sits above the summary of a tab whose checkpoint was read from the
Hub without local files (``remote_hub_ref``). Its button opens ``DownloadDialog``:

1. the plan (``hub_download.plan_download``) is fetched on a Worker and shown with
   its size and the free disk space; more than the free space cannot be started;
2. "Download" runs ``download_job(plan)`` on a Worker with a progress bar; Cancel
   closes the job, which removes the half-written file (finished files stay);
3. when done, "Reopen from cache" reloads the tab, which now finds the commit on disk.
"""

from __future__ import annotations

import html
from collections.abc import Callable
from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QDialog,
    QFrame,
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from ckpt_gui.core.formatting import human_bytes
from ckpt_gui.core.hub.download import DownloadPlan, download_job, plan_download
from ckpt_gui.core.hub.ref import HubRef, parse_hub_target
from ckpt_gui.core.jobs import Progress
from ckpt_gui.core.model import Checkpoint
from ckpt_gui.qt.runtime.workers import Worker, describe_error

LARGE_DOWNLOAD = 5 * 1000**3  # as the CLI: above this, the dialog says so in bold
BAR_STEPS = 1000  # QProgressBar holds an int32: bytes of a 100 GB repo would overflow it


def remote_hub_ref(checkpoint: Checkpoint) -> HubRef | None:
    """The repo of a checkpoint read from the Hub without local files, else None."""
    facts = checkpoint.metadata.get("hub")
    if not isinstance(facts, dict) or checkpoint.root is not None:
        return None
    ref = parse_hub_target(checkpoint.source)
    if ref is not None and ref.repo_id == facts.get("repo_id"):
        return ref
    repo_id = facts.get("repo_id")
    return HubRef(str(repo_id), facts.get("revision")) if repo_id else None


class DownloadBar(QFrame):
    """A "weights not downloaded" strip with a Download button; ``reopen`` reloads the tab.

    ``downloaded(Path)`` fires with the snapshot folder when a download completes.
    """

    downloaded = Signal(object)

    def __init__(
        self,
        ref: HubRef,
        reopen: Callable[[], None],
        pytorch: bool = False,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.ref = ref
        self._reopen = reopen
        self.dialog: DownloadDialog | None = None
        self.setObjectName("downloadBar")
        self.setStyleSheet(
            "#downloadBar { background: #fff4e0; border: 1px solid #f0c36d; border-radius: 4px; }"
        )
        layout = QHBoxLayout(self)
        layout.setContentsMargins(8, 4, 8, 4)
        what = (
            "PyTorch weights: shapes read from the pickle alone"
            if pytorch
            else "Inspected from the Hub headers"
        )
        self.label = QLabel(f"{what}; tensor values need the weights on disk.")
        layout.addWidget(self.label, 1)
        self.button = QPushButton("Download weights…")
        self.button.clicked.connect(self.open_dialog)
        layout.addWidget(self.button)

    def open_dialog(self) -> DownloadDialog:
        if self.dialog is None or not self.dialog.isVisible():
            self.dialog = DownloadDialog(self.ref, self.window())
            self.dialog.reopen_requested.connect(self._reopen)
            self.dialog.downloaded.connect(self.downloaded)
            self.dialog.show()
        self.dialog.raise_()
        return self.dialog

    def close_dialog(self) -> None:
        """Close the dialog; a running download is cancelled (its partial file removed)."""
        if self.dialog is not None and self.dialog.isVisible():
            self.dialog.reject()


def _plan_with_free_space(ref: HubRef, cache_dir: Path | None) -> tuple[DownloadPlan, int]:
    plan = plan_download(ref, cache_dir=cache_dir)
    return plan, plan.free_bytes()


class DownloadDialog(QDialog):
    """Plan, confirm, download with progress and Cancel, then offer to reopen.

    ``state`` is one of planning, confirm, downloading, cancelling, done, cancelled, failed.
    """

    reopen_requested = Signal()
    state_changed = Signal(str)
    downloaded = Signal(object)

    def __init__(
        self, ref: HubRef, parent: QWidget | None = None, cache_dir: Path | None = None
    ) -> None:
        super().__init__(parent)
        self.ref = ref
        self.plan: DownloadPlan | None = None
        self.snapshot: Path | None = None
        self.state = ""
        self._worker: Worker | None = None
        self.setWindowTitle(f"Download {ref.repo_id}")
        self.setMinimumWidth(520)
        layout = QVBoxLayout(self)
        self.message = QLabel()
        self.message.setWordWrap(True)
        self.message.setTextFormat(Qt.TextFormat.RichText)
        self.message.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        layout.addWidget(self.message)
        self.bar = QProgressBar()
        self.bar.setRange(0, BAR_STEPS)
        self.bar.setVisible(False)
        layout.addWidget(self.bar)
        self.detail = QLabel()
        self.detail.setStyleSheet("color: #666;")
        layout.addWidget(self.detail)
        buttons = QHBoxLayout()
        buttons.addStretch(1)
        self.download_button = QPushButton("Download")
        self.download_button.setDefault(True)
        self.download_button.clicked.connect(self.start_download)
        self.reopen_button = QPushButton("Reopen from cache")
        self.reopen_button.clicked.connect(self._reopen)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.clicked.connect(self.cancel)
        for button in (self.download_button, self.reopen_button, self.cancel_button):
            buttons.addWidget(button)
        layout.addLayout(buttons)
        self._set_state("planning", f"Asking the Hub which files {html.escape(str(ref))} needs…")
        self._run(_plan_with_free_space, ref, cache_dir, on_returned=self._planned)

    # -- phases ----------------------------------------------------------------------------------
    def _planned(self, result: tuple[DownloadPlan, int]) -> None:
        plan, free = result
        self.plan = plan
        total = plan.total_bytes
        files = "".join(
            f"<li>{html.escape(name)} — {human_bytes(size)}</li>"
            for name, size in list(zip(plan.files, plan.sizes, strict=True))[:8]
        )
        more = f"<li>… and {len(plan.files) - 8} more</li>" if len(plan.files) > 8 else ""
        text = (
            f"<b>{html.escape(plan.ref.repo_id)}</b> at commit {plan.commit[:12]}: "
            f"{len(plan.files)} file{'s' * (len(plan.files) != 1)}, <b>{human_bytes(total)}</b>"
            f"<ul style='margin:2px'>{files}{more}</ul>"
            f"into {html.escape(str(plan.cache_dir))} ({human_bytes(free)} free)."
        )
        if total > free:
            text += "<br><span style='color:#c62828'><b>Not enough free disk space.</b></span>"
        elif total > LARGE_DOWNLOAD:
            text += f"<br><b>This is a large download ({human_bytes(total)}).</b>"
        self._set_state("confirm", text)
        self.download_button.setEnabled(total <= free)

    def start_download(self) -> None:
        if self.plan is None or self.state != "confirm":
            return
        self.bar.setValue(0)
        self._set_state("downloading", self.message.text())
        self._run(
            download_job,
            self.plan,
            on_returned=self._downloaded,
            on_yielded=self._progress,
            on_aborted=self._cancelled,
        )

    def _progress(self, progress: object) -> None:
        if not isinstance(progress, Progress):
            return
        self.bar.setValue(round(progress.fraction * BAR_STEPS))
        self.detail.setText(
            f"{human_bytes(progress.done)} / {human_bytes(progress.total)} · {progress.message}"
        )

    def _downloaded(self, snapshot: Path) -> None:
        self.snapshot = Path(snapshot)
        self.bar.setValue(BAR_STEPS)
        self._set_state(
            "done",
            f"Downloaded into the cache:<br><code>{html.escape(str(self.snapshot))}</code>"
            "<br>Reopen the tab from the cache to read tensor values.",
        )
        self.downloaded.emit(self.snapshot)

    def cancel(self) -> None:
        """Stop a running download (its half-written file is removed), else close."""
        if self.state == "downloading" and self._worker is not None:
            self._worker.quit()
            self._set_state("cancelling", "Cancelling… (removing the half-written file)")
        elif self.state != "cancelling":
            self.reject()

    def _cancelled(self) -> None:
        self._set_state(
            "cancelled",
            "Cancelled. The half-written file was removed; files that had finished stay in "
            "the cache (a new download skips them).",
        )

    def _failed(self, error: BaseException) -> None:
        message = describe_error(error)
        self._set_state("failed", f"<span style='color:#c62828'>{html.escape(message)}</span>")

    def _reopen(self) -> None:
        self.reopen_requested.emit()
        self.accept()

    def reject(self) -> None:
        # Closing the window (Esc, the title bar) while downloading cancels the transfer.
        if self._worker is not None and self.state in ("planning", "downloading"):
            self._worker.quit()
        super().reject()

    # -- helpers ---------------------------------------------------------------------------------
    def _set_state(self, state: str, text: str) -> None:
        self.state = state
        self.message.setText(text)
        downloading = state in ("downloading", "cancelling")
        self.bar.setVisible(downloading or state == "done")
        self.download_button.setVisible(state == "confirm")
        self.reopen_button.setVisible(state == "done")
        self.cancel_button.setText(
            "Close" if state in ("done", "cancelled", "failed") else "Cancel"
        )
        self.cancel_button.setEnabled(state != "cancelling")
        self.state_changed.emit(state)

    def _run(
        self,
        func: Callable[..., Any],
        *args: Any,
        on_returned: Callable[[Any], None],
        on_yielded: Callable[[object], None] | None = None,
        on_aborted: Callable[[], None] | None = None,
    ) -> None:
        worker = Worker(func, *args)
        worker.returned.connect(on_returned)
        worker.errored.connect(self._failed)
        if on_yielded is not None:
            worker.yielded.connect(on_yielded)
        if on_aborted is not None:
            worker.aborted.connect(on_aborted)
        worker.finished.connect(lambda: self._worker_done(worker))
        self._worker = worker
        worker.start()

    def _worker_done(self, worker: Worker) -> None:
        if self._worker is worker:
            self._worker = None

    @property
    def is_busy(self) -> bool:
        return self._worker is not None
