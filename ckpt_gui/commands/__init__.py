"""The CLI verbs: one module each, registered here by name."""

from __future__ import annotations

import argparse
from collections.abc import Callable

from ckpt_gui.commands import diff_cmd, inspect_cmd, pickle_risk_cmd, scan_cmd

Register = Callable[["argparse._SubParsersAction[argparse.ArgumentParser]"], None]

VERBS: dict[str, Register] = {
    "inspect": inspect_cmd.register,
    "diff": diff_cmd.register,
    "scan": scan_cmd.register,
    "pickle-risk": pickle_risk_cmd.register,
}
