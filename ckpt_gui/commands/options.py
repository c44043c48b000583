"""Options several verbs share, defined once so their help reads the same everywhere."""

from __future__ import annotations

import argparse

TAG_HELP = (
    "DeepSpeed folder: the global_step<N> tag to open (default: the one its latest file names)"
)


def add_tag_option(parser: argparse.ArgumentParser) -> None:
    """``--tag TAG``: which ``global_step<N>`` folder of a DeepSpeed checkpoint to open."""
    parser.add_argument("--tag", metavar="TAG", default=None, help=TAG_HELP)
