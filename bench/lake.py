"""Time what keeping a large silver table costs: merge, SCD2 and opening after many appends.

    python -m bench.lake                        # 6,000,000 rows, every case once
    python -m bench.lake --rows 200000 --appends 200
    python -m bench.lake --cases merge,scd2 --write-readme

The input is the file-path bench's seeded extract (generated into bench/data/ when missing),
typed once into `bench/data/cases_<rows>.typed.parquet` with its change set beside it
(`*.changes.parquet`); both are rebuilt when the CSV is newer or `INPUT_VERSION` in
bench/lake_cases.py changed. Every
case runs twice as `python -m bench.lake_cases {prepare,run} NAME TYPED WORKDIR`: an untimed
process builds the table the case needs, then a fresh process times the operation alone
(wall and CPU seconds of the operation; the process's peak RSS from the kernel, as in
bench.run). The tables of the two open
cases are built once per run under `<workdir>/shared/` and copied for each.

The report is a markdown block: the tables measured, the targets of issue #5 with PASS or
FAIL, the machine and the versions. A failing target does not change the exit code; a case
that crashes does (exit 1).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from bench.lake_cases import APPENDS, CASES
from bench.run import (
    BENCH,
    DATA,
    README,
    _env,
    _git_revision,
    _load,
    _wait_sampling,
    ensure_input,
    machine,
    versions,
    write_readme,
)

START_MARK = "<!-- bench:lake:results:start -->"
END_MARK = "<!-- bench:lake:results:end -->"
CASE_NAMES = ("full_load", "merge", "scd2", "open_unmaintained", "open_maintained")
MERGE_VS_LOAD = 0.15  # merge of a 1% change set <= 15% of the table's full-load time
FILES_TOUCHED = 0.10  # ... touching <= 10% of its files
SCD2_VS_MERGE = 1.5  # SCD2 <= 1.5x the merge
OPEN_SECONDS = 1.0  # open <= 1 s after 1,000 appends plus maintenance
VERSIONS = ("polars", "deltalake", "pyarrow")


@dataclass(frozen=True)
class Run:
    case: str
    rows: int | None  # rows the case wrote or counted; None when it crashed
    seconds: float  # the operation alone
    cpu_seconds: float  # the operation alone, all threads (process_time)
    process_cpu_seconds: float  # user + system of the whole timed process, from wait4
    peak_rss_mb: float
    prepare_seconds: float
    returncode: int
    metrics: dict[str, Any] = field(default_factory=dict)
    prepared: dict[str, Any] = field(default_factory=dict)

    @property
    def crashed(self) -> bool:
        return self.returncode != 0


def make_input(csv: Path, logs: Path) -> Path:
    """The typed table and change set (cached beside the CSV); returns the typed Parquet."""
    logs.mkdir(parents=True, exist_ok=True)
    with (logs / "input.log").open("wb") as err:
        done = subprocess.run(
            [sys.executable, "-m", "bench.lake_cases", "input", str(csv)],
            stdout=subprocess.PIPE,
            stderr=err,
            cwd=BENCH.parent,
            env=_env(),
        )
    if done.returncode:
        raise SystemExit(f"typing {csv} failed; see {logs / 'input.log'}")
    return Path(json.loads(done.stdout.decode().strip().splitlines()[-1])["typed"])


def run_case(name: str, typed: Path, workdir: Path, logs: Path, appends: int) -> Run:
    """Prepare the case's table in one process, then time the operation in a fresh one."""
    case_dir = workdir / name
    shutil.rmtree(case_dir, ignore_errors=True)
    args = [str(typed), str(case_dir), "--shared", str(workdir / "shared")]
    args += ["--appends", str(appends)]
    base = [sys.executable, "-m", "bench.lake_cases"]
    print(f"  {name}: preparing ...", file=sys.stderr, flush=True)
    started = time.perf_counter()
    with (logs / f"{name}.prepare.log").open("wb") as err:
        prepared = subprocess.run(
            [*base, "prepare", name, *args],
            stdout=subprocess.PIPE,
            stderr=err,
            cwd=BENCH.parent,
            env=_env(),
        )
    prepare_seconds = time.perf_counter() - started
    if prepared.returncode:
        return _crashed(name, prepared.returncode, prepare_seconds, logs / f"{name}.prepare.log")
    info = json.loads(prepared.stdout.decode().strip().splitlines()[-1])["prepared"]

    out_path, log_path = logs / f"{name}.json", logs / f"{name}.log"
    started = time.perf_counter()
    with log_path.open("wb") as err, out_path.open("wb") as out:
        child = subprocess.Popen(
            [*base, "run", name, *args], stdout=out, stderr=err, cwd=BENCH.parent, env=_env()
        )
        status, usage, samples = _wait_sampling(child.pid, started)
    (logs / f"{name}.rss.tsv").write_text(
        "seconds\trss_mb\n" + "".join(f"{s:.1f}\t{mb:.0f}\n" for s, mb in samples),
        encoding="utf-8",
    )
    shutil.rmtree(case_dir, ignore_errors=True)
    returncode = os.waitstatus_to_exitcode(status)
    if returncode:
        return _crashed(name, returncode, prepare_seconds, log_path)
    result = json.loads(out_path.read_text(encoding="utf-8").strip().splitlines()[-1])
    run = Run(
        case=name,
        rows=result["rows"],
        seconds=result["seconds"],
        cpu_seconds=result["cpu_seconds"],
        process_cpu_seconds=usage.ru_utime + usage.ru_stime,
        peak_rss_mb=usage.ru_maxrss / 1024,  # Linux reports KiB
        prepare_seconds=prepare_seconds,
        returncode=0,
        metrics=result["metrics"],
        prepared=info,
    )
    print(
        f"  {name}: {run.seconds:.2f} s (prepared in {prepare_seconds:.0f} s), "
        f"{run.cpu_seconds:.1f} s CPU, {run.peak_rss_mb:,.0f} MB peak RSS; {run.metrics}",
        file=sys.stderr,
        flush=True,
    )
    return run


def _crashed(name: str, returncode: int, prepare_seconds: float, log_path: Path) -> Run:
    tail = log_path.read_text(encoding="utf-8", errors="replace").splitlines()[-15:]
    print(f"  {name} CRASHED (exit {returncode}):", file=sys.stderr)
    print("    " + "\n    ".join(tail), file=sys.stderr)
    return Run(name, None, 0.0, 0.0, 0.0, 0.0, prepare_seconds, returncode or 1)


# --- the report ----------------------------------------------------------------------------


def _ok(runs: dict[str, Run], name: str) -> Run | None:
    run = runs.get(name)
    return run if run is not None and not run.crashed else None


def _verdict(ok: bool | None) -> str:
    return "not measured" if ok is None else ("PASS" if ok else "**FAIL**")


def touched(run: Run) -> tuple[int, int]:
    """(files the merge read or rewrote, files in the table before it). A merge reads every
    file of the partitions in its predicate and rewrites those holding a matched row;
    delta-rs 1.6 reports `num_target_files_scanned` as 0, so the read files are counted from
    the log's partition values."""
    m = run.metrics
    return max(m["files_in_partitions"], m.get("num_target_files_removed", 0)), m["files_before"]


def targets(runs: dict[str, Run], appends: int) -> list[tuple[str, str, bool | None]]:
    """(target, measured, passed) per target of issue #5; passed is None when not measured."""
    load, merge, scd2 = _ok(runs, "full_load"), _ok(runs, "merge"), _ok(runs, "scd2")
    opened = _ok(runs, "open_maintained")
    files = touched(merge) if merge else None
    return [
        (
            f"merge of the 1% change set ≤ {MERGE_VS_LOAD:.0%} of the full-load time",
            f"{merge.seconds / load.seconds:.0%} ({merge.seconds:.1f} s / {load.seconds:.1f} s; "
            f"CPU {merge.cpu_seconds / load.cpu_seconds:.0%})"
            if merge and load
            else "–",
            merge.seconds <= MERGE_VS_LOAD * load.seconds if merge and load else None,
        ),
        (
            f"merge touches ≤ {FILES_TOUCHED:.0%} of the table's files (read or rewritten)",
            f"{files[0] / files[1]:.0%} ({files[0]} of {files[1]})" if files else "–",
            files[0] <= FILES_TOUCHED * files[1] if files else None,
        ),
        (
            f"SCD2 of the same change set ≤ {SCD2_VS_MERGE:.1f}× the merge",
            f"{scd2.seconds / merge.seconds:.2f}× ({scd2.seconds:.1f} s; "
            f"CPU {scd2.cpu_seconds / merge.cpu_seconds:.2f}×)"
            if scd2 and merge
            else "–",
            scd2.seconds <= SCD2_VS_MERGE * merge.seconds if scd2 and merge else None,
        ),
        (
            f"open ≤ {OPEN_SECONDS:.0f} s after {appends:,} appends plus maintenance",
            f"{opened.seconds:.2f} s" if opened else "–",
            opened.seconds <= OPEN_SECONDS if opened else None,
        ),
    ]


def describe(run: Run) -> tuple[str, str]:
    """(what was measured, the table it ran on) for the results table."""
    m, p = run.metrics, run.prepared
    if run.case == "full_load":
        return (
            'full load: `write_batch(mode="merge")` creates the table',
            f"{run.rows:,} rows → {m['files_after']} files in {m['partitions']} partitions, "
            f"{m['bytes'] / 1e6:,.0f} MB",
        )
    if run.case in ("merge", "scd2"):
        what = (
            'merge: `write_batch(mode="merge")` of the change set'
            if run.case == "merge"
            else 'SCD2: `write_batch(mode="scd2", scd2_source="delta")` of the change set'
        )
        return what, (
            f"{run.rows:,} source rows ({m['rows_new_cases']:,} new cases), partitions "
            f"{', '.join(map(str, m['partitions_in_batch']))}; files: "
            f"{m['files_before']} before, {m['files_in_partitions']} in those partitions, "
            f"{m.get('num_target_files_removed', 0)} rewritten, "
            f"{m.get('num_target_files_added', 0)} added; rows copied "
            f"{m.get('num_target_rows_copied', 0):,}, updated "
            f"{m.get('num_target_rows_updated', 0):,}, inserted "
            f"{m.get('num_target_rows_inserted', 0):,}"
        )
    maintained = run.case == "open_maintained"
    what = "open after the appends + `maintain()`" if maintained else "open after the appends only"
    table = (
        f"{run.rows:,} rows, version {m['version']}, {m['files']} files, "
        f"{m['log_json_files']} JSON commits in the log, checkpoint at "
        f"{m['checkpoint_version']}; polars count {m['polars_count_seconds']:.2f} s"
    )
    if maintained:
        table += (
            f"; maintenance {p['maintenance_seconds']:.0f} s: "
            f"{p['compaction_files_before']} → {p['compaction_files_after']} files, "
            f"{p['log_files_removed']} log files and {p['vacuum_files_deleted']} data files "
            f"deleted (retention {p['vacuum_retention_hours']:.0f} h)"
        )
    return what, table


def report(
    runs: dict[str, Run],
    typed: Path,
    appends: int,
    load: tuple[tuple[float, ...], tuple[float, ...]],
    revision: str,
) -> str:
    lines = [
        f"Measured {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC on `{typed.name}`, one run "
        f"per case, each timed in a fresh process; code at {revision}.",
        "",
        "| case | wall s | CPU s | peak RSS MB | table |",
        "|---|---:|---:|---:|---|",
    ]
    for name in CASE_NAMES:
        run = runs.get(name)
        if run is None:
            continue
        if run.crashed:
            lines.append(f"| {name} | CRASHED | – | – | see the logs |")
            continue
        what, table = describe(run)
        lines.append(
            f"| {what} | {run.seconds:.2f} | {run.cpu_seconds:.2f} | {run.peak_rss_mb:,.0f} "
            f"| {table} |"
        )
    lines += ["", "| target | measured | result |", "|---|---|---|"]
    lines += [f"| {t} | {m} | {_verdict(ok)} |" for t, m, ok in targets(runs, appends)]
    lines += [
        "",
        "Seconds and CPU seconds are the operation alone (CPU: all its threads); imports and "
        "reading the input happen before the clock. Peak RSS is the timed process's, input "
        "frame included. Machine: "
        + ", ".join(f"{k} {v}" for k, v in machine().items())
        + f"; load average {_load(load[0])} before, {_load(load[1])} after.",
        "",
        "Versions: " + ", ".join(f"{k} {v}" for k, v in versions(VERSIONS).items()) + ".",
    ]
    return "\n".join(lines)


# --- the command ---------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=6_000_000, help="input rows (default 6M)")
    parser.add_argument("--csv", type=Path, help="an existing extract instead of bench/data/")
    parser.add_argument("--cases", default=",".join(CASE_NAMES), help="comma-separated")
    parser.add_argument("--appends", type=int, default=APPENDS, help="appends before open")
    parser.add_argument("--workdir", type=Path, default=DATA / "lake-work")
    parser.add_argument("--write-readme", action="store_true", help="update bench/README.md")
    args = parser.parse_args(argv)
    cases = [c.strip() for c in args.cases.split(",") if c.strip()]
    unknown = [c for c in cases if c not in CASES]
    if unknown or not cases or args.appends < 1:
        parser.error(f"--cases takes {', '.join(CASE_NAMES)}; --appends must be >= 1")
    if args.csv and not args.csv.is_file():
        parser.error(f"--csv {args.csv}: no such file (leave --csv out to generate the input)")

    csv = args.csv.resolve() if args.csv else ensure_input(args.rows)
    workdir = args.workdir.resolve()
    logs = workdir / "logs"
    print(f"typing {csv.name} (cached beside it) ...", file=sys.stderr, flush=True)
    typed = make_input(csv, logs)
    load_before = os.getloadavg()
    revision = _git_revision()
    runs = {name: run_case(name, typed, workdir, logs, args.appends) for name in cases}
    shutil.rmtree(workdir / "shared", ignore_errors=True)

    block = report(runs, typed, args.appends, (load_before, os.getloadavg()), revision)
    (workdir / "results.json").write_text(
        json.dumps({"runs": [asdict(r) for r in runs.values()], "report": block}, indent=2),
        encoding="utf-8",
    )
    print(block)
    if args.write_readme:
        write_readme(block, start=START_MARK, end=END_MARK)
        print(f"\nwrote the results into {README}", file=sys.stderr)
    return 1 if any(r.crashed for r in runs.values()) else 0


if __name__ == "__main__":
    raise SystemExit(main())
