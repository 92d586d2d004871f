"""Run one command as a child process; print its wall time and peak RSS as JSON.

A fresh interpreter runs this for every measurement, so ``RUSAGE_CHILDREN`` holds
exactly the one child: ``python bench/measure.py CMD ARGS...``.
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys
import time


def main() -> None:
    command = sys.argv[1:]
    start = time.perf_counter()
    completed = subprocess.run(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    seconds = time.perf_counter() - start
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    # ru_maxrss is in kilobytes on Linux (bytes on macOS).
    scale = 1 if sys.platform == "darwin" else 1024
    report = {
        "seconds": seconds,
        "peak_bytes": usage.ru_maxrss * scale,
        "cpu_seconds": usage.ru_utime + usage.ru_stime,
        "returncode": completed.returncode,
        "stderr": completed.stderr.decode(errors="replace")[-2000:],
    }
    print(json.dumps(report))


if __name__ == "__main__":
    main()
