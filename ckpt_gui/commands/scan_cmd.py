"""``ckpt-gui scan TARGET [--json]``: NaN, Inf, all-zero and extreme tensors. Exit 1 if any."""

from __future__ import annotations

import argparse
import json
import sys

from ckpt_gui.commands.options import add_tag_option
from ckpt_gui.commands.progress import drive
from ckpt_gui.core.dtypes import USER_DTYPE_NAMES
from ckpt_gui.core.formatting import human_count
from ckpt_gui.core.targets import open_target
from ckpt_gui.core.values.scan import DEFAULT_TARGET, DTYPE_MAX, ScanReport, scan


def register(verbs: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = verbs.add_parser(
        "scan",
        help="scan every tensor for NaN, Inf, all-zero tensors and extreme values",
        description="Read every tensor once. Exit 0 clean, 1 something found, 2 error.",
    )
    parser.add_argument("target", help="checkpoint file or folder")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument(
        "--key",
        metavar="PATH",
        default=None,
        help="weight set of a PyTorch pickle holding several (e.g. model, ema, optimizer); default: the one training code loads",
    )
    add_tag_option(parser)
    parser.add_argument(
        "--target-dtype",
        default="fp16",
        help="flag values beyond this dtype's range: fp16 (default), bf16, fp8_e4m3, fp8_e5m2, none",
    )
    parser.set_defaults(handler=run)


def parse_target_dtype(text: str) -> str | None:
    lowered = text.strip().lower()
    if lowered in ("none", "off", ""):
        return None
    name = USER_DTYPE_NAMES.get(lowered, lowered.upper())
    if name not in DTYPE_MAX:
        raise SystemExit(
            f"ckpt-gui scan: error: unknown --target-dtype {text!r} (fp16, bf16, fp8_e4m3, fp8_e5m2, none)"
        )
    return name


def run(args: argparse.Namespace) -> int:
    target_dtype = parse_target_dtype(args.target_dtype) if args.target_dtype else DEFAULT_TARGET
    checkpoint = open_target(args.target, args.key, args.tag)
    report = drive(scan(checkpoint, target_dtype), "scanning")
    if args.json:
        json.dump(report.to_json(), sys.stdout, indent=1)
        sys.stdout.write("\n")
    else:
        sys.stdout.write(render_text(report))
    return 0 if report.clean else 1


def render_text(report: ScanReport) -> str:
    params = sum(t.count for t in report.tensors)
    lines = [
        f"{report.source}",
        f"  scanned  {len(report.tensors)} tensors, {human_count(params)} values",
    ]
    if report.target_dtype:
        lines.append(
            f"  extreme  beyond the {report.target_dtype} range (|x| > {DTYPE_MAX[report.target_dtype]:g})"
        )
    for name, reason in report.skipped:
        lines.append(f"  skipped  {name}: {reason}")
    flagged = report.flagged
    if flagged:
        lines.append(f"flagged ({len(flagged)}):")
        for t in flagged:
            lines.append(
                f"  {t.name}  {t.dtype}  {', '.join(t.problems)}  nan={t.nan} inf={t.inf} "
                f"zeros={_percent(t.zeros_fraction)} min={_number(t.min)} max={_number(t.max)}"
                + (f" beyond={t.beyond_target}" if t.beyond_target else "")
            )
    lines.append("result  " + ("clean" if report.clean else "problems found"))
    return "\n".join(lines) + "\n"


def _percent(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f}%"


def _number(value: float | None) -> str:
    return "-" if value is None else f"{value:.4g}"
