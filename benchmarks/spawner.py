"""A small process that runs measured commands for the benchmark driver.

Why: Linux counts the memory a child had before ``exec`` in its peak RSS, and a
fork of the driver (which may hold torch and test data) would inflate every
figure. Commands are forked from this tiny process instead. Protocol: one JSON
request per line on stdin (argv, env), one JSON answer per line on stdout.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time


def main() -> None:
    for line in sys.stdin:
        request = json.loads(line)
        start = time.perf_counter()
        proc = subprocess.Popen(
            request["argv"], env=request["env"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        assert proc.stderr is not None
        stderr = proc.stderr.read()
        _, status, usage = os.wait4(proc.pid, 0)
        answer = {
            "seconds": time.perf_counter() - start,
            "peak_rss_kb": usage.ru_maxrss,
            "exit_code": os.waitstatus_to_exitcode(status),
            "stderr": stderr.decode(errors="replace")[-2000:],
        }
        sys.stdout.write(json.dumps(answer) + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
