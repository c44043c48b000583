"""``ckpt-gui inspect TARGET [--json]``: what is inside a checkpoint."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from ckpt_gui.core.formatting import human_bytes, human_count
from ckpt_gui.core.model import Checkpoint
from ckpt_gui.core.targets import open_target_job
from ckpt_gui.core.tree.build import ModuleNode, build_tree


def register(verbs: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = verbs.add_parser("inspect", help="summarise a checkpoint and print its module tree")
    parser.add_argument(
        "target", help="checkpoint file or folder, Hub repo id (org/name[@rev]) or Hub URL"
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--depth", type=int, default=None, help="limit the printed tree depth")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from ckpt_gui.commands.progress import drive

    checkpoint = drive(open_target_job(args.target), in_bytes=False)
    if args.json:
        sys.stdout.write(checkpoint.to_json_text())
    else:
        sys.stdout.write(render_text(checkpoint, args.depth))
    return 0


def render_text(checkpoint: Checkpoint, depth: int | None = None) -> str:
    lines = [
        f"{checkpoint.source}",
        f"  format      {checkpoint.format}",
        f"  files       {len(checkpoint.files)} ({human_bytes(sum(f.size for f in checkpoint.files))})",
        f"  tensors     {len(checkpoint.tensors):,}",
        f"  parameters  {human_count(checkpoint.total_parameters)} ({checkpoint.total_parameters:,})",
        f"  size        {human_bytes(checkpoint.total_bytes)}",
        "  by dtype    "
        + ", ".join(f"{d} {human_count(n)}" for d, n in checkpoint.parameters_by_dtype.items()),
    ]
    hub = checkpoint.metadata.get("hub")
    if isinstance(hub, dict):
        lines += [f"  hub         {key} = {_short(value)}" for key, value in hub.items()]
    lines += [
        f"  metadata    {key} = {_short(value)}"
        for key, value in checkpoint.metadata.items()
        if key != "hub"
    ]
    lines += [f"  warning     {w}" for w in checkpoint.warnings]
    lines.append("")
    for node, level in _walk_with_depth(build_tree(checkpoint.tensors), depth):
        indent = "  " * level
        if node.tensor is not None:
            t = node.tensor
            lines.append(
                f"{indent}{node.name}  {t.dtype} {list(t.shape)}  {human_count(t.parameters)}"
            )
        else:
            lines.append(
                f"{indent}{node.name}/  {human_count(node.parameters)}  {human_bytes(node.nbytes)}"
            )
    return "\n".join(lines) + "\n"


def _walk_with_depth(root: ModuleNode, depth: int | None) -> list[tuple[ModuleNode, int]]:
    out: list[tuple[ModuleNode, int]] = []
    stack = [(child, 0) for child in reversed(root.children)]
    while stack:
        node, level = stack.pop()
        out.append((node, level))
        if depth is None or level + 1 < depth:
            stack.extend((child, level + 1) for child in reversed(node.children))
    return out


def _short(value: Any) -> str:
    text = json.dumps(value, default=str) if not isinstance(value, str) else value
    return text if len(text) < 120 else text[:117] + "..."
