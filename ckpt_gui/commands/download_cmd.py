"""``ckpt-gui download REPO [--revision R] [--all]``: fetch a repo's weights into the HF cache.

Only what is needed to open the checkpoint (weights, index, config.json) unless
``--all``. The size is announced first; more than the free disk space is refused,
and large downloads need ``--yes`` (or a "y" on a terminal). Progress goes to stderr,
the snapshot folder to stdout.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path

from ckpt_gui.commands.progress import drive
from ckpt_gui.core.errors import CheckpointError
from ckpt_gui.core.formatting import human_bytes, parse_size
from ckpt_gui.core.hub.download import download_job, plan_download
from ckpt_gui.core.hub.ref import parse_hub_target

CONFIRM_ABOVE = "5GB"


def register(verbs: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = verbs.add_parser(
        "download", help="download a Hub repo's weights into the Hugging Face cache"
    )
    parser.add_argument("target", help="Hub repo id (org/name[@rev]) or URL")
    parser.add_argument("--revision", default=None, help="branch, tag or commit")
    parser.add_argument("--all", action="store_true", help="every file, not just the weights")
    parser.add_argument("--yes", action="store_true", help=f"no question above {CONFIRM_ABOVE}")
    parser.add_argument("--dry-run", action="store_true", help="show what would be downloaded")
    parser.add_argument("--json", action="store_true", help="print one JSON object at the end")
    parser.add_argument(
        "--cache-dir", type=Path, default=None, help="cache folder (default: HF_HUB_CACHE)"
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    ref = parse_hub_target(args.target)
    if ref is None:
        raise CheckpointError(args.target, "not a Hub repo id or URL (expected org/name[@rev])")
    if args.revision:
        ref = dataclasses.replace(ref, revision=args.revision)
    plan = plan_download(ref, all_files=args.all, cache_dir=args.cache_dir)
    free = plan.free_bytes()
    print(
        f"{ref}: {len(plan.files)} files, {human_bytes(plan.total_bytes)} "
        f"(commit {plan.commit[:12]}) into {plan.cache_dir}; {human_bytes(free)} free",
        file=sys.stderr,
    )
    if args.dry_run:
        _report(args, plan.files, plan.total_bytes, None)
        return 0
    if plan.total_bytes > free:
        raise CheckpointError(
            str(ref), f"needs {human_bytes(plan.total_bytes)} but only {human_bytes(free)} is free"
        )
    if (
        plan.total_bytes > parse_size(CONFIRM_ABOVE)
        and not args.yes
        and not _confirm(plan.total_bytes)
    ):
        raise CheckpointError(
            str(ref), f"{human_bytes(plan.total_bytes)} to download: add --yes to go ahead"
        )
    snapshot = drive(download_job(plan), "downloading", always=True)
    _report(args, plan.files, plan.total_bytes, snapshot)
    return 0


def _confirm(total: int) -> bool:
    if not sys.stdin.isatty():
        return False
    answer = input(f"Download {human_bytes(total)}? [y/N] ")
    return answer.strip().lower() in ("y", "yes")


def _report(
    args: argparse.Namespace, files: tuple[str, ...], total: int, snapshot: Path | None
) -> None:
    if args.json:
        payload = {
            "files": list(files),
            "total_bytes": total,
            "snapshot": str(snapshot) if snapshot else None,
        }
        json.dump(payload, sys.stdout, indent=1)
        sys.stdout.write("\n")
    elif snapshot is not None:
        print(snapshot)
    else:
        print("\n".join(files))
