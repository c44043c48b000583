"""``ckpt-gui pickle-risk TARGET [--json]``: what a pickle would import, nothing executed.

Exit 0 when a weights-only load accepts everything (or there is no pickle),
1 when some global is refused or a file cannot be judged, 2 on error. The
globals are shown in three groups: code that runs (the danger), classes whose
code would be imported, plain data.
"""

from __future__ import annotations

import argparse
import json
import sys

from ckpt_gui.core.pickles.groups import GROUP_TITLES
from ckpt_gui.core.pickles.risk import PickleRiskReport, pickle_risk


def register(verbs: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = verbs.add_parser(
        "pickle-risk",
        help="list the globals a pickle checkpoint imports and which are unsafe",
        description="List every global the checkpoint's pickles import (judged as torch.load "
        "reads the file), grouped as code that runs, classes whose code would be imported, "
        "and plain data, each marked allowed or refused by the weights-only loader. Nothing "
        "is unpickled. Exit 0 safe, 1 refused globals or unjudgeable files, 2 error.",
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


_GROUP_LABELS = {"code": "CODE", "class": "class", "data": "data"}


def render_text(report: PickleRiskReport) -> str:
    lines = [report.source]
    for file in report.files:
        if file.kind == "safetensors":
            lines.append(f"  {file.path}: safetensors, no code can run")
            continue
        if file.kind != "pickle":
            lines.append(f"  {file.path}: cannot be judged ({'; '.join(file.problems)})")
            continue
        lines.append(f"  {file.path}: pickle, {len(file.globals)} globals")
        order = {"code": 0, "class": 1, "data": 2}
        for g in sorted(file.globals, key=lambda g: (order.get(g.group, 0), g.allowed)):
            mark = "allowed" if g.allowed else "REFUSED"
            group = _GROUP_LABELS.get(g.group, g.group)
            lines.append(
                f"    {mark:<8} {group:<6} {g.name}" + (f"  ({g.reason})" if g.reason else "")
            )
        lines += [f"    problem  {p}" for p in file.problems]
    for name, title in GROUP_TITLES.items():
        members = report.group(name)
        if members:
            lines.append(f"{title}: {len(members)}")
    lines.append(f"result  {report.verdict}")
    return "\n".join(lines) + "\n"
