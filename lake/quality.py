"""Quality bookkeeping in the lake: one row per load in `quality/runs`, failing rows per
dataset in `quarantine/<dataset>`. Both are Delta tables written with the batch's app
transaction, so a replayed batch is recorded once."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.dataset
from deltalake import CommitProperties, DeltaTable, write_deltalake

from lake.home import Home
from lake.privacy import redacted
from lake.tables import commit_once, commit_properties
from lake.validation import FAILURE_SCHEMA, SHEET, SOURCE_ROW


@dataclass(frozen=True)
class RunRecord:
    dataset: str
    batch_id: str
    source_file: str  # privacy.shown_name of the delivered name; the clear one is in landing
    status: str  # loaded | rejected
    rows_in: int
    rows_valid: int
    rows_quarantined: int
    failed_checks: str  # JSON list of {"column", "check", "rows"}
    extra_columns: str  # JSON list of columns the file had beyond the contract
    silver_version: int | None
    started_at: dt.datetime
    finished_at: dt.datetime
    message: str
    dagster_run_id: str | None = None
    drift_decision: str = "none"  # none | ignored: cols | added: cols | rejected: cols


_RUN_SCHEMA = {
    "dataset": pl.String,
    "batch_id": pl.String,
    "source_file": pl.String,
    "status": pl.String,
    "rows_in": pl.Int64,
    "rows_valid": pl.Int64,
    "rows_quarantined": pl.Int64,
    "failed_checks": pl.String,
    "extra_columns": pl.String,
    "silver_version": pl.Int64,
    "started_at": pl.Datetime("us", "UTC"),
    "finished_at": pl.Datetime("us", "UTC"),
    "message": pl.String,
    "dagster_run_id": pl.String,
    "drift_decision": pl.String,
}


def record_run(home: Home, run: RunRecord, attempt: int = 0) -> None:
    # One row per batch and outcome: a rejected batch retried after a fix gets its "loaded"
    # row, while retrying it unchanged adds nothing.
    app_id = f"run:{run.dataset}:{run.batch_id}:{run.status}" + _suffix(attempt)
    uri = home.runs_uri
    frame = pl.DataFrame([asdict(run)], schema=_RUN_SCHEMA)
    # Every dataset's loads write this one table, often at once: commit_once makes the row
    # count once and turns an error after which the log has it into success.
    commit_once(
        uri,
        app_id,
        lambda props: write_deltalake(
            uri,
            frame.to_arrow(),
            mode="append",
            schema_mode="merge",  # homes written before a column was added keep working
            commit_properties=props,
        ),
    )


def runs(home: Home, dataset: str | None = None) -> pl.DataFrame:
    if not DeltaTable.is_deltatable(home.runs_uri):
        return pl.DataFrame(schema=_RUN_SCHEMA)
    frame = pl.read_delta(home.runs_uri)
    if dataset is not None:
        frame = frame.filter(pl.col("dataset") == dataset)
    return frame.sort("finished_at")


def failed_checks_json(counts: list[tuple[str, str, int]]) -> str:
    return json.dumps(
        [{"column": c, "check": k, "rows": n} for c, k, n in counts], ensure_ascii=False
    )


class QuarantineSpool:
    """A batch's failing rows in Parquet files on local disk until its quarantine commit.

    Quarantine is committed before silver, so it cannot be written chunk by chunk as
    silver's parts are; held in memory until then, the failures of a file whose every row
    fails (a vendor changed the date format) grew with the file. The outcome's digest is
    summed as rows are added, so the commit's id needs no second pass."""

    def __init__(self, folder: Path, dataset: str, batch_id: str) -> None:
        self.folder, self.dataset, self.batch_id = folder, dataset, batch_id
        self.at = dt.datetime.now(dt.UTC)
        self.digest = OutcomeDigest()
        self.parts: list[Path] = []

    def add(self, failures: pl.DataFrame) -> None:
        if failures.is_empty():
            return
        rows = quarantine_rows(self.dataset, self.batch_id, failures, self.at)
        self.digest.add(rows)
        self.parts.append(self.folder / f"quarantine-{len(self.parts):05d}.parquet")
        rows.write_parquet(self.parts[-1])

    def reader(self) -> pa.RecordBatchReader:
        schema = quarantine_rows("", "", pl.DataFrame(schema=FAILURE_SCHEMA), self.at)
        parts = pyarrow.dataset.dataset(self.parts, schema=schema.to_arrow().schema)
        # pyarrow's default read-ahead (16 batches of 4 files) held 0.3 GB more at the peak
        # of a 6M-row file whose every row failed, and was no faster.
        return parts.scanner(batch_readahead=1, fragment_readahead=1).to_reader()


def quarantine_rows(
    dataset: str, batch_id: str, failures: pl.DataFrame, at: dt.datetime
) -> pl.DataFrame:
    """Failure rows (FAILURE_SCHEMA, `_sheet` where a workbook has sheets) as the quarantine
    table holds them."""
    return failures.select(
        pl.lit(dataset).alias("dataset"),
        pl.lit(batch_id).alias("batch_id"),
        pl.col("_source_row").alias("source_row"),
        pl.col("column").cast(pl.String),
        pl.col("check").cast(pl.String),
        pl.col("value").cast(pl.String),
        pl.lit(at).dt.cast_time_unit("us").alias("quarantined_at"),
        # Workbooks read with `sheets:` number rows per sheet: the row needs its sheet, whose
        # name may be a citizen's CPR number (a sheet per person).
        (redacted(pl.col(SHEET)) if SHEET in failures.columns else pl.lit(None, pl.String)).alias(
            "sheet"
        ),
    )


def write_quarantine(
    home: Home,
    dataset: str,
    batch_id: str,
    failures: pl.DataFrame | QuarantineSpool,
    attempt: int = 0,
) -> None:
    """Failing rows of a batch, committed before the batch's silver commit. A reload
    (attempt > 0) replaces the batch's earlier quarantine rows with the new outcome.

    The commit counts once per batch *and outcome*: a re-run after a crash finds the same
    failing rows and writes nothing, but a re-run after silver refused the batch and the
    contract was changed (its failing rows now differ) replaces the batch's earlier rows.
    Skipping it would leave the old contract's failures, and rows failing only the new
    contract would be in neither silver nor quarantine."""
    uri = home.table_uri("quarantine", dataset)
    if isinstance(failures, QuarantineSpool):
        digest = failures.digest
    else:
        frame = quarantine_rows(dataset, batch_id, failures, dt.datetime.now(dt.UTC))
        digest = OutcomeDigest.of(frame)
    app_id = _quarantine_app_id(dataset, batch_id, digest, attempt)

    def commit(props: CommitProperties) -> None:
        # Replacing costs a rewrite of the files holding the batch: only when there are any.
        replace = DeltaTable.is_deltatable(uri) and (attempt > 0 or _holds_batch(uri, batch_id))
        write_deltalake(
            uri,
            failures.reader() if isinstance(failures, QuarantineSpool) else frame.to_arrow(),
            mode="overwrite" if replace else "append",
            predicate=f"batch_id = '{batch_id}'" if replace else None,
            schema_mode="merge",  # quarantine tables written before `sheet` existed gain it
            commit_properties=props,
        )

    commit_once(uri, app_id, commit)


class OutcomeDigest:
    """Which rows failed which check, whatever their order: two sums of 64-bit row hashes
    (polars' `hash_rows`, stable within a polars version; after an upgrade a re-run's
    commit replaces the batch's equal rows once) and the row count."""

    _OUTCOME = ("sheet", "source_row", "column", "check", "value")
    _SEEDS = (0, 1)

    def __init__(self) -> None:
        self.rows = 0
        self.sums = [0] * len(self._SEEDS)

    def add(self, rows: pl.DataFrame) -> None:
        outcome = rows.select(self._OUTCOME)
        self.rows += outcome.height
        for i, seed in enumerate(self._SEEDS):
            hashes = outcome.hash_rows(seed=seed).to_numpy()
            self.sums[i] = (self.sums[i] + int(hashes.sum(dtype=np.uint64))) % 2**64

    @classmethod
    def of(cls, rows: pl.DataFrame) -> OutcomeDigest:
        digest = cls()
        digest.add(rows)
        return digest

    def hexdigest(self) -> str:
        text = f"{self.rows}:{self.sums[0]}:{self.sums[1]}"
        return hashlib.sha256(text.encode()).hexdigest()[:16]


def quarantine_app_id(dataset: str, batch_id: str, rows: pl.DataFrame, attempt: int = 0) -> str:
    """The transaction id of a batch's quarantine commit: the batch, and a digest of which
    rows failed which check (`rows` as the quarantine table holds them), in any order."""
    return _quarantine_app_id(dataset, batch_id, OutcomeDigest.of(rows), attempt)


def _quarantine_app_id(dataset: str, batch_id: str, digest: OutcomeDigest, attempt: int) -> str:
    return f"quarantine:{dataset}:{batch_id}{_suffix(attempt)}:{digest.hexdigest()}"


def batch_failures(home: Home, dataset: str, batch_id: str) -> pl.DataFrame:
    """A batch's quarantine rows as the failures they were made from (FAILURE_SCHEMA, and
    `_sheet` where a workbook's sheets numbered the rows)."""
    uri = home.table_uri("quarantine", dataset)
    if not DeltaTable.is_deltatable(uri):
        return pl.DataFrame(schema=FAILURE_SCHEMA)
    held = pl.scan_delta(uri).filter(pl.col("batch_id") == batch_id).collect()
    failures = held.select(pl.col("source_row").alias(SOURCE_ROW), "column", "check", "value")
    if "sheet" in held.columns and held["sheet"].null_count() < held.height:
        failures = failures.with_columns(held["sheet"].alias(SHEET))
    return failures


def _holds_batch(uri: str, batch_id: str) -> bool:
    rows = pl.scan_delta(uri).filter(pl.col("batch_id") == batch_id).select(pl.len())
    return bool(rows.collect().item())


@dataclass(frozen=True)
class CheckState:
    """One check's outcome for a dataset, as operators see it in quality.failures."""

    dataset: str
    check: str
    passed: bool
    severity: str  # ERROR | WARN
    blocking: bool
    rows_affected: int | None
    details: str  # counts and names only, never values
    batch_id: str | None
    evaluated_at: dt.datetime
    dagster_run_id: str | None = None


_CHECK_SCHEMA = {
    "dataset": pl.String,
    "check": pl.String,
    "passed": pl.Boolean,
    "severity": pl.String,
    "blocking": pl.Boolean,
    "rows_affected": pl.Int64,
    "details": pl.String,
    "batch_id": pl.String,
    "evaluated_at": pl.Datetime("us", "UTC"),
    "dagster_run_id": pl.String,
}


def check_history(home: Home) -> pl.DataFrame:
    uri = home.table_uri("quality", "check_history")
    if not DeltaTable.is_deltatable(uri):
        return pl.DataFrame(schema=_CHECK_SCHEMA)
    return pl.read_delta(uri)


def record_checks(home: Home, states: list[CheckState], *, only_changes: bool) -> int:
    """Append check outcomes; with only_changes, skip those equal to the latest stored one
    (so re-running an unchanged load adds no Delta version). Returns rows written.

    An outcome naming a batch the latest stored one does not name is new even when equal:
    quality.runs counts a load's checks by its batch id, so a references check failing
    the same way for the next load must be recorded for that load too."""
    if only_changes:
        latest = {
            (r["dataset"], r["check"]): r
            for r in check_history(home)
            .sort("evaluated_at")
            .group_by("dataset", "check", maintain_order=True)
            .last()
            .iter_rows(named=True)
        }
        states = [s for s in states if not _same_outcome(latest.get((s.dataset, s.check)), s)]
    if states:
        frame = pl.DataFrame([asdict(s) for s in states], schema=_CHECK_SCHEMA)
        write_deltalake(
            home.table_uri("quality", "check_history"),
            frame.to_arrow(),
            mode="append",
            commit_properties=commit_properties(),
        )
    return len(states)


def _same_outcome(stored: dict | None, state: CheckState) -> bool:
    if stored is None:
        return False
    same = (stored["passed"], stored["severity"], stored["rows_affected"]) == (
        state.passed,
        state.severity,
        state.rows_affected,
    )
    # A state without a batch (a run with nothing new, a freshness check) is about the
    # dataset as it stands, so any stored batch will do.
    return same and (state.batch_id is None or state.batch_id == stored["batch_id"])


def _suffix(attempt: int) -> str:
    return f":reload{attempt}" if attempt else ""
