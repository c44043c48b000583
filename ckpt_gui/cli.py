"""Command line: the GUI when no verb is given, else one of the scriptable verbs.

Exit codes for every verb: 0 ok, 1 findings, 2 error. Errors print one line,
``ckpt-gui: error: <file>: <problem>``, on stderr and nothing on stdout.
"""

from __future__ import annotations

import argparse
import gc
import sys
from collections.abc import Callable, Sequence

from ckpt_gui.commands import VERBS
from ckpt_gui.core.values.lease import ignore_lease_breaks

EXIT_OK, EXIT_FINDINGS, EXIT_ERROR = 0, 1, 2


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ckpt-gui",
        description="Inspect, compare and convert PyTorch and Hugging Face checkpoints.",
    )
    verbs = parser.add_subparsers(dest="verb", metavar="VERB")
    for register in VERBS.values():
        register(verbs)
    return parser


def build_gui_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ckpt-gui",
        description="Open checkpoints in the desktop app. Verbs: "
        + ", ".join(VERBS)
        + " (ckpt-gui VERB --help).",
    )
    parser.add_argument("targets", nargs="*", help="checkpoint files or folders to open")
    parser.add_argument(
        "--screenshot", metavar="OUT.png", help="render the window to a PNG and exit"
    )
    parser.add_argument("--smoke-test", action="store_true", help="self-test offscreen and exit")
    parser.add_argument("--no-demo", action="store_true", help="do not open the demo checkpoint")
    parser.add_argument(
        "--compare", metavar="B", help="compare the first target (A) with B in a diff tab"
    )
    parser.add_argument(
        "--scan",
        nargs="?",
        const="F16",
        metavar="DTYPE",
        help="scan the first target's tensors (extreme beyond DTYPE, default F16)",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    # On the main thread, for every entry (GUI included): exports, CLI or on QThreads,
    # may then map their sources under read leases (see source_lease).
    ignore_lease_breaks()
    if args and args[0] in VERBS:
        parsed = build_parser().parse_args(args)
        code = run_verb(parsed.handler, parsed)
        if argv is None:
            _skip_final_collections()
        return code
    if args and args[0] in ("-h", "--help"):
        build_gui_parser().print_help()
        return EXIT_OK
    gui_args = build_gui_parser().parse_args(args)
    if gui_args.smoke_test:  # before any QApplication exists: the smoke test runs offscreen
        from ckpt_gui.smoke import run_smoke_test

        return run_smoke_test()
    from ckpt_gui.qt.app import run_gui

    return run_gui(gui_args)


def _skip_final_collections() -> None:
    """Let a command-line run end quickly: its objects need no final garbage collection.

    After a verb that imported torch and transformers, interpreter shutdown spends
    seconds in the cyclic garbage collector walking the millions of objects those
    imports made (2.6 s median here on a loaded 2-core machine; 0.37 s frozen). Only for
    a real command-line run (not ``main(argv)`` in-process) and after the verb has
    returned: its files are closed, any export committed or removed. Freezing only
    hides the objects from the collector: atexit handlers, output flushes and
    reference-count cleanup all still run, and the exit code is returned normally.
    """
    if "torch" in sys.modules:
        gc.freeze()


def run_verb(handler: Callable[[argparse.Namespace], int], parsed: argparse.Namespace) -> int:
    """Run a verb; every failure becomes the one-line error and exit code 2."""
    from ckpt_gui.core.errors import CheckpointError

    try:
        return handler(parsed)
    except CheckpointError as exc:
        return fail(str(exc))
    except KeyboardInterrupt:
        return fail("interrupted")
    except BrokenPipeError:
        return EXIT_ERROR
    except Exception as exc:
        target = getattr(parsed, "target", None) or "ckpt-gui"
        return fail(
            f"{target}: unexpected {type(exc).__name__}: {' '.join(str(exc).split())[:300]}"
        )


def fail(message: str) -> int:
    print(f"ckpt-gui: error: {message}", file=sys.stderr)
    return EXIT_ERROR
