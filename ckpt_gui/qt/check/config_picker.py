""" "Compare with config…": choose what to compare the checkpoint with.

Four pages: the checkpoint's own config.json (the default when it has one), a local
config.json or model folder, a Hub repo id (``org/name[@rev]``), or an architecture
from the transformers registry with its config values editable. The architecture
list and default values need transformers, so they load on Worker threads; edits in
the values table become ``overrides``. ``choice()`` returns a ``ConfigChoice``; the
config itself is resolved later, with the comparison, off the GUI thread.
"""

from __future__ import annotations

import json
from typing import Any

import shiboken6
from PySide6.QtCore import QStringListModel, Qt, Signal
from PySide6.QtGui import QColor, QFont
from PySide6.QtWidgets import (
    QComboBox,
    QCompleter,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from ckpt_gui.core.check.expected import available_architectures, default_config_values
from ckpt_gui.core.model import Checkpoint
from ckpt_gui.qt.check.view_model import ConfigChoice
from ckpt_gui.qt.runtime.signals import signals_blocked
from ckpt_gui.qt.runtime.workers import Worker, describe_error

PAGES = ("own", "path", "hub", "architecture")
# Not worth editing here: bookkeeping, or fixed by the architecture chosen.
HIDDEN_KEYS = frozenset({"_name_or_path", "architectures", "model_type", "transformers_version"})
EDITED_BACKGROUND = QColor(255, 243, 205)


def seed_values(defaults: dict[str, Any], checkpoint: Checkpoint | None) -> dict[str, Any]:
    """The values a comparison would start from: the checkpoint's own config when it is
    for the same model family (as ``resolve_config`` does), else the defaults."""
    own = dict(checkpoint.config) if checkpoint is not None and checkpoint.config else {}
    if own and own.get("model_type") == defaults.get("model_type"):
        return {**defaults, **own}
    return dict(defaults)


def parse_value(text: str) -> Any:
    """A cell's text as JSON when it parses (numbers, true, null, lists), else a string."""
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


class ConfigPicker(QDialog):
    """Modal picker; ``choice()`` after ``accept``."""

    architectures_loaded = Signal()
    values_loaded = Signal()

    def __init__(
        self,
        checkpoint: Checkpoint | None,
        current: ConfigChoice | None = None,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.setWindowTitle("Compare with config")
        self.checkpoint = checkpoint
        self._seed: dict[str, Any] = {}
        self._values_worker: Worker | None = None
        self.error = ""

        self.pages = QTabWidget()
        self.pages.addTab(self._own_page(), "Own config.json")
        self.pages.addTab(self._path_page(), "File or folder")
        self.pages.addTab(self._hub_page(), "Hub repo")
        self.pages.addTab(self._architecture_page(), "Architecture")
        has_own = checkpoint is not None and checkpoint.config is not None
        self.pages.setTabEnabled(0, has_own)

        self.buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel
        )
        self.buttons.button(QDialogButtonBox.StandardButton.Ok).setText("Compare")
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(self.pages)
        layout.addWidget(self.buttons)
        self.resize(620, 480)

        self.set_kind("own" if has_own else "path")
        if current is not None:
            self.set_kind(current.kind)
            if current.kind == "path":
                self.path_edit.setText(current.spec or "")
            elif current.kind == "hub":
                self.hub_edit.setText(current.spec or "")
            elif current.kind == "architecture":
                self.arch_combo.setEditText(current.spec or "")
        self._architectures_worker = Worker(available_architectures)
        self._architectures_worker.returned.connect(self._architectures_ready)
        self._architectures_worker.errored.connect(
            lambda error: self._show_arch_error(describe_error(error))
        )
        self._architectures_worker.start()

    # -- public API ----------------------------------------------------------------------
    def set_kind(self, kind: str) -> None:
        self.pages.setCurrentIndex(PAGES.index(kind))

    @property
    def kind(self) -> str:
        return PAGES[self.pages.currentIndex()]

    def choice(self) -> ConfigChoice:
        kind = self.kind
        if kind == "own":
            return ConfigChoice("own")
        if kind == "path":
            return ConfigChoice("path", self.path_edit.text().strip())
        if kind == "hub":
            return ConfigChoice("hub", self.hub_edit.text().strip())
        return ConfigChoice("architecture", self.arch_combo.currentText().strip(), self.overrides())

    def overrides(self) -> dict[str, Any]:
        """Values edited in the table (compared with what it was seeded with)."""
        result: dict[str, Any] = {}
        for row in range(self.values_table.rowCount()):
            key_item = self.values_table.item(row, 0)
            value_item = self.values_table.item(row, 1)
            if key_item is None or value_item is None:
                continue
            key = key_item.text()
            value = parse_value(value_item.text())
            if key not in self._seed or value != self._seed[key]:
                result[key] = value
        return result

    def set_value(self, key: str, text: str) -> None:
        """Edit one value (as a user typing into the table would)."""
        for row in range(self.values_table.rowCount()):
            item = self.values_table.item(row, 0)
            if item is not None and item.text() == key:
                cell = self.values_table.item(row, 1)
                if cell is not None:
                    cell.setText(text)
                return
        raise KeyError(key)

    def load_values(self, architecture: str) -> None:
        """Fetch ``architecture``'s default config values (worker) and show them."""
        if self._values_worker is not None:
            self._values_worker.quit()
        self.values_note.setText(f"Loading the config values of {architecture}…")
        worker = Worker(default_config_values, architecture)
        worker.returned.connect(lambda values, w=worker: self._values_ready(w, values))
        worker.errored.connect(lambda error, w=worker: self._values_failed(w, error))
        self._values_worker = worker
        worker.start()

    # -- pages -----------------------------------------------------------------------------
    def _own_page(self) -> QWidget:
        page = QWidget()
        layout = QVBoxLayout(page)
        text = "Compare with the config.json that comes with this checkpoint."
        if self.checkpoint is not None and self.checkpoint.config is None:
            text = "This checkpoint has no config.json."
        label = QLabel(text)
        label.setWordWrap(True)
        layout.addWidget(label)
        layout.addStretch(1)
        return page

    def _path_page(self) -> QWidget:
        page = QWidget()
        layout = QVBoxLayout(page)
        layout.addWidget(QLabel("A config.json, or a model folder that holds one:"))
        self.path_edit = QLineEdit()
        self.path_edit.setPlaceholderText("/path/to/config.json or /path/to/model-folder")
        row = QHBoxLayout()
        row.addWidget(self.path_edit, 1)
        file_button = QPushButton("File…")
        file_button.clicked.connect(self._browse_file)
        folder_button = QPushButton("Folder…")
        folder_button.clicked.connect(self._browse_folder)
        row.addWidget(file_button)
        row.addWidget(folder_button)
        layout.addLayout(row)
        layout.addStretch(1)
        return page

    def _hub_page(self) -> QWidget:
        page = QWidget()
        layout = QVBoxLayout(page)
        layout.addWidget(
            QLabel("Repo id, optionally with a revision (only config.json is fetched):")
        )
        self.hub_edit = QLineEdit()
        self.hub_edit.setPlaceholderText("meta-llama/Llama-3.2-1B  or  org/name@revision")
        layout.addWidget(self.hub_edit)
        layout.addStretch(1)
        return page

    def _architecture_page(self) -> QWidget:
        page = QWidget()
        layout = QVBoxLayout(page)
        layout.addWidget(QLabel("Model class from the transformers registry (type to search):"))
        self.arch_combo = QComboBox()
        self.arch_combo.setEditable(True)
        self.arch_combo.setInsertPolicy(QComboBox.InsertPolicy.NoInsert)
        self.arch_edit = QLineEdit()
        self.arch_edit.setPlaceholderText("Loading architectures…")
        self.arch_combo.setLineEdit(self.arch_edit)
        self._arch_model = QStringListModel(self)
        completer = QCompleter(self._arch_model, self)
        completer.setFilterMode(Qt.MatchFlag.MatchContains)
        completer.setCaseSensitivity(Qt.CaseSensitivity.CaseInsensitive)
        self.arch_combo.setCompleter(completer)
        self.arch_combo.activated.connect(lambda _i: self._architecture_chosen())
        self.arch_edit.editingFinished.connect(self._architecture_chosen)
        layout.addWidget(self.arch_combo)
        self.values_note = QLabel("Config values (edit to override):")
        self.values_note.setWordWrap(True)
        layout.addWidget(self.values_note)
        self.values_filter = QLineEdit()
        self.values_filter.setPlaceholderText("Filter keys (e.g. size, layers)…")
        self.values_filter.setClearButtonEnabled(True)
        self.values_filter.textChanged.connect(self._filter_values)
        layout.addWidget(self.values_filter)
        self.values_table = QTableWidget(0, 2)
        self.values_table.setHorizontalHeaderLabels(["Key", "Value"])
        self.values_table.verticalHeader().setVisible(False)
        self.values_table.verticalHeader().setDefaultSectionSize(22)
        self.values_table.setAlternatingRowColors(True)
        self.values_table.itemChanged.connect(self._mark_edited)
        self.values_table.horizontalHeader().setSectionResizeMode(1, QHeaderView.ResizeMode.Stretch)
        self.values_table.horizontalHeader().resizeSection(0, 220)
        layout.addWidget(self.values_table, 1)
        return page

    # -- slots -----------------------------------------------------------------------------
    def _browse_file(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Config", "", "Config (*.json);;All files (*)")
        if path:
            self.path_edit.setText(path)

    def _browse_folder(self) -> None:
        path = QFileDialog.getExistingDirectory(self, "Model folder")
        if path:
            self.path_edit.setText(path)

    def done(self, result: int) -> None:
        # Closing (and, with WA_DeleteOnClose, deleting) the dialog: stop the loaders.
        self._architectures_worker.quit()
        if self._values_worker is not None:
            self._values_worker.quit()
        super().done(result)

    def _alive(self) -> bool:
        """False once the dialog was deleted; a loader's late result is then dropped."""
        return shiboken6.isValid(self) and shiboken6.isValid(self.values_table)

    def _architectures_ready(self, names: list[str]) -> None:
        if not self._alive():
            return
        current = self.arch_combo.currentText()
        self._arch_model.setStringList(names)
        with signals_blocked(self.arch_combo):
            self.arch_combo.addItems(names)
            self.arch_combo.setEditText(current or self._suggested_architecture(names))
        self.arch_edit.setPlaceholderText("e.g. LlamaForCausalLM")
        self.architectures_loaded.emit()
        if self.arch_combo.currentText() in names:
            self.load_values(self.arch_combo.currentText())

    def _suggested_architecture(self, names: list[str]) -> str:
        config = self.checkpoint.config if self.checkpoint is not None else None
        declared = (config or {}).get("architectures") or []
        if declared and isinstance(declared[0], str) and declared[0] in names:
            return declared[0]
        return ""

    def _show_arch_error(self, message: str) -> None:
        if not self._alive():
            return
        self.error = message
        self.values_note.setText(f"<span style='color:#c62828'>{message}</span>")

    def _architecture_chosen(self) -> None:
        name = self.arch_combo.currentText().strip()
        if name and name in self._arch_model.stringList():
            self.load_values(name)

    def _values_ready(self, worker: Worker, values: dict[str, Any]) -> None:
        if worker is not self._values_worker or not self._alive():
            return  # a later choice superseded this one, or the dialog is gone
        self._values_worker = None
        # Through JSON once, as the table shows it, so that an untouched cell (say
        # id2label, whose int keys JSON turns into strings) is never an override.
        self._seed = json.loads(json.dumps(seed_values(values, self.checkpoint), default=str))
        table = self.values_table
        shown = sorted((k, v) for k, v in self._seed.items() if k not in HIDDEN_KEYS)
        with signals_blocked(table):
            table.setRowCount(0)
            table.setRowCount(len(shown))
            for row, (key, value) in enumerate(shown):
                key_item = QTableWidgetItem(key)
                key_item.setFlags(key_item.flags() & ~Qt.ItemFlag.ItemIsEditable)
                table.setItem(row, 0, key_item)
                table.setItem(row, 1, QTableWidgetItem(json.dumps(value)))
        self._filter_values(self.values_filter.text())
        own = self.checkpoint.config if self.checkpoint is not None else None
        source = (
            "this checkpoint's config.json"
            if own and own.get("model_type") == values.get("model_type")
            else f"the {self.arch_combo.currentText()} defaults"
        )
        self.values_note.setText(f"Config values from {source} (edit to override):")
        self.values_loaded.emit()

    def _mark_edited(self, item: QTableWidgetItem) -> None:
        """Edited values stand out (bold, tinted): they are what becomes an override."""
        if item.column() != 1:
            return
        key_item = self.values_table.item(item.row(), 0)
        key = key_item.text() if key_item is not None else ""
        edited = key not in self._seed or parse_value(item.text()) != self._seed[key]
        font = QFont(item.font())
        font.setBold(edited)
        with signals_blocked(self.values_table):
            item.setFont(font)
            item.setBackground(EDITED_BACKGROUND if edited else QColor(0, 0, 0, 0))

    def _filter_values(self, text: str) -> None:
        needle = text.strip().lower()
        for row in range(self.values_table.rowCount()):
            item = self.values_table.item(row, 0)
            hidden = bool(needle) and (item is None or needle not in item.text().lower())
            self.values_table.setRowHidden(row, hidden)

    def _values_failed(self, worker: Worker, error: BaseException) -> None:
        if worker is self._values_worker and self._alive():
            self._values_worker = None
            self._show_arch_error(describe_error(error))
