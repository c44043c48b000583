"""``ckpt-gui memory TARGET [--dtype D] [--context N] [--batch B] [--kv-dtype D] [--json]``.

How much memory the model needs: its weights (as stored and in other dtypes), the
largest layer, training with Adam (float32 and bfloat16 mixed precision), the KV
cache per token and for CONTEXT x BATCH, and a LoRA fine-tune. TARGET is a
checkpoint (file, folder, Hub repo: headers only), a config.json, or a folder
holding only a config.json. No weight is read.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from ckpt_gui.core.errors import CheckpointError
from ckpt_gui.core.formatting import human_bytes, human_count
from ckpt_gui.core.memory.config_source import checkpoint_from_config, is_config_file
from ckpt_gui.core.memory.estimate import MemoryEstimate, dtype_name, estimate_memory
from ckpt_gui.core.model import Checkpoint
from ckpt_gui.core.targets import open_target


def register(verbs: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = verbs.add_parser(
        "memory",
        help="how much memory the model needs (weights, training, KV cache, LoRA)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("target", help="checkpoint, model folder, Hub repo id or config.json")
    parser.add_argument(
        "--dtype", help="give the weights in this dtype (float32, bf16, fp16, fp8, int4)"
    )
    parser.add_argument(
        "--context", type=int, help="tokens of context (default: max_position_embeddings)"
    )
    parser.add_argument("--batch", type=int, default=1, help="sequences at once (default 1)")
    parser.add_argument("--kv-dtype", default="bfloat16", help="KV cache dtype (default bfloat16)")
    parser.add_argument("--lora-rank", type=int, default=8, help="LoRA rank (default 8)")
    parser.add_argument(
        "--lora-targets",
        help="comma-separated module names for LoRA (default: peft's for the model type)",
    )
    parser.add_argument("--module", default="", help="only the tensors under this module path")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    if args.lora_rank < 1:
        raise CheckpointError(args.target, "--lora-rank must be at least 1")
    checkpoint = open_source(args.target)
    estimate = estimate_memory(
        checkpoint,
        dtype=dtype_name(args.dtype) if args.dtype else None,
        context=args.context,
        batch=args.batch,
        kv_dtype=dtype_name(args.kv_dtype),
        lora_rank=args.lora_rank,
        lora_targets=tuple(t for t in args.lora_targets.split(",") if t)
        if args.lora_targets
        else None,
        scope=args.module,
    )
    if args.json:
        json.dump(estimate.to_json(), sys.stdout, indent=1)
        sys.stdout.write("\n")
    else:
        sys.stdout.write(render_text(estimate))
    return 0


def open_source(target: str) -> Checkpoint:
    """A checkpoint, or a model described by its config alone."""
    path = Path(target).expanduser()
    if is_config_file(path):
        return checkpoint_from_config(path)
    try:
        return open_target(target)
    except CheckpointError:
        if path.is_dir() and (path / "config.json").is_file():
            return checkpoint_from_config(path / "config.json")
        raise


def render_text(estimate: MemoryEstimate) -> str:
    data = estimate.to_json()
    lines = [
        estimate.source + (f"  (module {estimate.scope})" if estimate.scope else ""),
        f"  parameters     {human_count(estimate.parameters)} ({estimate.parameters:,})",
    ]
    if estimate.quantization:
        lines.append(f"  quantized      {estimate.quantization}")
    lines.append(
        f"  weights        {human_bytes(estimate.weights_bytes)} ({data['dtype']});  "
        + ", ".join(f"{k} {human_bytes(v)}" for k, v in estimate.weights_bytes_by_dtype.items())
    )
    if estimate.largest_layer is not None and estimate.largest_layer_bytes is not None:
        lines.append(
            f"  largest layer  {human_bytes(estimate.largest_layer_bytes)}"
            f"  ({estimate.largest_layer.name})"
        )
    training = estimate.training
    lines.append(
        f"  Adam training  float32 {human_bytes(training['float32'].peak)}, "
        f"bfloat16 mixed {human_bytes(training['bfloat16'].peak)} (activations not included)"
    )
    if estimate.kv is not None and estimate.kv_cache_bytes_per_token is not None:
        kv = estimate.kv.to_json()
        sliding = (
            f", {kv['sliding_layers']} sliding layers (window {kv['sliding_window']})"
            if kv["sliding_layers"]
            else ""
        )
        lines.append(
            f"  KV cache       {human_bytes(estimate.kv_cache_bytes_per_token)} per token "
            f"({estimate.kv_dtype}, {kv['attention']}, {kv['layers']} layers{sliding})"
        )
        if estimate.kv_cache_bytes is not None:
            lines.append(
                f"                 {human_bytes(estimate.kv_cache_bytes)} for {estimate.context:,}"
                f" tokens x {estimate.batch}"
            )
        lines.append(
            f"  inference      {human_bytes(estimate.inference_bytes)} (weights + KV cache)"
        )
    if estimate.lora is not None:
        lora = estimate.lora
        lines.append(
            f"  LoRA r={lora.rank}       {human_count(lora.trainable_parameters)} trainable on "
            f"{lora.modules} modules ({', '.join(lora.targets)}); "
            f"training peak {human_bytes(lora.training_peak_bytes)}"
        )
    lines += [f"  warning        {w}" for w in estimate.warnings]
    return "\n".join(lines) + "\n"
