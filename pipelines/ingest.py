"""Loading one dataset: delivery → parse → validate → quarantine → silver.

Plain functions, no Dagster: the asset calls `load_dataset`, `kommunelake check` calls
`check_file`, tests call both. Every landed batch ends with a row in quality/runs, whether it
loaded or was rejected, so a batch is processed once and a crash part-way is finished on the
next run (each write below is idempotent on the batch id).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

from connectors.formats import FormatError, read_table
from lake import quality
from lake.errors import LakeError, SchemaBreak
from lake.home import Home
from lake.landing import LandedFile, manifest
from lake.privacy import pseudonymise, redact
from lake.tables import table_version, write_batch
from lake.validation import Conformed, conform, identifier_columns
from pipelines.delivery import (
    land_drop_folder,
    move_to_rejected,
    open_rejection,
    pending_batches,
    pick_up,
)
from pipelines.specs import DatasetSpec

log = logging.getLogger("kommunelake.ingest")

LINEAGE = ("_batch_id", "_source_file", "_source_row", "_ingested_at")
OPTIONAL_LINEAGE = ("_sheet",)  # from readers that combine several sheets


@dataclass(frozen=True)
class BatchResult:
    batch_id: str
    source_file: str
    status: str  # loaded | rejected
    rows_in: int = 0
    rows_valid: int = 0
    rows_quarantined: int = 0
    failures: tuple[tuple[str, str, int], ...] = ()  # (column, check, rows)
    extra_columns: tuple[str, ...] = ()
    silver_version: int | None = None
    message: str = ""
    drift_decision: str = "none"


@dataclass(frozen=True)
class LoadReport:
    dataset: str
    new_files: int
    batches: tuple[BatchResult, ...] = field(default=())
    open_rejection: str | None = None  # the latest delivery's rejection, while still open

    @property
    def rejected(self) -> tuple[BatchResult, ...]:
        return tuple(b for b in self.batches if b.status == "rejected")


def silver_uri(home: Home, dataset: str) -> str:
    return home.table_uri("silver", dataset)


def read_and_conform(spec: DatasetSpec, data: bytes, source_name: str) -> Conformed:
    """Parse bytes and conform them to the contract; raises FormatError or SchemaBreak."""
    raw = read_table(data, spec.format, source_name=source_name)
    return conform(
        raw,
        spec.contract,
        aliases=spec.columns,
        parse=spec.parse,
        keys=spec.keys,
        where=source_name,
        drift=spec.schema_drift,
    )


def check_file(spec: DatasetSpec, path: Path) -> Conformed:
    """Validate a file against a dataset's contract without loading anything."""
    return read_and_conform(spec, path.read_bytes(), path.name)


def load_dataset(
    spec: DatasetSpec, home: Home, key: bytes, run_id: str | None = None
) -> LoadReport:
    if spec.source.get("type") == "sftp":
        pick_up(spec, home)
    new_files, present = land_drop_folder(spec, home)
    batches = []
    for landed in pending_batches(spec, home, present):
        result = load_batch(spec, home, key, landed, run_id)
        if result.status == "rejected":
            for path in present.get(landed.sha256, ()):
                move_to_rejected(path, result.message)
        batches.append(result)
    batches = tuple(batches)
    if not batches:
        log.info("%s: no new batch", spec.name)
    still_open = None if batches else open_rejection(spec, home, present)
    return LoadReport(spec.name, new_files, batches, still_open)


def load_batch(
    spec: DatasetSpec,
    home: Home,
    key: bytes,
    landed: LandedFile,
    run_id: str | None = None,
    attempt: int = 0,
) -> BatchResult:
    """Load one landed batch; attempt > 0 re-applies it (see reload_batch) under new ids."""
    started = dt.datetime.now(dt.UTC)
    batch_id = landed.batch_id
    data = Path(landed.path).read_bytes()
    try:
        conformed = read_and_conform(spec, data, landed.original_name)
    except (FormatError, SchemaBreak) as error:
        message = redact(str(error))
        result = BatchResult(batch_id, landed.original_name, "rejected", message=message)
        log.warning("%s: rejected %s: %s", spec.name, landed.original_name, message)
        _record(home, spec, result, started, run_id, attempt)
        return result

    # Quarantine is committed before silver, so a crash in between never loses failing rows.
    quality.write_quarantine(home, spec.name, batch_id, conformed.failures, attempt)
    silver = pseudonymise(conformed.valid, identifier_columns(spec.contract), key).with_columns(
        pl.lit(batch_id).alias("_batch_id"),
        pl.lit(landed.original_name).alias("_source_file"),
        pl.lit(landed.fetched_at).dt.cast_time_unit("us").alias("_ingested_at"),
    )
    commit = write_batch(
        silver_uri(home, spec.name),
        silver,
        mode=spec.load_mode,
        app_id=f"silver:{spec.name}:{batch_id}" + (f":reload{attempt}" if attempt else ""),
        keys=spec.keys,
        metadata={
            "kommunelake.batch_id": batch_id,
            "kommunelake.source_file": landed.original_name,
        },
        add_columns=bool(conformed.added_columns),
    )
    result = BatchResult(
        batch_id,
        landed.original_name,
        "loaded",
        rows_in=conformed.rows_in,
        rows_valid=conformed.rows_valid,
        rows_quarantined=conformed.rows_quarantined,
        failures=tuple(conformed.failure_counts()),
        extra_columns=conformed.extra_columns,
        silver_version=commit.version,
        drift_decision=conformed.drift_decision,
    )
    log.info(
        "%s: %s: %d rows in, %d valid, %d quarantined",
        spec.name,
        landed.original_name,
        result.rows_in,
        result.rows_valid,
        result.rows_quarantined,
    )
    _record(home, spec, result, started, run_id, attempt)
    return result


def _record(
    home: Home,
    spec: DatasetSpec,
    result: BatchResult,
    started: dt.datetime,
    run_id: str | None,
    attempt: int = 0,
) -> None:
    quality.record_run(
        home,
        quality.RunRecord(
            dataset=spec.name,
            batch_id=result.batch_id,
            source_file=result.source_file,
            status=result.status,
            rows_in=result.rows_in,
            rows_valid=result.rows_valid,
            rows_quarantined=result.rows_quarantined,
            failed_checks=quality.failed_checks_json(list(result.failures)),
            extra_columns=json.dumps(list(result.extra_columns), ensure_ascii=False),
            silver_version=result.silver_version,
            started_at=started,
            finished_at=dt.datetime.now(dt.UTC),
            message=result.message,
            dagster_run_id=run_id,
            drift_decision=result.drift_decision,
        ),
        attempt,
    )


def reload_batch(
    spec: DatasetSpec,
    home: Home,
    key: bytes,
    batch_id: str | None = None,
    run_id: str | None = None,
) -> BatchResult:
    """Load a landed batch again with the current YAML and contract: how quarantined rows are
    released after fixing a contract (or column mapping) that wrongly failed them.

    The batch's quarantine rows are replaced by the new outcome and silver gets the new valid
    rows (snapshot: replaced; merge: upserted; append: appended). Only the newest loaded batch
    of a snapshot dataset can be reloaded, so old data never overwrites newer data.
    """
    history = quality.runs(home, spec.name)
    loaded = history.filter(pl.col("status") == "loaded")
    landed = {f.batch_id: f for f in manifest(home.manifest_uri, spec.name)}
    if batch_id is None:
        if not loaded.height:
            raise LakeError(f"{spec.name}: nothing has been loaded yet, so nothing to reload")
        batch_id = loaded["batch_id"][-1]
    matches = [b for b in landed if b.startswith(batch_id)]
    if len(matches) != 1:
        raise LakeError(
            f"{spec.name}: batch {batch_id!r} matches {len(matches)} landed batches; use a "
            "batch_id from `select batch_id, source_file from quality.runs`"
        )
    batch_id = matches[0]
    if spec.load_mode == "snapshot" and loaded.height and batch_id != loaded["batch_id"][-1]:
        raise LakeError(
            f"{spec.name}: batch {batch_id} is not the newest load of this snapshot dataset; "
            "reloading it would replace newer data. Reload the newest batch instead"
        )
    attempt = history.filter(pl.col("batch_id") == batch_id).height
    log.info("%s: reloading batch %s (%s)", spec.name, batch_id, landed[batch_id].original_name)
    return load_batch(spec, home, key, landed[batch_id], run_id, attempt=attempt)


def silver_state(home: Home, spec: DatasetSpec) -> tuple[int | None, pl.DataFrame | None]:
    """Current silver version and frame (None when the dataset was never loaded)."""
    uri = silver_uri(home, spec.name)
    version = table_version(uri)
    return version, (pl.read_delta(uri) if version is not None else None)


__all__ = ["BatchResult", "LoadReport", "check_file", "load_dataset", "reload_batch"]
