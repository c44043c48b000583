"""The summary header of a checkpoint tab: format, files, totals, dtypes, metadata."""

from __future__ import annotations

import html
import json
from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QLabel, QPlainTextEdit, QToolButton, QVBoxLayout, QWidget

from ckpt_gui.core.formatting import human_bytes, human_count
from ckpt_gui.core.model import Checkpoint


def summary_html(checkpoint: Checkpoint) -> str:
    """Two or three short lines; everything a glance needs."""
    total = checkpoint.total_parameters
    dtypes = ", ".join(
        f"{dtype} {human_count(count)} ({count / total:.0%})" if total else dtype
        for dtype, count in checkpoint.parameters_by_dtype.items()
    )
    files = len(checkpoint.files)
    architecture = ""
    if checkpoint.config:
        names = checkpoint.config.get("architectures") or [checkpoint.config.get("model_type")]
        if names and names[0]:
            architecture = f" · {html.escape(str(names[0]))}"
    lines = [
        f"<b>{html.escape(checkpoint.source)}</b>",
        f"{html.escape(checkpoint.format)}{architecture} · {files} file{'s' * (files != 1)}"
        f" · {len(checkpoint.tensors):,} tensors"
        f" · <b>{human_count(total)}</b> parameters ({total:,})"
        f" · <b>{human_bytes(checkpoint.total_bytes)}</b>",
        f"<span style='color:#777'>by dtype:</span> {html.escape(dtypes) or '—'}",
    ]
    if checkpoint.adapter is not None:
        from ckpt_gui.qt.adapters.facts import adapter_html

        lines.append(adapter_html(checkpoint.adapter))
    tag = tag_html(checkpoint)
    if tag:
        lines.append(tag)
    facts = checkpoint.metadata.get("hub")
    if isinstance(facts, dict):
        lines.append(hub_facts_html(facts))
    quantization = checkpoint.quantization
    if quantization is not None:
        lines.append(
            f"<span style='color:#777'>quantized:</span> "
            f"{html.escape(quantization.scheme.describe())} · {len(quantization.modules)} modules"
            f" · {len(quantization.bookkeeping)} bookkeeping tensors not counted as parameters"
        )
    for warning in checkpoint.all_warnings[:3]:
        lines.append(f"<span style='color:#b26a00'>⚠ {html.escape(warning)}</span>")
    return "<br>".join(lines)


def tag_html(checkpoint: Checkpoint) -> str:
    """DeepSpeed: the tag shown, whether ``latest`` names it, and how many tags there are."""
    from ckpt_gui.core.formats.distributed.checkpoint import tag_choice

    choice = tag_choice(checkpoint)
    if choice is None:
        return ""
    tag = f"<b>{html.escape(choice.tag)}</b>"
    if choice.latest == choice.tag:
        said = f"{tag}, the one <code>latest</code> names"
    elif choice.latest:
        said = f"{tag} (<code>latest</code> names {html.escape(choice.latest)})"
    else:
        said = f"{tag} (no <code>latest</code> file)"
    count = len(choice.tags)
    return (
        f"<span style='color:#777'>DeepSpeed tag:</span> {said} · {count} tag{'s' * (count != 1)}"
    )


def hub_facts_html(facts: dict[str, Any]) -> str:
    """One line of repo facts from ``metadata["hub"]``: commit, access, what the read cost."""
    parts = [f"revision {html.escape(str(facts.get('revision') or 'main'))}"]
    commit = facts.get("commit")
    if commit:
        parts.append(f"commit <code>{html.escape(str(commit)[:12])}</code>")
    gated = facts.get("gated")
    if gated:
        parts.append(f"<b>gated</b> ({html.escape(str(gated))})")
    if facts.get("private"):
        parts.append("<b>private</b>")
    if facts.get("repo_files") is not None:
        size = human_bytes(int(facts.get("repo_size") or 0))
        parts.append(f"repo: {facts['repo_files']} files, {size}")
    if facts.get("opened_from") == "cache":
        parts.append("opened from the local cache")
    elif facts.get("requests") is not None:
        received = human_bytes(int(facts.get("bytes_received") or 0))
        parts.append(f"read {received} in {facts['requests']} requests (headers only)")
    return "<span style='color:#777'>Hub:</span> " + " · ".join(parts)


def metadata_text(checkpoint: Checkpoint) -> str:
    """Safetensors ``__metadata__`` and training-checkpoint metadata, as indented JSON."""
    if not checkpoint.metadata:
        return ""
    return json.dumps(_plain(dict(checkpoint.metadata)), indent=2, ensure_ascii=False)


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return repr(value)


class SummaryHeader(QWidget):
    """Summary lines plus a toggle that reveals the metadata."""

    def __init__(
        self, checkpoint: Checkpoint, summary: str | None = None, parent: QWidget | None = None
    ) -> None:
        super().__init__(parent)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(8, 6, 8, 2)
        layout.setSpacing(2)
        # ``summary`` is summary_html(checkpoint), precomputed off the GUI thread if given.
        self.label = QLabel(summary if summary is not None else summary_html(checkpoint))
        self.label.setTextFormat(Qt.TextFormat.RichText)
        self.label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.label.setWordWrap(True)
        layout.addWidget(self.label)
        text = metadata_text(checkpoint)
        self.metadata_view = QPlainTextEdit(text)
        self.metadata_view.setReadOnly(True)
        self.metadata_view.setMaximumHeight(140)
        self.metadata_view.setVisible(False)
        self.toggle = QToolButton()
        keys = len(checkpoint.metadata)
        self.toggle.setText(f"Metadata ({keys} key{'s' * (keys != 1)})")
        self.toggle.setCheckable(True)
        self.toggle.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        self.toggle.setArrowType(Qt.ArrowType.RightArrow)
        self.toggle.setAutoRaise(True)
        self.toggle.toggled.connect(self._toggled)
        self.toggle.setVisible(bool(text))
        layout.addWidget(self.toggle)
        layout.addWidget(self.metadata_view)
        if checkpoint.pickle_globals:
            from ckpt_gui.qt.pickles.risk_view import PickleGlobalsToggle

            self.pickle_globals = PickleGlobalsToggle(checkpoint.pickle_globals, checkpoint.source)
            layout.addWidget(self.pickle_globals)

    def _toggled(self, shown: bool) -> None:
        self.metadata_view.setVisible(shown)
        self.toggle.setArrowType(Qt.ArrowType.DownArrow if shown else Qt.ArrowType.RightArrow)
