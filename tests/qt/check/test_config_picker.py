"""The config picker: each kind of config resolves, edits become overrides, and
configs that need custom code are refused with the core's message."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar

import pytest

from ckpt_gui.core.errors import CheckpointError
from ckpt_gui.core.targets import open_target
from ckpt_gui.qt.check.config_picker import ConfigPicker, parse_value, seed_values
from ckpt_gui.qt.check.view_model import ConfigChoice, run_comparison
from tests.support.fake_hub import FakeHub, folder_files


@pytest.fixture()
def picker(qtbot, clean_dir: Path) -> Iterator[ConfigPicker]:
    dialog = ConfigPicker(open_target(clean_dir))
    qtbot.addWidget(dialog)
    yield dialog
    from ckpt_gui.qt.runtime.workers import shutdown_workers

    shutdown_workers()


@pytest.fixture()
def hub(clean_dir: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[FakeHub]:
    """A fake Hub on 127.0.0.1 serving the clean tiny Llama as org/tiny; no token, no cache."""
    fake = FakeHub()
    fake.add_repo("org/tiny", folder_files(clean_dir))
    fake.start()
    monkeypatch.setenv("HF_ENDPOINT", fake.endpoint)
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf-cache"))
    for name in ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "HF_HUB_OFFLINE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr("huggingface_hub.constants.HF_TOKEN_PATH", str(tmp_path / "no-token"))
    yield fake
    fake.stop()


def test_own_config_is_the_default(picker: ConfigPicker, clean_dir: Path) -> None:
    assert picker.kind == "own"
    choice = picker.choice()
    assert choice == ConfigChoice("own")
    config = choice.resolve(open_target(clean_dir))
    assert config.architecture == "LlamaForCausalLM"


def test_without_own_config_the_file_page_is_first(qtbot, tmp_path: Path, clean_dir: Path) -> None:
    (tmp_path / "model.safetensors").write_bytes((clean_dir / "model.safetensors").read_bytes())
    dialog = ConfigPicker(open_target(tmp_path / "model.safetensors"))
    qtbot.addWidget(dialog)
    assert dialog.kind == "path" and not dialog.pages.isTabEnabled(0)
    # The list of architectures still loads on its worker: let it end within the test.
    with qtbot.waitSignal(dialog.architectures_loaded, timeout=60_000):
        pass


def test_file_and_folder_resolve(picker: ConfigPicker, clean_dir: Path, tmp_path: Path) -> None:
    checkpoint = open_target(clean_dir)
    other = json.loads((clean_dir / "config.json").read_text())
    other["vocab_size"] = 80
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "config.json").write_text(json.dumps(other))
    picker.set_kind("path")
    picker.path_edit.setText(str(tmp_path / "other" / "config.json"))
    from_file = run_comparison(checkpoint, picker.choice()).report
    assert {m.key for m in from_file.mismatched} == {"model.embed_tokens.weight", "lm_head.weight"}
    picker.path_edit.setText(str(tmp_path / "other"))
    assert picker.choice() == ConfigChoice("path", str(tmp_path / "other"))
    assert run_comparison(checkpoint, picker.choice()).report.mismatched == from_file.mismatched
    picker.path_edit.setText(str(tmp_path / "nowhere"))
    with pytest.raises(CheckpointError, match="nowhere: no such file or folder"):
        picker.choice().resolve(checkpoint)


def test_architecture_with_an_edited_value(qtbot, picker: ConfigPicker, clean_dir: Path) -> None:
    picker.set_kind("architecture")
    # The list loads in the background from the picker's creation on; it may be there already.
    qtbot.waitUntil(lambda: picker.arch_combo.count() > 0, timeout=60_000)
    # Searchable: a substring finds matching classes anywhere in the name.
    completer = picker.arch_combo.completer()
    completer.setCompletionPrefix("llamaforcausal")
    found = {
        completer.completionModel().index(r, 0).data() for r in range(completer.completionCount())
    }
    assert "LlamaForCausalLM" in found and "BertModel" not in found
    # The checkpoint declares LlamaForCausalLM: it is preselected and its values seed the table.
    assert picker.arch_combo.currentText() == "LlamaForCausalLM"
    qtbot.waitUntil(lambda: picker.values_table.rowCount() > 0, timeout=60_000)
    values = {
        picker.values_table.item(r, 0).text(): parse_value(picker.values_table.item(r, 1).text())
        for r in range(picker.values_table.rowCount())
    }
    assert values["hidden_size"] == 32 and values["num_hidden_layers"] == 2  # not the defaults
    assert picker.overrides() == {}
    picker.set_value("num_hidden_layers", "3")
    choice = picker.choice()
    assert choice == ConfigChoice("architecture", "LlamaForCausalLM", {"num_hidden_layers": 3})
    report = run_comparison(open_target(clean_dir), choice).report
    assert report.missing and all(k.startswith("model.layers.2.") for k in report.missing)


def test_seed_values_use_the_checkpoint_only_for_its_family() -> None:
    class Fake:
        config: ClassVar[dict[str, object]] = {"model_type": "llama", "hidden_size": 32}

    assert seed_values({"model_type": "llama", "hidden_size": 4096}, Fake())["hidden_size"] == 32
    assert seed_values({"model_type": "bert", "hidden_size": 768}, Fake())["hidden_size"] == 768


def test_hub_repo_resolves_against_the_fake_hub(
    qtbot, picker: ConfigPicker, hub: FakeHub, clean_dir: Path
) -> None:
    picker.set_kind("hub")
    picker.hub_edit.setText(" org/tiny@main ")
    choice = picker.choice()
    assert choice == ConfigChoice("hub", "org/tiny@main")
    result = run_comparison(open_target(clean_dir), choice)
    assert result.report.clean and result.report.config.source == "hub:org/tiny@main"
    # The server logs a request after sending it: wait for the log, not for a time.
    qtbot.waitUntil(lambda: bool(hub.requests_for("config.json")), timeout=30_000)
    picker.hub_edit.setText("org/not-there")
    with pytest.raises(CheckpointError):
        picker.choice().resolve(open_target(clean_dir))


def test_remote_code_config_is_refused(remote_code_dir: Path) -> None:
    checkpoint = open_target(remote_code_dir)
    for choice in (ConfigChoice("own"), ConfigChoice("path", str(remote_code_dir))):
        with pytest.raises(CheckpointError, match="custom code") as error:
            run_comparison(checkpoint, choice)
        assert "\n" not in str(error.value)
    # The way out: a built-in architecture, with the same weights.
    assert run_comparison(checkpoint, ConfigChoice("architecture", "LlamaForCausalLM")).report.clean


def test_edited_values_stand_out_and_the_table_filters(qtbot, picker: ConfigPicker) -> None:
    picker.set_kind("architecture")
    qtbot.waitUntil(lambda: picker.values_table.rowCount() > 0, timeout=60_000)
    table = picker.values_table
    row = next(r for r in range(table.rowCount()) if table.item(r, 0).text() == "vocab_size")
    assert not table.item(row, 1).font().bold()
    picker.set_value("vocab_size", "80")
    assert table.item(row, 1).font().bold()
    picker.set_value("vocab_size", "64")  # back to the checkpoint's value: no override
    assert not table.item(row, 1).font().bold() and picker.overrides() == {}
    picker.values_filter.setText("vocab")
    shown = [table.item(r, 0).text() for r in range(table.rowCount()) if not table.isRowHidden(r)]
    assert shown == ["vocab_size"]
    keys = {table.item(r, 0).text() for r in range(table.rowCount())}
    assert "model_type" not in keys and "architectures" not in keys


def test_closing_the_picker_while_it_loads_is_harmless(qtbot, clean_dir: Path) -> None:
    from PySide6.QtCore import Qt

    from ckpt_gui.qt.runtime.workers import active_workers

    dialog = ConfigPicker(open_target(clean_dir))
    dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
    dialog.set_kind("architecture")
    dialog.load_values("LlamaForCausalLM")  # a second loader, also running
    dialog.open()
    dialog.reject()
    # Workers leave active_workers() on the last of their queued signals: by then the
    # loaders' results have arrived, after the dialog was gone, and were harmless.
    qtbot.waitUntil(lambda: not active_workers(), timeout=60_000)
