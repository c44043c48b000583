"""The shell: features plug in through ``ckpt_gui.qt.shell.Shell``, one menu per right-click."""

from __future__ import annotations

import ast
import threading
from pathlib import Path

from PySide6.QtCore import QMimeData, QPoint, QPointF, Qt, QTimer, QUrl
from PySide6.QtGui import QAction, QContextMenuEvent, QDropEvent
from PySide6.QtWidgets import QApplication, QMenu, QPushButton, QWidget

import ckpt_gui
import ckpt_gui.qt.inspect.checkpoint_tab as checkpoint_tab
from ckpt_gui.core.targets import open_target_job
from ckpt_gui.qt.main_window import MainWindow
from ckpt_gui.qt.shell import Shell

QT_ROOT = Path(ckpt_gui.__file__).parent / "qt"
FEATURES = ("check", "diff", "export", "hub", "pickles", "scan")
TAB_MENU = [
    "Convert dtype…",
    "Re-shard…",
    "Convert to safetensors…",
    "Random-init model from config…",
    "Compare With…",
    "Scan All Tensors",
    "Close Tab",
]


def loaded_tab(qtbot, window, target: Path):
    tab = window.open_targets([str(target)])[0]
    qtbot.waitUntil(lambda: tab.checkpoint is not None, timeout=30_000)
    return tab


def right_click_tab(window, index: int) -> list[list[str]]:
    """Right-click tab ``index`` as Qt delivers it; the entries of every menu that opened.

    Each menu is closed as soon as it shows (``exec`` runs a nested event loop, where
    the timer fires), so this returns once every context-menu handler has finished.
    """
    bar = window.tab_widget.tabBar()
    shown: list[list[str]] = []

    def close_popup() -> None:
        popup = QApplication.activePopupWidget()
        if isinstance(popup, QMenu):
            shown.append([a.text() for a in popup.actions() if not a.isSeparator()])
            popup.close()

    timer = QTimer()
    timer.setInterval(20)
    timer.timeout.connect(close_popup)
    timer.start()
    position = bar.tabRect(index).center()
    event = QContextMenuEvent(QContextMenuEvent.Reason.Mouse, position, bar.mapToGlobal(position))
    QApplication.sendEvent(bar, event)
    QApplication.processEvents()  # a handler that pops up later would show now
    timer.stop()
    close_popup()
    return shown


def test_right_click_on_a_tab_opens_one_menu_with_every_features_entries(
    qtbot, window, llama_dir
) -> None:
    tab = loaded_tab(qtbot, window, llama_dir)
    shown = right_click_tab(window, window.tab_widget.indexOf(tab))
    assert shown == [TAB_MENU]  # one menu, not the export menu and then a second one


def test_the_tab_menu_is_built_from_contributions_in_registration_order(
    qtbot, window, llama_dir
) -> None:
    tab = loaded_tab(qtbot, window, llama_dir)
    menu = window.tab_menu(window.tab_widget.indexOf(tab))
    texts = [a.text() or "|" for a in menu.actions()]
    # Export's entries, diff's, scan's, then the shell's own, a separator between features.
    assert texts == [*TAB_MENU[:4], "|", TAB_MENU[4], "|", TAB_MENU[5], "|", "Close Tab"]
    menu.actions()[-1].trigger()
    assert window.tabs() == [] and window.current_tab() is None


def test_a_tab_still_loading_offers_exports_and_close_only(
    qtbot, window, llama_dir, monkeypatch
) -> None:
    gate = threading.Event()

    def held_open(target):
        gate.wait(60)
        return (yield from open_target_job(target))

    monkeypatch.setattr(checkpoint_tab, "open_target_job", held_open)
    tab = window.open_targets([str(llama_dir)])[0]
    menu = window.tab_menu(window.tab_widget.indexOf(tab))
    assert tab.checkpoint is None
    assert [a.text() for a in menu.actions() if not a.isSeparator()] == [
        *TAB_MENU[:4],
        "Close Tab",
    ]
    gate.set()
    qtbot.waitUntil(lambda: tab.checkpoint is not None, timeout=30_000)


class TinyFeature:
    """A feature as a newcomer would write one: everything through the Shell."""

    def __init__(self, shell: Shell) -> None:
        self.shell = shell
        self.busy = False
        self.may_close = False
        self.shut_down = 0
        self.dropped: list[list[str]] = []
        self.opened: list[object] = []
        self.action = shell.menu("&Tiny").addAction("Do it")
        self.open_action = QAction("Open from &Tiny…", shell.main_widget())
        shell.add_open_action(self.open_action)
        shell.add_tab_menu_entries(self.entries)
        shell.add_drop_handler(self.drop)
        shell.add_busy_check(lambda: self.busy)
        shell.add_close_guard(lambda: self.may_close)
        shell.add_shutdown_hook(self.shutdown)
        shell.tab_opened.connect(self.opened.append)

    def entries(self, menu: QMenu, page: QWidget) -> None:
        menu.addAction(f"Tiny on {type(page).__name__}")

    def drop(self, targets: list[str], _event: QDropEvent) -> bool:
        self.dropped.append(targets)
        return targets[0].endswith(".tiny")

    def shutdown(self) -> None:
        self.shut_down += 1


def welcome_buttons(window) -> list[str]:
    """The welcome page's buttons, left to right as laid out."""
    QApplication.processEvents()
    buttons = window.welcome.findChildren(QPushButton)
    return [b.text() for b in sorted(buttons, key=lambda b: b.mapTo(window, QPoint(0, 0)).x())]


def drop_paths(window, *paths: Path) -> None:
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(p)) for p in paths])
    window.dropEvent(
        QDropEvent(
            QPointF(10, 10),
            Qt.DropAction.CopyAction,
            mime,
            Qt.MouseButton.LeftButton,
            Qt.KeyboardModifier.NoModifier,
        )
    )


def test_a_feature_plugs_in_through_the_shell_alone(qtbot, settings, llama_dir, tmp_path) -> None:
    """A bare shell has no feature's menu; one registered feature gets every hook."""
    window = MainWindow(settings=settings)
    qtbot.addWidget(window)
    titles = [a.text() for a in window.menuBar().actions()]
    assert titles == ["&File", "&Edit", "&View", "&Help"]
    feature = TinyFeature(window)
    assert [a.text() for a in window.menuBar().actions()][-2:] == ["&Tiny", "&Help"]
    file_menu = [a.text() for a in window.menu("&File").actions()]
    assert file_menu.index("Open from &Tiny…") == file_menu.index("Open &Demo") - 1
    window.show()
    assert welcome_buttons(window) == [
        "Open File…",
        "Open Folder…",
        "Open from Tiny…",
        "Open the demo",
    ]

    tiny = tmp_path / "x.tiny"
    tiny.write_bytes(b"")
    drop_paths(window, tiny)
    assert feature.dropped == [[str(tiny)]] and window.tabs() == []  # taken over
    drop_paths(window, llama_dir)
    (tab,) = window.tabs()  # not taken: opened by the shell
    assert feature.opened == [tab]
    qtbot.waitUntil(lambda: tab.checkpoint is not None, timeout=30_000)
    menu = window.tab_menu(0)
    assert [a.text() for a in menu.actions() if not a.isSeparator()] == [
        "Tiny on CheckpointTab",
        "Close Tab",
    ]

    qtbot.waitUntil(window.is_idle, timeout=30_000)
    feature.busy = True
    assert not window.is_idle()
    feature.busy = False
    window.show()
    window.close()
    assert window.isVisible() and feature.shut_down == 0  # the guard said no
    feature.may_close = True
    window.close()
    assert not window.isVisible() and feature.shut_down == 1


def test_the_welcome_page_offers_each_features_open_action(qtbot, window, features) -> None:
    assert welcome_buttons(window) == [
        "Open File…",
        "Open Folder…",
        "Open from Hub…",
        "Open the demo",
    ]
    file_menu = [a.text() for a in window.menu("&File").actions() if a.text()]
    assert file_menu[:4] == ["&Open File…", "Open &Folder…", "Open from &Hub…", "Open &Demo"]


def imported_modules(path: Path) -> set[str]:
    """Every module ``path`` imports, at any depth of its code."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def test_the_main_window_imports_no_feature() -> None:
    imported = imported_modules(QT_ROOT / "main_window.py") | imported_modules(QT_ROOT / "shell.py")
    features = {m for m in imported for f in FEATURES if m.startswith(f"ckpt_gui.qt.{f}")}
    assert features == set()


def test_features_never_import_the_main_window_or_the_app() -> None:
    offenders = {
        str(path.relative_to(QT_ROOT)): sorted(
            m
            for m in imported_modules(path)
            if m.startswith(("ckpt_gui.qt.main_window", "ckpt_gui.qt.app"))
        )
        for feature in FEATURES
        for path in (QT_ROOT / feature).rglob("*.py")
    }
    assert {k: v for k, v in offenders.items() if v} == {}
