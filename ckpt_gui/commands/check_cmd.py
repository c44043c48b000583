"""``ckpt-gui check TARGET [--config CONFIG] [--json] [--set key=value ...]``.

Will the checkpoint load into the architecture? Exit 0 when it loads cleanly, 1 when
keys are missing, unexpected or mismatched, 2 on error.

For a peft adapter (a folder with adapter_config.json), CONFIG is the base model
(default: the adapter's base_model_name_or_path) and the check says whether every
adapter weight has its target in the base, with the shapes peft would build.
"""

from __future__ import annotations

import argparse
import json
import sys

from ckpt_gui.commands.options import add_tag_option
from ckpt_gui.core.check.config_source import parse_override, resolve_config
from ckpt_gui.core.check.gguf_names import with_hf_names
from ckpt_gui.core.check.key_groups import group_keys
from ckpt_gui.core.check.matching import MatchReport, compare
from ckpt_gui.core.check.status import KeyStatus
from ckpt_gui.core.model import Checkpoint
from ckpt_gui.core.targets import open_target

EXIT_OK, EXIT_FINDINGS = 0, 1


def register(verbs: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = verbs.add_parser(
        "check",
        help="will this checkpoint load into this architecture? (missing/unexpected/mismatched keys)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("target", help="checkpoint file or folder, or a peft adapter folder")
    parser.add_argument(
        "--config",
        help="config.json, model folder, Hub repo id, or architecture name such as "
        "LlamaForCausalLM (default: the checkpoint's own config.json; for an adapter, "
        "its base model)",
    )
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a config value (JSON value, e.g. --set vocab_size=32001); repeatable",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument(
        "--key",
        metavar="PATH",
        default=None,
        help="weight set of a PyTorch pickle holding several (e.g. model, ema, optimizer); default: the one training code loads",
    )
    add_tag_option(parser)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    overrides = dict(parse_override(text) for text in args.overrides)
    # GGUF: compared under transformers names (built from the model if listing could not).
    checkpoint = with_hf_names(open_target(args.target, args.key, args.tag))
    from ckpt_gui.core.formats.adapter import looks_like_adapter_weights, missing_config_error

    if checkpoint.adapter is None and looks_like_adapter_weights(checkpoint):
        raise missing_config_error(checkpoint)
    if checkpoint.adapter is not None:
        from ckpt_gui.core.adapters.base import default_base
        from ckpt_gui.core.adapters.fit import fit_adapter, require_lora

        require_lora(checkpoint)
        spec = args.config or default_base(checkpoint)
        report = fit_adapter(checkpoint, resolve_config(spec, None, overrides))
    else:
        config = resolve_config(args.config, checkpoint, overrides)
        report = compare(checkpoint, config)
    if args.json:
        data = report.to_json()
        if checkpoint.adapter is not None:
            data["adapter"] = checkpoint.adapter.to_json()
        json.dump(data, sys.stdout, indent=1)
        sys.stdout.write("\n")
    else:
        if checkpoint.adapter is not None:
            sys.stdout.write(adapter_line(checkpoint))
        sys.stdout.write(render_text(report))
    return EXIT_OK if report.clean else EXIT_FINDINGS


def adapter_line(checkpoint: Checkpoint) -> str:
    adapter = checkpoint.adapter
    assert adapter is not None
    s = adapter.settings
    return (
        f"adapter {s.peft_type} r={s.r} alpha={s.lora_alpha:g} scale={s.scale:g}"
        f"{' rsLoRA' if s.use_rslora else ''}{' DoRA' if s.use_dora else ''}: "
        f"{len(adapter.modules)} modules, base {s.base_model or '(not named)'}\n"
    )


def render_text(report: MatchReport) -> str:
    counts = report.counts
    lines = [
        f"{report.checkpoint}",
        f"  compared with  {report.architecture} (config: {report.config.source})",
        f"  result         {'loads cleanly' if report.clean else 'does NOT load cleanly'}",
        f"  keys           {counts[KeyStatus.OK]} ok, {len(report.missing)} missing, "
        f"{len(report.unexpected)} unexpected, {len(report.mismatched)} shape mismatches",
    ]
    if report.tied:
        lines.append(f"  tied           {len(report.tied)} absent keys come from tied weights")
    if report.ignored_unexpected:
        lines.append(
            f"  ignored        {len(report.ignored_unexpected)} keys the model ignores on load"
        )
    lines += [f"  warning        {w}" for w in report.warnings]
    lines += _section("missing", report.missing)
    lines += _section("unexpected", report.unexpected)
    if report.mismatched:
        lines.append("")
        lines.append("shape mismatches (checkpoint -> model):")
        lines += [
            f"  {m.key}  {list(m.checkpoint_shape)} -> {list(m.model_shape)}"
            for m in report.mismatched
        ]
    if report.dtype_differences:
        stored = sorted({d.checkpoint_dtype for d in report.dtype_differences})
        lines.append("")
        lines.append(
            f"dtype (informational): {len(report.dtype_differences)} tensors stored as "
            f"{'/'.join(stored)}, model loads them as {report.model_dtype}"
        )
    if report.suggestions:
        lines.append("")
        lines.append("suggested fixes (apply in order):")
        lines += [f"  - {s.text}" for s in report.suggestions]
    return "\n".join(lines) + "\n"


def _section(title: str, keys: tuple[str, ...], limit: int = 40) -> list[str]:
    if not keys:
        return []
    groups = group_keys(list(keys))
    lines = ["", f"{title} ({len(keys)}):"]
    for group in groups[:limit]:
        count = f"  ({len(group.keys)} keys)" if len(group.keys) > 1 else ""
        lines.append(f"  {group.pattern}{count}")
    if len(groups) > limit:
        lines.append(f"  ... and {len(groups) - limit} more groups (use --json for all)")
    return lines
