"""``ckpt-gui inspect TARGET [--json]``: what is inside a checkpoint."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from ckpt_gui.commands.options import add_tag_option
from ckpt_gui.core.formatting import human_bytes, human_count
from ckpt_gui.core.model import Checkpoint
from ckpt_gui.core.targets import open_target, open_target_job
from ckpt_gui.core.tree.build import ModuleNode, build_tree


def register(verbs: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = verbs.add_parser("inspect", help="summarise a checkpoint and print its module tree")
    parser.add_argument(
        "target", help="checkpoint file or folder, Hub repo id (org/name[@rev]) or Hub URL"
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument(
        "--key",
        metavar="PATH",
        default=None,
        help="weight set of a PyTorch pickle holding several (e.g. model, ema, optimizer); default: the one training code loads",
    )
    add_tag_option(parser)
    parser.add_argument("--depth", type=int, default=None, help="limit the printed tree depth")
    parser.add_argument(
        "--base",
        metavar="BASE",
        help="for a peft adapter: the base model folder to show the adapter in "
        "(default: its base_model_name_or_path, when it is on this machine)",
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from ckpt_gui.commands.progress import drive

    checkpoint = drive(open_target_job(args.target, args.key, args.tag), in_bytes=False)
    base = None
    if checkpoint.adapter is not None:
        from ckpt_gui.core.adapters.tree import base_of

        base = open_target(args.base) if args.base else base_of(checkpoint)
    if args.json:
        if base is not None and checkpoint.adapter is not None:
            data = checkpoint.to_json()
            data["adapter"]["base_shown"] = base.source
            json.dump(data, sys.stdout, indent=1)
            sys.stdout.write("\n")
        else:
            sys.stdout.write(checkpoint.to_json_text())
    else:
        sys.stdout.write(render_text(checkpoint, args.depth, base))
    return 0


def render_text(
    checkpoint: Checkpoint, depth: int | None = None, base: Checkpoint | None = None
) -> str:
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
    lines += _weight_set_lines(checkpoint)
    lines += _tag_lines(checkpoint)
    hub = checkpoint.metadata.get("hub")
    if isinstance(hub, dict):
        lines += [f"  hub         {key} = {_short(value)}" for key, value in hub.items()]
    lines += [
        f"  metadata    {key} = {_short(value)}"
        for key, value in checkpoint.metadata.items()
        if key != "hub" and key not in PICKLE_DETAIL_KEYS
    ]
    quantization = checkpoint.quantization
    if quantization is not None:
        lines.append(
            f"  quantized   {quantization.scheme.describe()}: {len(quantization.modules)} modules,"
            f" {len(quantization.bookkeeping)} bookkeeping tensors (not counted as parameters)"
        )
    marks: dict[str, str] = {}
    tree = build_tree(checkpoint.tensors, quantization)
    if checkpoint.adapter is not None:
        from ckpt_gui.core.adapters import tree as adapter_tree

        lines += adapter_lines(checkpoint, base)
        tree = adapter_tree.adapted_tree(checkpoint, base)
        marks = adapter_tree.marks(checkpoint.adapter)
    lines += [f"  warning     {w}" for w in checkpoint.all_warnings]
    lines.append("")
    classes = checkpoint.metadata.get("module_classes")
    classes = classes if isinstance(classes, dict) else {}
    for node, level in _walk_with_depth(tree, depth):
        indent = "  " * level
        mark = f"  [{marks[node.path]}]" if node.path in marks else ""
        if node.tensor is not None:
            t = node.tensor
            role = "  (quantization bookkeeping)" if node.bookkeeping else ""
            lines.append(
                f"{indent}{node.name}  {t.dtype} {list(t.shape)}  {human_count(node.parameters)}"
                + role
                + mark
            )
        else:
            quant = f"  [{node.quant.describe()}]" if node.quant is not None else ""
            pickled_as = classes.get(node.path)
            suffix = f"  ({str(pickled_as).rsplit('.', 1)[-1]})" if pickled_as else ""
            lines.append(
                f"{indent}{node.name}/  {human_count(node.parameters)}  {human_bytes(node.nbytes)}"
                + quant
                + suffix
                + mark
            )
    return "\n".join(lines) + "\n"


# Shown by --json and as the weight-set line; too long for one metadata line each.
PICKLE_DETAIL_KEYS = frozenset(
    {"pickle_contents", "module_classes", "weight_sets", "weight_set", "embedded_config"}
)


def _weight_set_lines(checkpoint: Checkpoint) -> list[str]:
    sets = checkpoint.metadata.get("weight_sets")
    if not isinstance(sets, list) or not sets:
        return []
    chosen = checkpoint.metadata.get("weight_set", "")
    current = next((s for s in sets if s.get("key") == chosen), sets[0])
    label = chosen or "<top level>"
    kind = current.get("kind", "")
    pickled_as = current.get("class")
    what = f"{kind} {str(pickled_as).rsplit('.', 1)[-1]}" if pickled_as else kind
    others = [s.get("key") or "<top level>" for s in sets if s is not current]
    also = f"; also {', '.join(others)} (--key)" if others else ""
    return [f"  weight set  {label} ({what}){also}"]


def _tag_lines(checkpoint: Checkpoint) -> list[str]:
    """``tag  global_step1 (latest names global_step2); also global_step2 (--tag)``."""
    from ckpt_gui.core.formats.distributed.checkpoint import tag_choice

    choice = tag_choice(checkpoint)
    if choice is None:
        return []
    also = ""
    if choice.others:
        how = "open the parent folder with --tag" if choice.step_folder else "--tag"
        also = f"; also {', '.join(choice.others)} ({how})"
    return [f"  tag         {choice.describe()}{also}"]


def adapter_lines(checkpoint: Checkpoint, base: Checkpoint | None) -> list[str]:
    info = checkpoint.adapter
    assert info is not None
    s = info.settings
    lines = [f"  adapter     {s.peft_type}, base {s.base_model or '(not named)'}"]
    if s.revision:
        lines[-1] += f" @ {s.revision}"
    if not s.supported:
        return lines
    targets = (
        s.target_modules
        if isinstance(s.target_modules, str)
        else ", ".join(sorted(s.target_modules))
    )
    lines += [
        f"  rank        r={s.r}, lora_alpha={s.lora_alpha:g}, scale={s.scale:g}"
        + (" (rsLoRA: alpha/sqrt(r))" if s.use_rslora else " (alpha/r)"),
        f"  targets     {targets}",
        f"  adapted     {len(info.modules)} modules, {human_count(info.adapted_parameters)} parameters"
        + (f", {sum(m.dora for m in info.modules)} DoRA magnitudes" if s.use_dora else ""),
    ]
    if s.rank_pattern or s.alpha_pattern:
        lines.append(f"  patterns    rank {s.rank_pattern or '-'}, alpha {s.alpha_pattern or '-'}")
    if info.replaced:
        lines.append(f"  replaces    {', '.join(info.replaced)} (modules_to_save)")
    shown = base.source if base is not None else "not found on this machine (use --base)"
    lines.append(f"  base tree   {shown}")
    return lines


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
