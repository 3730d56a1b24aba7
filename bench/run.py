"""Time the product path against three baselines, each case in its own fresh process.

    python -m bench.run                       # 6,000,000 rows, every case once
    python -m bench.run --rows 200000 --repeat 2
    python -m bench.run --csv /path/to/cases.csv --double --write-readme

The input is generated into bench/data/ when missing (seeded, so the same rows give the same
bytes). Every case runs as `python -m bench.case NAME CSV WORKDIR` in a new process; its wall
time is the case's own timed section (imports of its libraries included, the untimed copy
into the product's drop folder excluded), its CPU time and peak RSS come from the kernel
(`os.wait4`). With `--repeat R` the median of R runs is reported. `--double` also loads a
2× input through the product path to see whether memory stays flat.

The report is a markdown block: the machine, the versions, the table and PASS/FAIL per
target. Failing targets are reported, not hidden, and do not change the exit code; a case
that crashes does (exit 1).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

BENCH = Path(__file__).parent
DATA = BENCH / "data"
README = BENCH / "README.md"
START_MARK = "<!-- bench:results:start -->"
END_MARK = "<!-- bench:results:end -->"
CASE_NAMES = ("product", "b1", "b3", "b4")
DESCRIPTIONS = {
    "product": "kommunelake `load_dataset`: landing + parse + validate + quarantine + silver",
    "b1": "B1 bare `polars.read_csv` → `write_delta`",
    "b3": "B3 dlt: pyarrow streaming CSV → filesystem destination, delta",
    "b4": "B4 pandas `read_csv` + pandera (pandas) + `write_deltalake`",
}
VERSIONS = ("polars", "deltalake", "pandera", "pyarrow", "duckdb", "dagster")
# B3 and B4 need the bench dependency group (dlt, pandas, pandera[pandas]); `make bench`
# installs it into its own environment so the product runs as `make install` installs it.
BASELINE_CASES = ("b3", "b4")
BASELINE_VERSIONS = ("dlt", "pandas", "pandera", "polars", "pyarrow", "deltalake")
MB = 1024 * 1024
RSS_LIMIT_MB = 1024  # "peak RSS <= 1 GB", read as 1 GiB
RSS_FLATNESS = 0.15  # peak RSS on 2x the input within +-15% of peak RSS on 1x
TARGET_VS_B1 = 1.0
TARGET_VS_DLT = 0.6


@dataclass(frozen=True)
class Run:
    case: str
    input_rows: int
    rows: int | None  # rows written; None when the case crashed
    seconds: float  # the case's own timed section
    process_seconds: float  # the whole child process, interpreter start to exit
    cpu_seconds: float  # user + system
    peak_rss_mb: float
    peak_at_seconds: float | None  # when the sampled RSS was highest, from process start
    returncode: int
    log: str


@dataclass(frozen=True)
class Summary:
    case: str
    input_rows: int
    rows: int | None
    seconds: float
    cpu_seconds: float
    peak_rss_mb: float
    runs: int
    crashed: bool


def run_case(
    name: str,
    csv: Path,
    workdir: Path,
    logs: Path,
    input_rows: int,
    python: str = sys.executable,
) -> Run:
    """One case in a fresh child process of `python`; its CPU time and peak RSS come from
    wait4."""
    shutil.rmtree(workdir, ignore_errors=True)
    logs.mkdir(parents=True, exist_ok=True)
    log_path = logs / f"{workdir.name}.log"
    out_path = logs / f"{workdir.name}.json"
    command = [python, "-m", "bench.case", name, str(csv), str(workdir)]
    print(f"  {workdir.name}: {' '.join(command[1:])}", file=sys.stderr, flush=True)
    started = time.perf_counter()
    with log_path.open("wb") as err, out_path.open("wb") as out:
        child = subprocess.Popen(command, stdout=out, stderr=err, cwd=BENCH.parent, env=_env())
        status, usage, samples = _wait_sampling(child.pid, started)
    elapsed = time.perf_counter() - started
    peak_at = max(samples, key=lambda s: s[1])[0] if samples else None
    (logs / f"{workdir.name}.rss.tsv").write_text(
        "seconds\trss_mb\n" + "".join(f"{s:.1f}\t{mb:.0f}\n" for s, mb in samples),
        encoding="utf-8",
    )
    child.returncode = os.waitstatus_to_exitcode(status)
    lines = out_path.read_text(encoding="utf-8").strip().splitlines()
    result = json.loads(lines[-1]) if child.returncode == 0 and lines else {}
    shutil.rmtree(workdir, ignore_errors=True)
    run = Run(
        case=name,
        input_rows=input_rows,
        rows=result.get("rows"),
        seconds=result.get("seconds", elapsed),
        process_seconds=elapsed,
        cpu_seconds=usage.ru_utime + usage.ru_stime,
        peak_rss_mb=usage.ru_maxrss / 1024,  # Linux reports KiB
        peak_at_seconds=peak_at,
        returncode=child.returncode,
        log=str(log_path),
    )
    if run.returncode:
        tail = log_path.read_text(encoding="utf-8", errors="replace").splitlines()[-15:]
        print(f"  {workdir.name} CRASHED (exit {run.returncode}):", file=sys.stderr)
        print("    " + "\n    ".join(tail), file=sys.stderr)
    else:
        print(
            f"  {workdir.name}: {run.seconds:.1f} s, {run.cpu_seconds:.1f} s CPU, "
            f"{run.peak_rss_mb:,.0f} MB peak RSS "
            f"(sampled peak at {run.peak_at_seconds or 0:.0f} s), {run.rows:,} rows",
            file=sys.stderr,
            flush=True,
        )
    return run


def _wait_sampling(
    pid: int, started: float, every: float = 0.25
) -> tuple[int, resource.struct_rusage, list[tuple[float, float]]]:
    """Wait for the child, sampling its RSS from /proc meanwhile, so a log line's timestamp
    tells which step the peak belongs to; the exact peak still comes from wait4."""
    samples = []
    status_file = Path(f"/proc/{pid}/status")
    while True:
        done, status, usage = os.wait4(pid, os.WNOHANG)
        if done:
            return status, usage, samples
        try:
            for line in status_file.read_text().splitlines():
                if line.startswith("VmRSS:"):
                    samples.append((time.perf_counter() - started, int(line.split()[1]) / 1024))
                    break
        except OSError:  # gone between wait4 and the read
            pass
        time.sleep(every)


def _env() -> dict[str, str]:
    """The child's environment: hermetic, so no KOMMUNELAKE_* setting (a remote lake URI, a
    home) of the person running the bench changes where or how the product path writes."""
    return {k: v for k, v in os.environ.items() if not k.startswith("KOMMUNELAKE_")}


def summarise(runs: list[Run]) -> Summary:
    ok = [r for r in runs if r.returncode == 0]
    pick = ok or runs
    return Summary(
        case=runs[0].case,
        input_rows=runs[0].input_rows,
        rows=ok[0].rows if ok else None,
        seconds=statistics.median(r.seconds for r in pick),
        cpu_seconds=statistics.median(r.cpu_seconds for r in pick),
        peak_rss_mb=max(r.peak_rss_mb for r in pick),
        runs=len(runs),
        crashed=len(ok) < len(runs),
    )


def count_rows(csv: Path) -> int:
    """Data rows in the extract (lines minus the header); no quoted newlines in the bench file."""
    lines = 0
    with csv.open("rb") as handle:
        while block := handle.read(16 * MB):
            lines += block.count(b"\n")
    return lines - 1


def ensure_input(rows: int, path: Path | None = None) -> Path:
    path = path or DATA / f"cases_{_label(rows)}.csv"
    if not path.exists():
        print(f"generating {rows:,} rows into {path} ...", file=sys.stderr, flush=True)
        subprocess.run(
            [sys.executable, "-m", "bench.generate", "--rows", str(rows), "--out", str(path)],
            check=True,
            cwd=BENCH.parent,
        )
    return path


def _label(rows: int) -> str:
    if rows % 1_000_000 == 0:
        return f"{rows // 1_000_000}m"
    if rows % 1_000 == 0:
        return f"{rows // 1_000}k"
    return str(rows)


# --- the report ----------------------------------------------------------------------------


def machine() -> dict[str, str]:
    cpu = platform.processor() or platform.machine()
    memory = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                memory = f"{int(line.split()[1]) / 1024 / 1024:.0f} GiB"
                break
    except OSError:
        pass
    return {
        "CPU": cpu,
        "cores": str(os.cpu_count()),
        "RAM": memory or "unknown",
        "OS": platform.platform(),
    }


_VERSIONS_SCRIPT = """
import importlib.metadata, json, platform, sys
found = {"python": platform.python_version()}
for package in sys.argv[1:]:
    try:
        found[package] = importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        found[package] = "not installed"
print(json.dumps(found))
"""


def versions(packages: tuple[str, ...] = VERSIONS, python: str = sys.executable) -> dict[str, str]:
    """Python's and the packages' versions in the environment of `python`."""
    found = subprocess.run(
        [python, "-c", _VERSIONS_SCRIPT, *packages], capture_output=True, text=True, check=True
    )
    return json.loads(found.stdout)


def _git_revision() -> str:
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            cwd=BENCH.parent,
            check=True,
        ).stdout.strip()
        # The README is where the runners write their results: a change there is not code.
        dirty = subprocess.run(
            [
                "git",
                "status",
                "--porcelain",
                "--untracked-files=no",
                "--",
                ".",
                ":!bench/README.md",
            ],
            capture_output=True,
            text=True,
            cwd=BENCH.parent,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return head + (" (with uncommitted changes)" if dirty else "")


def _ratio(value: Summary | None, base: Summary | None) -> str:
    if not value or not base or value.crashed or base.crashed or not base.seconds:
        return "–"
    return f"{value.seconds / base.seconds:.2f}×"


def _verdict(ok: bool | None) -> str:
    return "not measured" if ok is None else ("PASS" if ok else "**FAIL**")


def targets(
    summaries: dict[str, Summary], doubled: Summary | None
) -> list[tuple[str, str, bool | None]]:
    """(target, measured, passed) per target of the issue; passed is None when not measured."""
    product, b1, b3 = summaries.get("product"), summaries.get("b1"), summaries.get("b3")
    if product is None or product.crashed:
        product = None
    if doubled is not None and doubled.crashed:
        doubled = None

    def faster(base: Summary | None, limit: float) -> bool | None:
        if product is None or base is None or base.crashed:
            return None
        return product.seconds <= limit * base.seconds

    peaks = [s.peak_rss_mb for s in (product, doubled) if s is not None]
    growth = doubled.peak_rss_mb / product.peak_rss_mb - 1 if product and doubled else None
    return [
        (
            f"product wall time ≤ {TARGET_VS_B1:.1f}× B1",
            _ratio(product, b1),
            faster(b1, TARGET_VS_B1),
        ),
        (
            f"product wall time ≤ {TARGET_VS_DLT:.1f}× dlt (B3)",
            _ratio(product, b3),
            faster(b3, TARGET_VS_DLT),
        ),
        (
            f"product peak RSS ≤ {RSS_LIMIT_MB:,} MB (1 GiB), 1× and 2× input",
            " / ".join(f"{p:,.0f} MB" for p in peaks) or "–",
            max(peaks) <= RSS_LIMIT_MB if peaks else None,
        ),
        (
            f"product peak RSS flat (±{RSS_FLATNESS:.0%}) when the input doubles",
            f"{growth:+.0%}" if growth is not None else "– (run with --double)",
            abs(growth) <= RSS_FLATNESS if growth is not None else None,
        ),
    ]


def report(
    summaries: dict[str, Summary],
    doubled: Summary | None,
    csv: Path,
    load: tuple[tuple[float, ...], tuple[float, ...]],
    repeat: int,
    revision: str,
    baseline_python: str = sys.executable,
) -> str:
    b1, b3 = summaries.get("b1"), summaries.get("b3")
    any_summary = next(iter(summaries.values()))
    lines = [
        f"Measured {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC on `{csv.name}` "
        f"({any_summary.input_rows:,} rows, {csv.stat().st_size / 1e6:,.0f} MB), "
        f"median of {repeat} run{'s' if repeat > 1 else ''} per case, "
        f"each in a fresh process; code at {revision}.",
        "",
        "| case | input rows | rows written | wall s | CPU s | peak RSS MB | × B1 | × dlt |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    rows = [summaries[n] for n in CASE_NAMES if n in summaries]
    rows += [doubled] if doubled else []
    for s in rows:
        name = DESCRIPTIONS[s.case] + (" (2× input)" if s is doubled else "")
        if s.crashed:
            lines.append(f"| {name} | {s.input_rows:,} | CRASHED | – | – | – | – | – |")
            continue
        lines.append(
            f"| {name} | {s.input_rows:,} | {s.rows:,} | {s.seconds:.1f} | {s.cpu_seconds:.1f} "
            f"| {s.peak_rss_mb:,.0f} | {_ratio(s, b1)} | {_ratio(s, b3)} |"
        )
    lines += ["", "| target | measured | result |", "|---|---|---|"]
    lines += [f"| {t} | {m} | {_verdict(ok)} |" for t, m, ok in targets(summaries, doubled)]
    lines += [
        "",
        "Machine: "
        + ", ".join(f"{k} {v}" for k, v in machine().items())
        + f"; load average {_load(load[0])} before, {_load(load[1])} after "
        "(the machine is shared, so wall times carry other people's work; CPU seconds less so)"
        + (
            "; PYTHONDONTWRITEBYTECODE is set and the packages have no compiled bytecode, so "
            "every process compiles its imports from source (about 2 s of CPU in the product "
            "case; dlt and pandas pay it too). `make bench` installs with --compile-bytecode."
            if os.environ.get("PYTHONDONTWRITEBYTECODE") and not _bytecode_compiled()
            else "; packages installed with compiled bytecode (`uv sync --compile-bytecode`)."
        ),
        "",
        "Versions: " + ", ".join(f"{k} {v}" for k, v in versions().items()) + ".",
    ]
    if baseline_python != sys.executable:
        baseline = versions(BASELINE_VERSIONS, baseline_python)
        lines[-1] += (
            f" B3 and B4 ran in their own environment (`{baseline_python}`): "
            + ", ".join(f"{k} {v}" for k, v in baseline.items())
            + "."
        )
    return "\n".join(lines)


def _bytecode_compiled() -> bool:
    """Whether the installed packages carry compiled bytecode (uv sync --compile-bytecode)."""
    import polars

    return any((Path(polars.__file__).parent / "__pycache__").glob("*.pyc"))


def _load(values: tuple[float, ...]) -> str:
    return "/".join(f"{v:.1f}" for v in values)


def write_readme(
    block: str, readme: Path = README, start: str = START_MARK, end: str = END_MARK
) -> None:
    """Replace what is between the `start` and `end` markers of `readme` with `block`."""
    text = readme.read_text(encoding="utf-8")
    if start not in text or end not in text:
        raise SystemExit(f"{readme}: markers {start} / {end} not found; add them")
    before, rest = text.split(start, 1)
    _, after = rest.split(end, 1)
    readme.write_text(f"{before}{start}\n{block}\n{end}{after}", encoding="utf-8")


# --- the command ---------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=6_000_000, help="input rows (default 6M)")
    parser.add_argument("--csv", type=Path, help="an existing extract instead of bench/data/")
    parser.add_argument("--cases", default=",".join(CASE_NAMES), help="comma-separated")
    parser.add_argument("--repeat", type=int, default=1, help="runs per case; median reported")
    parser.add_argument("--double", action="store_true", help="also run product on 2× input")
    parser.add_argument("--workdir", type=Path, default=DATA / "work")
    parser.add_argument("--write-readme", action="store_true", help="update bench/README.md")
    parser.add_argument(
        "--baseline-python",
        default=sys.executable,
        help="interpreter of the environment with the bench group, for B3 and B4",
    )
    args = parser.parse_args(argv)
    cases = [c.strip() for c in args.cases.split(",") if c.strip()]
    unknown = [c for c in cases if c not in CASE_NAMES]
    if unknown or not cases or args.repeat < 1:
        parser.error(f"--cases takes {', '.join(CASE_NAMES)}; --repeat must be >= 1")

    if args.csv and not args.csv.is_file():
        parser.error(f"--csv {args.csv}: no such file (leave --csv out to generate the input)")
    csv = args.csv.resolve() if args.csv else ensure_input(args.rows)
    input_rows = count_rows(csv)
    doubled_csv = ensure_input(2 * input_rows) if args.double else None
    workdir = args.workdir.resolve()
    logs = workdir / "logs"
    load_before = os.getloadavg()
    revision = _git_revision()  # before the runs: others may commit while they go

    summaries = {}
    for name in cases:
        python = args.baseline_python if name in BASELINE_CASES else sys.executable
        runs = [
            run_case(name, csv, workdir / f"{name}-{i + 1}", logs, input_rows, python)
            for i in range(args.repeat)
        ]
        summaries[name] = summarise(runs)
    doubled = None
    if doubled_csv:
        runs = [
            run_case("product", doubled_csv, workdir / f"product-2x-{i + 1}", logs, 2 * input_rows)
            for i in range(args.repeat)
        ]
        doubled = summarise(runs)

    load = (load_before, os.getloadavg())
    block = report(summaries, doubled, csv, load, args.repeat, revision, args.baseline_python)
    (workdir / "results.json").write_text(
        json.dumps(
            {
                "summaries": [asdict(s) for s in [*summaries.values(), doubled] if s],
                "report": block,
            },
            indent=2,
        ),
        encoding="utf-8",
    )
    print(block)
    if args.write_readme:
        write_readme(block)
        print(f"\nwrote the results into {README}", file=sys.stderr)
    crashed = [s.case for s in [*summaries.values(), doubled] if s and s.crashed]
    return 1 if crashed else 0


if __name__ == "__main__":
    raise SystemExit(main())
