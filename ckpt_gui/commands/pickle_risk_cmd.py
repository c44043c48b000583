"""``ckpt-gui pickle-risk TARGET [--json]``: what a pickle would import, nothing executed.

Exit 0 when a weights-only load accepts everything (or there is no pickle),
1 when some global is refused, 2 on error.
"""

from __future__ import annotations

import argparse
import json
import sys

from ckpt_gui.core.pickles.risk import PickleRiskReport, pickle_risk


def register(verbs: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = verbs.add_parser(
        "pickle-risk",
        help="list the globals a pickle checkpoint imports and which are unsafe",
        description="List every global the checkpoint's pickles import, marked allowed or "
        "refused by the weights-only loader, with the reason. Nothing is unpickled. "
        "Exit 0 safe, 1 refused globals found, 2 error.",
    )
    parser.add_argument("target", help="checkpoint file or folder")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    report = pickle_risk(args.target)
    if args.json:
        json.dump(report.to_json(), sys.stdout, indent=1)
        sys.stdout.write("\n")
    else:
        sys.stdout.write(render_text(report))
    return 0 if report.safe else 1


def render_text(report: PickleRiskReport) -> str:
    lines = [report.source]
    for file in report.files:
        if file.kind == "safetensors":
            lines.append(f"  {file.path}: safetensors, no code can run")
            continue
        if file.kind != "pickle":
            lines.append(f"  {file.path}: not a pickle ({'; '.join(file.problems)})")
            continue
        lines.append(f"  {file.path}: pickle, {len(file.globals)} globals")
        for g in sorted(file.globals, key=lambda g: g.allowed):
            mark = "allowed" if g.allowed else "REFUSED"
            lines.append(f"    {mark:<8} {g.name}" + (f"  ({g.reason})" if g.reason else ""))
        lines += [f"    problem  {p}" for p in file.problems]
    refused = report.refused
    if refused:
        lines.append(
            f"result  {len(refused)} refused: a plain pickle load would import and may run "
            "them; ckpt-gui never loads such a file"
        )
    elif not report.has_pickles:
        lines.append("result  no pickles")
    else:
        lines.append("result  safe: the weights-only loader accepts every global")
    return "\n".join(lines) + "\n"
