"""``ckpt-gui diff A B [--json]``: what changed between two checkpoints.

Exit 0 when identical (same names, shapes, dtypes and bytes), 1 when different.
"""

from __future__ import annotations

import argparse
import json
import sys

from ckpt_gui.commands.progress import drive
from ckpt_gui.core.check.gguf_names import with_hf_names
from ckpt_gui.core.diff.values import DiffReport, diff_structure, diff_values
from ckpt_gui.core.formatting import human_count
from ckpt_gui.core.targets import open_target


def register(verbs: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = verbs.add_parser(
        "diff",
        help="compare two checkpoints: keys, shapes, dtypes and values",
        description="Compare checkpoint A with B. Exit 0 identical, 1 different, 2 error.",
    )
    parser.add_argument("a", help="checkpoint file or folder (A, the reference)")
    parser.add_argument("b", help="checkpoint file or folder (B)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument(
        "--key",
        metavar="PATH",
        default=None,
        help="weight set of A when it is a PyTorch pickle holding several",
    )
    parser.add_argument(
        "--key-b", metavar="PATH", default=None, help="weight set of B (default: --key)"
    )
    parser.add_argument(
        "--tag", metavar="TAG", default=None, help="DeepSpeed folder A: the global_step<N> tag "
        "to open (default: the one its latest file names)"
    )
    parser.add_argument(
        "--tag-b", metavar="TAG", default=None, help="the tag of DeepSpeed folder B (default: --tag)"
    )
    parser.add_argument(
        "--structure-only", action="store_true", help="compare names, shapes and dtypes only"
    )
    parser.add_argument(
        "--no-renames", action="store_true", help="do not match keys by added/stripped prefixes"
    )
    parser.add_argument("--limit", type=int, default=20, help="rows per section in text output")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    # GGUF files are compared under transformers names.
    a = with_hf_names(open_target(args.a, args.key, args.tag))
    b = with_hf_names(
        open_target(
            args.b,
            args.key_b if args.key_b is not None else args.key,
            args.tag_b if args.tag_b is not None else args.tag,
        )
    )
    structure = diff_structure(a, b, detect_renames=not args.no_renames)
    if args.structure_only:
        data = structure.to_json()
        different = not structure.same_structure
        data["different"] = different
        if args.json:
            _print_json(data)
        else:
            sys.stdout.write(_render_structure(data, args.limit))
        return 1 if different else 0
    report = drive(diff_values(a, b, structure), "comparing")
    if args.json:
        _print_json(report.to_json())
    else:
        sys.stdout.write(render_text(report, args.limit))
    return 1 if report.different else 0


def _print_json(data: object) -> None:
    json.dump(data, sys.stdout, indent=1)
    sys.stdout.write("\n")


def _render_structure(data: dict[str, object], limit: int) -> str:
    lines = [f"A  {data['a']}", f"B  {data['b']}"]
    for rename in data["renames"]:  # type: ignore[attr-defined]
        lines.append(
            f"renamed  '{rename['a_prefix']}' -> '{rename['b_prefix']}'  ({rename['count']} tensors)"
        )
    for title, key in (("only in A", "only_in_a"), ("only in B", "only_in_b")):
        names = data[key]
        assert isinstance(names, list)
        if names:
            lines.append(f"{title} ({len(names)}):")
            lines += [f"  {n}" for n in names[:limit]]
            if len(names) > limit:
                lines.append(f"  ... and {len(names) - limit} more")
    shapes = data["shape_changed"]
    assert isinstance(shapes, list)
    if shapes:
        lines.append(f"shape changed ({len(shapes)}):")
        lines += [f"  {s['key']}  {s['a_shape']} -> {s['b_shape']}" for s in shapes[:limit]]
    dtypes = data["dtype_changed"]
    assert isinstance(dtypes, list)
    if dtypes:
        lines.append(f"dtype changed ({len(dtypes)}):")
        for d in dtypes[:limit]:
            equal = d.get("values_equal")
            note = "" if equal is None else ("  values equal" if equal else "  values differ")
            lines.append(f"  {d['key']}  {d['a_dtype']} -> {d['b_dtype']}{note}")
    return "\n".join(lines) + "\n"


def render_text(report: DiffReport, limit: int = 20) -> str:
    data = report.to_json()
    text = _render_structure(data, limit)
    lines = [f"identical  {len(report.identical)} of {len(report.tensors)} compared tensors"]
    changed = report.changed
    if changed:
        lines.append(f"changed ({len(changed)}), most changed first:")
        lines.append(f"  {'rel_l2':>10} {'max_abs':>10} {'cosine':>10}  {'params':>8}  key")
        for t in changed[:limit]:
            lines.append(
                f"  {_num(t.rel_l2):>10} {_num(t.max_abs_diff):>10} {_num(t.cosine, 8):>10}  "
                f"{human_count(t.parameters):>8}  {t.key}{'  ' + t.note if t.note else ''}"
            )
        if len(changed) > limit:
            lines.append(f"  ... and {len(changed) - limit} more")
    skipped = [t for t in report.tensors if t.status == "not_compared"]
    lines += [f"not compared  {t.key}: {t.note}" for t in skipped]
    lines.append("result  " + ("different" if report.different else "identical"))
    return text + "\n".join(lines) + "\n"


def _num(value: float | None, digits: int = 3) -> str:
    return "-" if value is None else f"{value:.{digits}g}"
