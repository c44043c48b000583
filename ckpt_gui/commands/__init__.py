"""The CLI verbs: one module each, registered here by name."""

from __future__ import annotations

import argparse
from collections.abc import Callable

from ckpt_gui.commands import (
    check_cmd,
    diff_cmd,
    download_cmd,
    export_cmd,
    inspect_cmd,
    library_cmd,
    memory_cmd,
    pickle_risk_cmd,
    scan_cmd,
)

Register = Callable[["argparse._SubParsersAction[argparse.ArgumentParser]"], None]

VERBS: dict[str, Register] = {
    "inspect": inspect_cmd.register,
    "check": check_cmd.register,
    "diff": diff_cmd.register,
    "scan": scan_cmd.register,
    "pickle-risk": pickle_risk_cmd.register,
    "export": export_cmd.register,
    "library": library_cmd.register,
    "download": download_cmd.register,
    "memory": memory_cmd.register,
}
