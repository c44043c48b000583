"""Pickle risk in the GUI: refused globals explained in the tab, nothing ever executed."""

from __future__ import annotations

import threading

from ckpt_gui.core.errors import UnsafePickleError
from ckpt_gui.core.pickles.risk import pickle_risk
from ckpt_gui.qt.inspect.summary import SummaryHeader
from ckpt_gui.qt.pickles import risk_view as pickle_risk_view
from ckpt_gui.qt.pickles.risk_view import PickleGlobalsToggle, UnsafePickleView
from tests.support.diffscan_data import evil_checkpoint


def test_refused_pickle_lists_its_globals(
    qtbot, qtmodeltester, window, tmp_path, marker, monkeypatch
):
    threads: list[threading.Thread] = []

    def recording(target):
        threads.append(threading.current_thread())
        return pickle_risk(target)

    monkeypatch.setattr(pickle_risk_view, "pickle_risk", recording)
    path = evil_checkpoint(tmp_path / "evil.pt", marker)
    (tab,) = window.open_targets([str(path)])
    qtbot.waitUntil(lambda: tab.error is not None, timeout=30_000)
    assert isinstance(tab.exception, UnsafePickleError)
    view = tab.findChild(UnsafePickleView)
    assert view is not None
    qtbot.waitUntil(lambda: view.report is not None, timeout=30_000)
    assert threads and threads[0] is not threading.main_thread()
    model = view.model
    rows = {
        model.index(r, 1).data(): (model.index(r, 0).data(), model.index(r, 2).data())
        for r in range(model.rowCount())
    }
    system = f"{__import__('os').system.__module__}.system"
    assert rows[system] == ("REFUSED", "runs a shell command (os.system)")
    assert rows["torch._utils._rebuild_tensor_v2"][0] == "allowed"
    assert model.index(0, 1).data() == system  # refused first
    notice = view.notice.text()
    assert "Not loaded, nothing executed" in notice and "no code in the file ran" in notice
    assert "1 refused" in view.status.text() and system in view.status.text()
    assert view.isVisibleTo(tab) and tab.error_label.isVisibleTo(tab)
    qtmodeltester.check(model)
    # Retry clears the explanation until the load fails again.
    tab.reload()
    assert tab.findChild(UnsafePickleView) is None or not tab.findChild(
        UnsafePickleView
    ).isVisibleTo(tab)
    qtbot.waitUntil(lambda: window.is_idle() and tab.error is not None, timeout=30_000)
    assert not marker.exists()


def test_loaded_pickle_shows_globals_in_the_summary(qtbot, qtmodeltester, window, llama_bin_dir):
    (tab,) = window.open_targets([str(llama_bin_dir)])
    qtbot.waitUntil(lambda: tab.checkpoint is not None and window.is_idle(), timeout=30_000)
    globals_ = tab.checkpoint.pickle_globals
    assert globals_ and all(g.allowed for g in globals_)
    header = tab.findChild(SummaryHeader)
    toggle = header.findChild(PickleGlobalsToggle)
    assert toggle is not None
    assert (
        toggle.toggle.text() == f"Pickle globals ({len(globals_)}, all allowed by the safe loader)"
    )
    assert not toggle.table.isVisibleTo(header)
    toggle.toggle.setChecked(True)
    assert toggle.table.isVisibleTo(header)
    names = [toggle.model.index(r, 1).data() for r in range(toggle.model.rowCount())]
    assert names == [g.name for g in globals_]
    qtmodeltester.check(toggle.model)


def test_safetensors_summary_has_no_pickle_entry(qtbot, window, llama_dir):
    (tab,) = window.open_targets([str(llama_dir)])
    qtbot.waitUntil(lambda: tab.checkpoint is not None and window.is_idle(), timeout=30_000)
    assert tab.findChild(PickleGlobalsToggle) is None
