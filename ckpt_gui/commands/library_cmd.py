"""``ckpt-gui library [--json] [--filter TEXT]``: the models in the local Hugging Face cache."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from ckpt_gui.core.formatting import human_bytes
from ckpt_gui.core.hub.cache import CachedModel, default_cache_dir, list_cached_models


def register(verbs: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = verbs.add_parser("library", help="list the models in the local Hugging Face cache")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument(
        "--filter", default="", metavar="TEXT", help="only repo ids containing TEXT"
    )
    parser.add_argument(
        "--cache-dir", type=Path, default=None, help="cache folder (default: HF_HUB_CACHE)"
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    cache_dir = args.cache_dir or default_cache_dir()
    models = list_cached_models(cache_dir, args.filter)
    if args.json:
        payload = {
            "cache_dir": str(cache_dir),
            "models": [m.to_json() for m in models],
            "total_size": sum(m.size for m in models),
        }
        json.dump(payload, sys.stdout, indent=1)
        sys.stdout.write("\n")
        return 0
    sys.stdout.write(render_text(models, cache_dir))
    return 0


def render_text(models: list[CachedModel], cache_dir: Path) -> str:
    if not models:
        return f"no cached models in {cache_dir}\n"
    width = max(len(m.repo_id) for m in models)
    lines = [f"{'repo':<{width}}  {'size':>10}  {'revision':<20}  weights  modified"]
    for model in models:
        for i, revision in enumerate(model.revisions or ()):
            refs = ",".join(revision.refs) or revision.commit[:12]
            name = model.repo_id if i == 0 else ""
            lines.append(
                f"{name:<{width}}  {human_bytes(revision.size):>10}  {refs[:20]:<20}  "
                f"{'yes' if revision.has_weights else 'no':<7}  "
                f"{time.strftime('%Y-%m-%d %H:%M', time.localtime(revision.last_modified))}"
            )
    total = sum(m.size for m in models)
    lines.append(f"{len(models)} models, {human_bytes(total)} in {cache_dir}")
    return "\n".join(lines) + "\n"
