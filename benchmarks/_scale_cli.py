"""Run one ``plinth`` command in this process, then report its peak RSS: the scale
benchmark's way to measure a whole CLI process's memory as well as its time.

    python benchmarks/_scale_cli.py worker:cli '{"argv": ["runs", "list"]}'

It does what the ``plinth`` console script does (``plinth.cli.main:main``) and then prints
one ``RESULT {"exit": CODE, "peak_rss_mb": MB}`` line. The peak is ``VmHWM`` of
``/proc/self/status`` (``ru_maxrss`` would carry the parent's peak across exec). It imports
nothing else: the process costs what ``plinth ARGS`` costs, plus reading one file.
"""

from __future__ import annotations

import json
import sys


def _peak_rss_mb() -> float | None:
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def main(argv: list[str]) -> int:
    if len(argv) != 2 or argv[0] != "worker:cli":
        print("usage: _scale_cli.py worker:cli JSON", file=sys.stderr)
        return 2
    from plinth.cli.main import main as plinth_main

    code = plinth_main(json.loads(argv[1])["argv"])
    sys.stdout.flush()
    print("RESULT " + json.dumps({"exit": code, "peak_rss_mb": _peak_rss_mb()}), flush=True)
    return code


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
