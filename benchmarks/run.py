"""Run the benchmarks: ``make bench`` or ``python benchmarks/run.py [NAME ...]``.

Each ``bench_*.py`` module beside this file has ``run(workdir: Path) -> list[Result]``
and measures ckpt-gui against its baseline in the same run, whole-process, so that
the printed ratios compare like with like on this machine.
"""

from __future__ import annotations

import argparse
import importlib
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent)]

from common import Result, print_results  # noqa: E402


def main() -> int:
    available = sorted(p.stem.removeprefix("bench_") for p in HERE.glob("bench_*.py"))
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "names", nargs="*", choices=[*available, []], help="which benchmarks (default all)"
    )
    parser.add_argument(
        "--workdir", type=Path, help="where to write generated checkpoints (default: a temp dir)"
    )
    args = parser.parse_args()
    results: list[Result] = []
    with tempfile.TemporaryDirectory(prefix="ckpt-gui-bench-", dir=args.workdir) as tmp:
        for name in args.names or available:
            module = importlib.import_module(f"bench_{name}")
            print(f"== {name}", flush=True)
            bench_dir = Path(tmp) / name
            bench_dir.mkdir()
            results.extend(module.run(bench_dir))
    print_results(results)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
