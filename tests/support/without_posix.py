"""Run ckpt-gui as on Windows/macOS: no ``fcntl``, none of Linux's positional I/O calls.

Used as a script by tests/cli/test_without_posix.py::

    python -m tests.support.without_posix REPORT.json '[["inspect", ...], ...]' [STATS_FILE]

Before anything of ckpt_gui is imported, ``fcntl`` is taken out of
``sys.modules`` and a meta path hook makes every later ``import fcntl`` raise
ImportError (as on Windows); the ``os`` functions Windows lacks are deleted.
Then every ckpt_gui module is imported, each CLI argv list is run in-process
(``cli.main``), and the statistics of one tensor are computed; the report
holds each verb's exit code and stdout, and what the block observed.
"""

from __future__ import annotations

import contextlib
import importlib
import io
import json
import os
import pkgutil
import sys
from collections.abc import Sequence
from importlib.machinery import ModuleSpec
from types import ModuleType

REMOVED_OS_FUNCTIONS = (
    "preadv",
    "pwritev",
    "pread",
    "pwrite",
    "readv",
    "writev",
    "posix_fadvise",
    "copy_file_range",
    "sendfile",
)


class BlockFcntl:
    """A meta path finder: ``import fcntl`` fails, as where the module does not exist."""

    attempts = 0

    def find_spec(
        self, name: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> ModuleSpec | None:
        if name == "fcntl":
            BlockFcntl.attempts += 1
            raise ImportError("No module named 'fcntl' (blocked: simulating Windows)")
        return None


def block_posix() -> None:
    sys.modules.pop("fcntl", None)
    sys.meta_path.insert(0, BlockFcntl())
    for name in REMOVED_OS_FUNCTIONS:
        if hasattr(os, name):
            delattr(os, name)


def import_every_module() -> list[str]:
    import ckpt_gui

    failures = []
    for info in pkgutil.walk_packages(ckpt_gui.__path__, "ckpt_gui."):
        if info.name.endswith("__main__"):
            continue  # running it is the CLI itself
        try:
            importlib.import_module(info.name)
        except Exception as exc:  # report every module, not only the first
            failures.append(f"{info.name}: {type(exc).__name__}: {exc}")
    return failures


def run_verbs(argvs: list[list[str]]) -> list[dict[str, object]]:
    from ckpt_gui.cli import main

    results = []
    for argv in argvs:
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                code = main(argv)
            except SystemExit as exc:
                code = exc.code if isinstance(exc.code, int) else 2
        results.append(
            {"argv": argv, "code": code, "stdout": out.getvalue(), "stderr": err.getvalue()}
        )
    return results


def first_tensor_stats(path: str) -> dict[str, float]:
    from ckpt_gui.core.targets import open_target
    from ckpt_gui.core.values.stats import compute_stats

    checkpoint = open_target(path)
    tensor = sorted(checkpoint.tensors, key=lambda t: t.name)[0]
    stats = compute_stats(checkpoint, tensor)
    return {"name": tensor.name, "min": stats.min, "max": stats.max, "mean": stats.mean}


def main() -> None:
    report_path, argvs_json = sys.argv[1], sys.argv[2]
    block_posix()
    report: dict[str, object] = {"import_failures": import_every_module()}
    report["verbs"] = run_verbs(json.loads(argvs_json))
    if len(sys.argv) > 3:
        report["stats"] = first_tensor_stats(sys.argv[3])
    report["fcntl_loaded"] = "fcntl" in sys.modules
    report["fcntl_attempts"] = BlockFcntl.attempts
    report["os_functions_left"] = [n for n in REMOVED_OS_FUNCTIONS if hasattr(os, n)]
    with open(report_path, "w", encoding="utf-8") as out:
        json.dump(report, out)


if __name__ == "__main__":
    main()
