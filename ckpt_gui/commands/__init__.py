"""The CLI verbs: one module each, registered here by name."""

from __future__ import annotations

import argparse
from collections.abc import Callable

from ckpt_gui.commands import export_cmd, inspect_cmd

Register = Callable[["argparse._SubParsersAction[argparse.ArgumentParser]"], None]

VERBS: dict[str, Register] = {
    "inspect": inspect_cmd.register,
    "export": export_cmd.register,
}
