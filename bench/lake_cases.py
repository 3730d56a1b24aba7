"""The lake bench's cases: what keeping a large silver table costs after its first load.

    python -m bench.lake_cases input CSV                   # typed Parquet + change set, cached
    python -m bench.lake_cases prepare NAME TYPED WORKDIR  # untimed: the table the case needs
    python -m bench.lake_cases run NAME TYPED WORKDIR      # timed: prints one JSON line

The runner (`python -m bench.lake`) calls `prepare` and `run` in two fresh processes per case,
so the timed process's peak RSS is the operation's own (with its input), and a table is
opened the way a new reader opens it. Only the operation itself is timed, in wall and CPU
seconds (imports, reading the input and counting files happen before the clock starts).

The table is the case extract as silver holds it: typed (dates, decimal commas), rows the
contract refuses dropped, repeated case numbers dropped (the earlier row wins), CPR numbers
pseudonymised, lineage columns added, and partitioned by `opened_year`, since a
municipality's cases are naturally kept by year and the recent years are the ones that change.

- full_load: `write_batch(mode="merge")` creating the partitioned table from the typed frame.
- merge: `write_batch(mode="merge")` of the change set into that table.
- scd2: `write_batch(mode="scd2", scd2_source="delta")` of the same change set into an SCD2
  table made from the same rows.
- open_maintained / open_unmaintained: the table after APPENDS daily appends of new cases,
  with and without `lake.maintenance.maintain`; timed: open, version, schema, row count and
  file list from the log, then a polars count over the files.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import shutil
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from bench.cases import BENCH_KEY, HEADERS

KEYS = ["case_id"]
PARTITION = "opened_year"
APPENDS = 1_000
APPEND_ROWS_PER_TABLE_ROW = 1 / 4_000  # 1,500 rows a day at 6M: the extract's ~545k cases/year
CHANGE_SHARE = 0.01  # the change set is 1% of the table's rows
NEW_SHARE = 0.2  # of which brand-new cases; the rest update existing ones
LATEST_YEAR_SHARE = 0.75  # of the updates; the rest are cases opened the year before
SEED = 20261123
LOADED_AT = dt.datetime(2026, 1, 1, 5, tzinfo=dt.UTC)  # the full load's lineage and valid_from
CHANGED_AT = dt.datetime(2026, 1, 2, 5, tzinfo=dt.UTC)  # the change set's
CONTRACT_COLUMNS = [*HEADERS.values()]
LINEAGE = ["_batch_id", "_source_file", "_ingested_at"]
APPENDED = "appended"  # the shared table after the appends, under <workdir>/../shared/
# Raise when type_extract, change_set or their constants change: the cached Parquet files
# (typing 6M rows takes minutes) carry the version that made them and are rebuilt otherwise.
INPUT_VERSION = 1
STAMP = "kommunelake.bench.input_version"

log = logging.getLogger("bench.lake")


# --- input: the typed table and the change set, cached beside the CSV ---------------------


def typed_path(csv: Path) -> Path:
    return csv.with_suffix(".typed.parquet")


def changes_path(typed: Path) -> Path:
    return typed.with_name(typed.name.replace(".typed.parquet", ".changes.parquet"))


def is_fresh(path: Path, source: Path) -> bool:
    """The cached file exists, is newer than its source and was made by this INPUT_VERSION."""
    if not path.exists() or path.stat().st_mtime < source.stat().st_mtime:
        return False
    return pl.read_parquet_metadata(path).get(STAMP) == str(INPUT_VERSION)


def make_input(csv: Path) -> tuple[Path, Path]:
    """Type the extract once into Parquet, and draw the change set from it (both seeded)."""
    from lake.privacy import pseudonymise

    typed, changes = typed_path(csv), changes_path(typed_path(csv))
    if not is_fresh(typed, csv):
        frame = type_extract(csv)
        frame = pseudonymise(frame, {"cpr": "cpr"}, BENCH_KEY).with_columns(
            _lineage("bench-full-load", csv.name, LOADED_AT)
        )
        frame.write_parquet(typed, metadata={STAMP: str(INPUT_VERSION)})
        log.info("typed %s: %d rows into %s", csv.name, frame.height, typed)
    if not is_fresh(changes, typed):
        frame = pl.read_parquet(typed)
        change_set(frame).write_parquet(changes, metadata={STAMP: str(INPUT_VERSION)})
        log.info("change set into %s", changes)
    return typed, changes


def type_extract(csv: Path) -> pl.DataFrame:
    """The extract typed as the YAML says, without the rows the contract would quarantine.

    Dates `%d-%m-%Y`, amounts with a decimal comma and `.` thousands; a row is dropped when a
    value does not parse or fails a check of `schemas.case_extract.CaseExtract` (nulls, CPR
    date, kommunekode, isin, amount >= 0, closed >= opened), and a repeated case number keeps
    its first row, as the product path does."""
    from schemas.case_extract import CASE_TYPES, STATUSES
    from schemas.checks import is_valid_cpr, is_valid_kommunekode

    def date(column: str) -> pl.Expr:
        return pl.col(column).str.to_date("%d-%m-%Y", strict=False)

    required = [c for c in CONTRACT_COLUMNS if c != "closed"]
    return (
        pl.scan_csv(csv, separator=";", infer_schema=False)
        .rename(HEADERS)
        .with_columns(__closed_ok=pl.col("closed").is_null() | date("closed").is_not_null())
        .with_columns(
            date("opened").alias("opened"),
            date("closed").alias("closed"),
            pl.col("amount")
            .str.replace_all(".", "", literal=True)
            .str.replace(",", ".", literal=True)
            .cast(pl.Float64, strict=False),
        )
        .filter(
            pl.all_horizontal(pl.col(required).is_not_null()),
            pl.col("__closed_ok"),
            pl.col("amount") >= 0,
            pl.col("case_type").is_in(CASE_TYPES),
            pl.col("status").is_in(STATUSES),
            is_valid_cpr(pl.col("cpr")),
            is_valid_kommunekode(pl.col("kommunekode")),
            pl.col("closed").is_null() | (pl.col("closed") >= pl.col("opened")),
        )
        .unique(subset=KEYS, keep="first", maintain_order=True)
        .select(*CONTRACT_COLUMNS, pl.col("opened").dt.year().alias(PARTITION))
        .collect()
    )


def change_set(table: pl.DataFrame, seed: int = SEED) -> pl.DataFrame:
    """1% of the table's rows as one delivery of changes, a few weeks of a fagsystem's work.

    - NEW_SHARE are brand-new cases opened in the last 30 days before the extract's last day
      (status Oprettet, open), for citizens already in the table, with new case numbers.
    - The rest update existing cases: LATEST_YEAR_SHARE opened in the latest year, the others
      the year before (a case runs up to 900 days in the extract). Each is one of: a status
      change; a closing (closed set between opened and the last day, status Afsluttet); an
      amount change (±20%) with a status change. Every row carries the new batch's lineage.
    """
    from schemas.case_extract import STATUSES

    rng = np.random.default_rng(seed)
    size = max(2, round(table.height * CHANGE_SHARE))
    new = round(size * NEW_SHARE)
    updates = size - new
    latest = int(table.get_column(PARTITION).max())
    last_day = table.get_column("opened").max()
    in_latest = round(updates * LATEST_YEAR_SHARE)
    picked = []
    for year, count in ((latest, in_latest), (latest - 1, updates - in_latest)):
        pool = table.filter(pl.col(PARTITION) == year)
        picked.append(pool[np.sort(rng.choice(pool.height, size=count, replace=False))])
    changed = pl.concat(picked)

    kind = pl.Series(rng.integers(0, 3, changed.height))  # 0 status, 1 closing, 2 amount
    shift = pl.Series(rng.integers(1, len(STATUSES), changed.height))
    fraction = pl.Series(rng.random(changed.height))
    factor = pl.Series(rng.uniform(0.8, 1.2, changed.height))
    status_index = pl.col("status").replace_strict(STATUSES, range(len(STATUSES)))
    other_status = ((status_index + shift) % len(STATUSES)).replace_strict(
        range(len(STATUSES)), STATUSES, return_dtype=pl.String
    )
    span_days = (pl.lit(last_day) - pl.col("opened")).dt.total_days()
    closing = pl.col("opened") + pl.duration(days=(span_days * fraction).floor().cast(pl.Int64))
    updated = changed.with_columns(
        pl.when(kind == 1).then(pl.lit("Afsluttet")).otherwise(other_status).alias("status"),
        pl.when(kind == 1).then(closing).otherwise("closed").alias("closed"),
        pl.when(kind == 2).then((pl.col("amount") * factor).round(2)).otherwise("amount"),
    )
    top = int(table.get_column("case_id").str.slice(4).cast(pl.Int64).max())
    opened = [last_day - dt.timedelta(days=int(d)) for d in rng.integers(0, 30, new)]
    brand_new = new_cases(population(table), rng, top + 1, opened)
    return pl.concat([updated.drop(LINEAGE), brand_new]).with_columns(
        _lineage("bench-changes", "changes.csv", CHANGED_AT)
    )


Population = tuple[list[str], pl.Series]  # the table's units, and a CPR pseudonym per row


def population(table: pl.DataFrame) -> Population:
    return table.get_column("unit").unique().sort().to_list(), table.get_column("cpr")


def new_cases(
    people: Population, rng: np.random.Generator, first_id: int, opened: list[dt.date]
) -> pl.DataFrame:
    """len(opened) new open cases (status Oprettet) of citizens already in the table."""
    from schemas.case_extract import CASE_TYPES

    count = len(opened)
    units, citizens = people
    return pl.DataFrame(
        {
            "case_id": [f"SAG-{first_id + i:09d}" for i in range(count)],
            "cpr": citizens.gather(rng.integers(0, citizens.len(), count)),
            "case_type": np.array(CASE_TYPES)[rng.integers(0, len(CASE_TYPES), count)],
            "opened": pl.Series(opened, dtype=pl.Date),
            "closed": pl.Series([None] * count, dtype=pl.Date),
            "unit": np.array(units)[rng.integers(0, len(units), count)],
            "caseworker": [f"M{n:05d}" for n in rng.integers(1, 2_000, count)],
            "amount": rng.integers(0, 250_000_00, count) / 100,
            "status": ["Oprettet"] * count,
            "kommunekode": ["0101"] * count,
        }
    ).with_columns(pl.col("opened").dt.year().alias(PARTITION))


def _lineage(batch_id: str, source_file: str, at: dt.datetime) -> list[pl.Expr]:
    return [
        pl.lit(batch_id).alias("_batch_id"),
        pl.lit(source_file).alias("_source_file"),
        pl.lit(at).cast(pl.Datetime("us", "UTC")).alias("_ingested_at"),
    ]


# --- tables --------------------------------------------------------------------------------


def silver(workdir: Path) -> str:
    return str(workdir / "silver" / "case_extract")


def load_full(uri: str, typed: pl.DataFrame, mode: str = "merge") -> Any:
    from lake.tables import write_batch

    return write_batch(
        uri,
        typed,
        mode=mode,
        keys=KEYS,
        app_id="bench-full-load",
        partition_by=[PARTITION],
        valid_at=LOADED_AT,
    )


def file_count(uri: str) -> int:
    from deltalake import DeltaTable

    return DeltaTable(uri).get_add_actions().num_rows


def appended_table(typed_file: Path, shared: Path, appends: int) -> Path:
    """The silver table after `appends` daily appends of new cases; built once per run.

    Day i appends the cases opened i days after the extract's last day (1,500 at 6M rows,
    about the extract's rate), with write_batch(mode="append"), one commit each. The writer
    checkpoints every 100 commits by itself (delta.checkpointInterval)."""
    from lake.tables import write_batch

    done = shared / f"{APPENDED}-{appends}"
    if (done / ".complete").exists():
        return done
    shutil.rmtree(done, ignore_errors=True)
    typed = pl.read_parquet(typed_file)
    uri = str(done)
    load_full(uri, typed)
    rng = np.random.default_rng(SEED + 1)
    per_day = max(1, round(typed.height * APPEND_ROWS_PER_TABLE_ROW))
    next_id = int(typed.get_column("case_id").str.slice(4).cast(pl.Int64).max()) + 1
    last_day = typed.get_column("opened").max()
    people = population(typed)
    started = time.perf_counter()
    for day in range(1, appends + 1):
        opened = [last_day + dt.timedelta(days=day)] * per_day
        batch = new_cases(people, rng, next_id, opened).with_columns(
            _lineage(f"bench-append-{day:04d}", f"cases_{day:04d}.csv", LOADED_AT)
        )
        next_id += per_day
        write_batch(
            uri, batch, mode="append", app_id=f"bench-append-{day:04d}", partition_by=[PARTITION]
        )
        if day % 100 == 0:
            log.info(
                "%d/%d appends of %d rows (%.2f s each so far)",
                day,
                appends,
                per_day,
                (time.perf_counter() - started) / day,
            )
    (done / ".complete").touch()
    return done


# --- prepare (untimed, its own process) ----------------------------------------------------


def prepare_merge(typed_file: Path, workdir: Path, shared: Path, appends: int) -> dict:
    commit = load_full(silver(workdir), pl.read_parquet(typed_file))
    return {"version": commit.version}


def prepare_scd2(typed_file: Path, workdir: Path, shared: Path, appends: int) -> dict:
    commit = load_full(silver(workdir), pl.read_parquet(typed_file), mode="scd2")
    return {"version": commit.version}


def prepare_open_unmaintained(typed_file: Path, workdir: Path, shared: Path, appends: int) -> dict:
    source = appended_table(typed_file, shared, appends)
    shutil.copytree(source, silver(workdir), ignore=shutil.ignore_patterns(".complete"))
    return {}


def prepare_open_maintained(typed_file: Path, workdir: Path, shared: Path, appends: int) -> dict:
    """The appended table, then the product's routine: `lake.maintenance.maintain` with its
    defaults (compaction to 128 MB per partition, checkpoint + log clean-up, vacuum at 168 h).
    """
    from lake.maintenance import maintain

    prepare_open_unmaintained(typed_file, workdir, shared, appends)
    started = time.perf_counter()
    report = maintain(silver(workdir))
    return {
        "maintenance_seconds": round(time.perf_counter() - started, 2),
        "compaction_files_before": report.compaction.files_before,
        "compaction_files_after": report.compaction.files_after,
        "compaction_errors": len(report.compaction.errors),
        "checkpoint_created": report.checkpoint.checkpoint_created,
        "log_files_removed": report.checkpoint.log_files_removed,
        "vacuum_retention_hours": report.vacuum.retention_hours,
        "vacuum_files_deleted": report.vacuum.files_deleted,
    }


# --- the timed cases -----------------------------------------------------------------------


class Clock:
    """Wall and CPU seconds (all threads of this process) of the `with` block."""

    def __enter__(self) -> Clock:
        self.wall, self.cpu = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *exc: object) -> None:
        self.wall = time.perf_counter() - self.wall
        self.cpu = time.process_time() - self.cpu


def full_load(typed_file: Path, workdir: Path) -> tuple[Clock, int, dict]:
    typed = pl.read_parquet(typed_file)
    uri = silver(workdir)
    with Clock() as clock:
        load_full(uri, typed)
    return clock, typed.height, {"files_after": file_count(uri), **_layout(uri)}


def merge(typed_file: Path, workdir: Path) -> tuple[Clock, int, dict]:
    from lake.tables import write_batch

    def apply(uri: str, batch: pl.DataFrame) -> Any:
        return write_batch(
            uri, batch, mode="merge", keys=KEYS, app_id="bench-changes", partition_by=[PARTITION]
        )

    return _change(typed_file, workdir, apply)


def scd2(typed_file: Path, workdir: Path) -> tuple[Clock, int, dict]:
    from lake.tables import write_batch

    def apply(uri: str, batch: pl.DataFrame) -> Any:
        return write_batch(
            uri,
            batch,
            mode="scd2",
            keys=KEYS,
            app_id="bench-changes",
            partition_by=[PARTITION],
            scd2_source="delta",
            valid_at=CHANGED_AT,
        )

    return _change(typed_file, workdir, apply)


def _change(
    typed_file: Path, workdir: Path, apply: Callable[[str, pl.DataFrame], Any]
) -> tuple[Clock, int, dict]:
    from deltalake import DeltaTable

    batch = pl.read_parquet(changes_path(typed_file))
    uri = silver(workdir)
    partitions = sorted(batch.get_column(PARTITION).unique().to_list())
    files = DeltaTable(uri).get_add_actions(flatten=True)
    in_partitions = files.column(f"partition.{PARTITION}").to_pylist()
    stored = pl.scan_delta(uri).select(KEYS).collect()
    new = batch.join(stored, on=KEYS, how="anti").height
    with Clock() as clock:
        commit = apply(uri, batch)
    if not commit.committed:
        raise RuntimeError(f"the change set was not committed: {commit}")
    # delta-rs's own timing of its merge (Commit.metrics keeps only the counts): the rest of
    # the clock is kommunelake's work around it (checks, and SCD2's read of current versions)
    entry = DeltaTable(uri).history(1)[0]
    merge_ms = {
        k: int(v) for k, v in entry.get("operationMetrics", {}).items() if k.endswith("time_ms")
    }
    return (
        clock,
        batch.height,
        {
            "files_before": files.num_rows,
            # what the merge reads: every file of the partitions its predicate names
            "files_in_partitions": sum(1 for v in in_partitions if int(v) in partitions),
            "files_after": file_count(uri),
            "partitions_in_batch": partitions,
            "rows_new_cases": new,
            "delta_merge_ms": merge_ms,
            **commit.metrics,
        },
    )


def _open(typed_file: Path, workdir: Path) -> tuple[Clock, int, dict]:
    from deltalake import DeltaTable

    uri = silver(workdir)
    with Clock() as clock:
        table = DeltaTable(uri)
        version = table.version()
        schema = table.schema()
        rows = table.count()
        files = table.get_add_actions().num_rows
    with Clock() as scan:
        counted = pl.scan_delta(uri).select(pl.len()).collect().item()
    if counted != rows:
        raise RuntimeError(f"{uri}: the log counts {rows} rows, polars {counted}")
    log_dir = Path(uri) / "_delta_log"
    checkpoint = log_dir / "_last_checkpoint"
    return (
        clock,
        rows,
        {
            "version": version,
            "columns": len(schema.fields),
            "files": files,
            "log_json_files": len(list(log_dir.glob("*.json"))),
            "checkpoint_version": json.loads(checkpoint.read_text())["version"]
            if checkpoint.exists()
            else None,
            "polars_count_seconds": round(scan.wall, 3),
        },
    )


def _layout(uri: str) -> dict:
    from deltalake import DeltaTable

    actions = DeltaTable(uri).get_add_actions(flatten=True)
    sizes = actions.column("size_bytes").to_pylist()
    return {"partitions": len(DeltaTable(uri).partitions()), "bytes": int(sum(sizes))}


CASES: dict[str, Callable[[Path, Path], tuple[Clock, int, dict]]] = {
    "full_load": full_load,
    "merge": merge,
    "scd2": scd2,
    "open_maintained": _open,
    "open_unmaintained": _open,
}
PREPARE: dict[str, Callable[[Path, Path, Path, int], dict]] = {
    "merge": prepare_merge,
    "scd2": prepare_scd2,
    "open_maintained": prepare_open_maintained,
    "open_unmaintained": prepare_open_unmaintained,
}


# --- the command ---------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    steps = parser.add_subparsers(dest="step", required=True)
    make = steps.add_parser("input", help="type the extract and draw the change set (cached)")
    make.add_argument("csv", type=Path)
    for step in ("prepare", "run"):
        sub = steps.add_parser(step)
        sub.add_argument("name", choices=sorted(CASES))
        sub.add_argument("typed", type=Path)
        sub.add_argument("workdir", type=Path)
        sub.add_argument("--shared", type=Path, help="where the appended table is cached")
        sub.add_argument("--appends", type=int, default=APPENDS)
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO,
        stream=sys.stderr,
        format="%(relativeCreated)9.0f ms %(name)s %(levelname)s %(message)s",
    )
    started = time.perf_counter()
    if args.step == "input":
        typed, changes = make_input(args.csv)
        result: dict[str, Any] = {"typed": str(typed), "changes": str(changes)}
    elif args.step == "prepare":
        args.workdir.mkdir(parents=True, exist_ok=True)
        shared = args.shared or args.workdir.parent / "shared"
        prepare = PREPARE.get(args.name)
        info = prepare(args.typed, args.workdir, shared, args.appends) if prepare else {}
        result = {"case": args.name, "prepared": info}
    else:
        # the case's libraries are imported before the clock starts
        import deltalake  # noqa: F401

        import lake.tables  # noqa: F401

        clock, rows, metrics = CASES[args.name](args.typed, args.workdir)
        result = {
            "case": args.name,
            "rows": rows,
            "seconds": clock.wall,
            "cpu_seconds": clock.cpu,
            "metrics": metrics,
        }
    result["process_seconds"] = time.perf_counter() - started
    print(json.dumps(result, default=str), flush=True)


if __name__ == "__main__":
    main()
