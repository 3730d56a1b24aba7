"""Run one bench case in this process and print its result as one JSON line on stdout.

    python -m bench.case NAME CSV WORKDIR [--profile STATS]

The runner starts a fresh process per case, so peak RSS and imports are the case's alone.
`seconds` times the case itself, imports of its libraries included; the untimed preparation
(copying the extract into the product's drop folder) is reported as `prepare_seconds`. Log
lines go to stderr with the seconds since start, which is where the product path's steps
show. `--profile` writes cProfile statistics for the case (slower; not for timing).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path

from bench.cases import CASES, PREPARE


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("name", choices=sorted(CASES))
    parser.add_argument("csv", type=Path)
    parser.add_argument("workdir", type=Path)
    parser.add_argument("--profile", type=Path, help="write cProfile statistics here")
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO,
        stream=sys.stderr,
        format="%(relativeCreated)9.0f ms %(name)s %(levelname)s %(message)s",
    )
    args.workdir.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    if args.name in PREPARE:
        PREPARE[args.name](args.csv, args.workdir)
    prepared = time.perf_counter()
    logging.getLogger("bench").info("%s: prepared, running the case", args.name)
    if args.profile:
        import cProfile

        profiler = cProfile.Profile()
        rows = profiler.runcall(CASES[args.name], args.csv, args.workdir)
        profiler.dump_stats(args.profile)
    else:
        rows = CASES[args.name](args.csv, args.workdir)
    finished = time.perf_counter()
    logging.getLogger("bench").info("%s: done, %d rows written", args.name, rows)
    result = {
        "case": args.name,
        "rows": rows,
        "seconds": finished - prepared,
        "prepare_seconds": prepared - started,
    }
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
