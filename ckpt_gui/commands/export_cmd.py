"""``ckpt-gui export {random-init,convert,reshard,safetensors,merge-lora} ... OUT``: write a new model folder.

Exit codes: 0 written; 1 written, but values overflowed the target dtype (written
as Inf, or clamped with ``--on-overflow clamp``); 2 error, nothing written.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from typing import Any

from ckpt_gui.commands.options import add_tag_option
from ckpt_gui.commands.progress import drive
from ckpt_gui.core.dtypes import USER_DTYPE_NAMES
from ckpt_gui.core.errors import CheckpointError
from ckpt_gui.core.export.renames import RenameRule
from ckpt_gui.core.formatting import human_bytes, parse_size

DTYPE_CHOICES = ("fp32", "fp16", "bf16", "float32", "float16", "bfloat16")


class _RenameAction(argparse.Action):
    """Collects --rename/--strip-prefix/--add-prefix in command-line order."""

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: str | Sequence[Any] | None,
        option_string: str | None = None,
    ) -> None:
        rules = list(getattr(namespace, "renames", None) or [])
        text = str(values)
        try:
            if option_string == "--strip-prefix":
                rules.append(RenameRule.strip_prefix(text))
            elif option_string == "--add-prefix":
                rules.append(RenameRule.add_prefix(text))
            else:
                rules.append(RenameRule.parse(text))
        except ValueError as exc:
            parser.error(str(exc))
        namespace.renames = rules


def _size(text: str) -> int:
    try:
        return parse_size(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def register(verbs: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = verbs.add_parser(
        "export",
        help="write a new model folder (random init, dtype, shards, safetensors, LoRA merge)",
    )
    jobs = parser.add_subparsers(dest="job", metavar="JOB", required=True)

    def common(sub: argparse.ArgumentParser, shard_required: bool = False) -> None:
        sub.add_argument("out", help="output folder (must not exist unless --overwrite)")
        sub.add_argument(
            "--max-shard-size",
            type=_size,
            required=shard_required,
            help="largest shard, e.g. 500MB or 2GB (default 5GB)",
        )
        sub.add_argument("--overwrite", action="store_true", help="replace an existing OUT")
        sub.add_argument(
            "--rename", action=_RenameAction, metavar="REGEX=REPL", help="rename keys (repeatable)"
        )
        sub.add_argument(
            "--strip-prefix", action=_RenameAction, metavar="P", help="remove the key prefix P"
        )
        sub.add_argument(
            "--add-prefix", action=_RenameAction, metavar="P", help="prepend P to every key"
        )
        sub.add_argument("--dry-run", action="store_true", help="print the plan, write nothing")
        sub.add_argument(
            "--no-fsync", action="store_true", help="skip fsync of each shard (faster)"
        )
        sub.add_argument("--json", action="store_true", help="print one JSON object")
        sub.add_argument(
            "--key",
            metavar="PATH",
            default=None,
            help="weight set of a PyTorch pickle holding several (e.g. model, ema, optimizer); default: the one training code loads",
        )
        sub.set_defaults(handler=run, renames=[])

    random_init = jobs.add_parser("random-init", help="fresh weights from a config")
    random_init.add_argument(
        "target",
        metavar="CONFIG",
        help="config.json, a folder holding one, or a PyTorch pickle with an embedded config",
    )
    common(random_init)
    random_init.add_argument("--dtype", choices=DTYPE_CHOICES, help="default: the config's dtype")
    random_init.add_argument(
        "--seed", type=int, default=0, help="same seed, same bytes (default 0)"
    )

    convert = jobs.add_parser("convert", help="change float dtypes (fp32/fp16/bf16)")
    convert.add_argument("target", metavar="TARGET", help="checkpoint file or folder")
    common(convert)
    convert.add_argument("--dtype", choices=DTYPE_CHOICES, required=True)
    convert.add_argument(
        "--on-overflow",
        choices=("inf", "clamp", "error"),
        default="inf",
        help="values beyond the target range: write Inf (as torch does; exit 1), clamp (exit 1), or fail",
    )

    reshard = jobs.add_parser("reshard", help="re-split into shards of a maximum size")
    reshard.add_argument("target", metavar="TARGET", help="checkpoint file or folder")
    common(reshard, shard_required=True)

    safetensors = jobs.add_parser(
        "safetensors",
        help="pickle (.bin/.pt), DCP or DeepSpeed folder, or GGUF (dequantized) to safetensors",
    )
    safetensors.add_argument("target", metavar="TARGET", help="checkpoint file or folder")
    common(safetensors)
    safetensors.add_argument(
        "--dtype",
        choices=DTYPE_CHOICES,
        help="GGUF sources only: dtype of the dequantized tensors (default fp32, as transformers)",
    )
    for sub in (convert, reshard, safetensors):
        sub.add_argument(
            "--config",
            metavar="CONFIG",
            help="config.json (or a folder holding one) to write beside the weights, "
            "so from_pretrained loads the result",
        )
        add_tag_option(sub)

    merge = jobs.add_parser(
        "merge-lora", help="merge a LoRA adapter into its base model (as peft's merge_and_unload)"
    )
    merge.add_argument("target", metavar="BASE", help="base model folder (or file)")
    merge.add_argument("adapter", metavar="ADAPTER", help="peft adapter folder")
    common(merge)
    merge.add_argument("--dtype", choices=DTYPE_CHOICES, help="default: the base's dtypes")


def run(args: argparse.Namespace) -> int:
    from ckpt_gui.core.export import convert as jobs  # the module
    from ckpt_gui.core.export import gguf_source
    from ckpt_gui.core.export.engine import ExportOptions

    options = ExportOptions(
        overwrite=args.overwrite,
        fsync=not args.no_fsync,
        overflow=getattr(args, "on_overflow", "inf"),
    )
    dtype = USER_DTYPE_NAMES[args.dtype] if getattr(args, "dtype", None) else None
    common: dict[str, Any] = {
        "max_shard_size": args.max_shard_size,
        "renames": args.renames,
        "overwrite": args.overwrite,
    }
    if getattr(args, "config", None):
        common["config"] = args.config
    if args.job == "merge-lora":
        from ckpt_gui.core.export import merge_lora

        if args.renames:
            raise CheckpointError("merge-lora", "--rename/--strip-prefix/--add-prefix do not apply")
        plan = merge_lora.plan_merge_lora(
            args.target,
            args.adapter,
            args.out,
            dtype=dtype,
            max_shard_size=args.max_shard_size,
            overwrite=args.overwrite,
        )
        job = merge_lora.run_merge_lora(plan, options)
    elif args.job == "random-init":
        from ckpt_gui.core.export import random_init

        plan = random_init.plan_random_init(
            args.target, args.out, dtype=dtype, seed=args.seed, weights_key=args.key, **common
        )
        job = random_init.run_random_init(plan, options)
    else:
        if args.job == "convert":
            assert dtype is not None
            plan = jobs.plan_convert(
                args.target, args.out, dtype, weights_key=args.key, tag=args.tag, **common
            )
        elif args.job == "reshard":
            plan = jobs.plan_reshard(
                args.target, args.out, weights_key=args.key, tag=args.tag, **common
            )
        elif gguf_source.is_gguf_target(args.target):
            if "config" in common:
                raise CheckpointError(
                    args.target, "--config does not apply to GGUF sources: the file holds its config"
                )
            plan = gguf_source.plan_gguf_safetensors(args.target, args.out, dtype=dtype, **common)
        elif dtype is not None:
            raise CheckpointError(
                args.target,
                "--dtype applies to GGUF sources; use `export convert` to change dtypes",
            )
        else:
            plan = jobs.plan_safetensors(
                args.target, args.out, weights_key=args.key, tag=args.tag, **common
            )
        job = jobs.run_plan(plan, options)
    if args.dry_run:
        job.close()
        _print(args, {"plan": plan.to_json()}, _plan_text(plan.to_json()))
        return 0
    result = drive(job, args.job)
    out = result.to_json()
    text = f"wrote {args.out}: {len(out['files'])} files, {human_bytes(out['bytes_written'])} in {out['seconds']:.1f} s\n"
    text += "".join(f"warning: {w}\n" for w in out["warnings"])
    _print(args, {"plan": plan.to_json(), "result": out}, text)
    return 1 if result.overflow else 0


def _print(args: argparse.Namespace, data: dict[str, Any], text: str) -> None:
    if args.json:
        json.dump(data, sys.stdout, indent=1)
        sys.stdout.write("\n")
    else:
        sys.stdout.write(text)


def _plan_text(plan: dict[str, Any]) -> str:
    lines = [
        f"{plan['kind']}: {plan['source']} -> {plan['output']}",
        f"  parameters  {plan['total_parameters']:,}",
        f"  tensor data {human_bytes(plan['total_size'])} (estimated output {human_bytes(plan['estimated_bytes'])})",
    ]
    lines += [
        f"  {s['file']}  {s['tensors']} tensors  {human_bytes(s['bytes'])}" for s in plan["shards"]
    ]
    lines += [f"  copy {name}" for name in plan["copied_files"]]
    lines += [f"  write {name}" for name in plan["generated_files"]]
    lines += [f"  warning: {w}" for w in plan["warnings"]]
    return "\n".join(lines) + "\n"
