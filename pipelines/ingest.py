"""Loading one dataset: delivery → parse → validate → quarantine → silver.

Plain functions, no Dagster: the asset calls `load_dataset`; `kommunelake check` reads a
file the same way (`file_check.check_file`, through `conform_chunks`); tests call both.
Every landed batch ends with a row in quality/runs, whether it loaded or was rejected, so a
batch is processed once and a crash part-way is finished on the next run (each write below
is idempotent on the batch id).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import time
from collections import Counter
from collections.abc import Callable, Collection, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

from connectors.formats import FormatError, iter_table
from connectors.sftp import SftpError
from lake import quality
from lake.bulk import PartWriter, can_stream
from lake.erasure import ErasedFilter, erased
from lake.errors import LakeError, SchemaBreak
from lake.frames import detached
from lake.home import Home
from lake.landing import LandedFile, local_copy, manifest
from lake.privacy import Pseudonymiser, redact, redacted, shown_name
from lake.scratch import scratch_folder
from lake.tables import (
    SCD2_COLUMNS,
    Commit,
    check_partitioning,
    has_batch,
    open_table,
    record_deletions,
    table_version,
    write_batch,
)
from lake.validation import (
    FAILURE_SCHEMA,
    SHEET,
    SOURCE_ROW,
    Conformed,
    conform,
    contract_columns,
    drift_decision,
    duplicate_failures,
    failing_rows,
    failure_counts,
    identifier_columns,
    key_hash,
    rename_to_contract,
    repeated_keys,
)
from pipelines.api_sources import fetch_into_landing, is_api
from pipelines.delivery import (
    land_drop_folder,
    move_to_rejected,
    open_rejection,
    pending_batches,
    pick_up,
    stale_deliveries,
)
from pipelines.specs import DatasetSpec
from pipelines.total_rows import TrailingTotals, total_rows_hint
from pipelines.trailer_record import ShortLastLine, trailer_hint

log = logging.getLogger("kommunelake.ingest")

LINEAGE = ("_batch_id", "_source_file", "_source_row", "_ingested_at")
OPTIONAL_LINEAGE = (SHEET,)  # from readers that combine several sheets
RECORD_FORMATS = ("json", "ndjson", "xml")


@dataclass(frozen=True)
class BatchResult:
    batch_id: str
    source_file: str  # as shown outside landing: privacy.shown_name
    status: str  # loaded | rejected
    rows_in: int = 0
    rows_valid: int = 0
    rows_quarantined: int = 0
    failures: tuple[tuple[str, str, int], ...] = ()  # (column, check, rows)
    extra_columns: tuple[str, ...] = ()
    silver_version: int | None = None
    message: str = ""
    drift_decision: str = "none"
    rows_erased: int = 0  # rows of erased subjects the load left out (`kommunelake erase`)


@dataclass(frozen=True)
class LoadReport:
    dataset: str
    new_files: int
    batches: tuple[BatchResult, ...] = field(default=())
    open_rejection: str | None = None  # the latest delivery's rejection, while still open
    # quality.runs of the dataset after the loads, for the checks (None: they read it).
    history: pl.DataFrame | None = field(default=None, compare=False, repr=False)

    @property
    def rejected(self) -> tuple[BatchResult, ...]:
        return tuple(b for b in self.batches if b.status == "rejected")


def silver_uri(home: Home, dataset: str) -> str:
    return home.table_uri("silver", dataset)


def conform_chunks(
    spec: DatasetSpec,
    path: Path,
    source_name: str,
    scratch: Path | None = None,
    *,
    look: Callable[[pl.DataFrame], object] | None = None,
    keep: Callable[[pl.DataFrame], pl.DataFrame] | None = None,
    count_skipped: Callable[[int], None] | None = None,
) -> Iterator[Conformed]:
    """Parse a file and conform it to the contract, a bounded chunk at a time; raises
    FormatError or SchemaBreak. Keys repeated across chunks are the caller's (see
    `RepeatFilter`): within a chunk, `conform` already quarantines them. A zip or gzip
    delivery is unpacked into `scratch` (default: the system's temporary folder). `look`
    is shown each chunk as read, before it is conformed; `keep` may then take rows out of
    it (an erased subject's: `lake.erasure.ErasedFilter`); `count_skipped` is told how
    many rows `skip_rows_matching` left out."""
    progress = Progress(f"{spec.name}: {source_name}")
    records = _is_record_format(spec)
    headers: dict[str, None] = {}  # a record file's fields in all its pieces, in order
    for raw in iter_table(
        path,
        reader_options(spec),
        source_name=source_name,
        scratch=scratch,
        count_skipped=count_skipped,
    ):
        if look is not None:
            look(raw)
        if keep is not None:
            raw = keep(raw)
        headers.update(dict.fromkeys(raw.columns))
        conformed = conform(
            raw,
            spec.contract,
            aliases=spec.columns,
            parse=spec.parse,
            keys=spec.batch_keys,
            where=source_name,
            drift=spec.schema_drift,
            # JSON and XML writers leave out null keys; a table format's missing column is
            # a changed layout.
            absent_is_null=records,
            # A required field one piece's records all leave out may be in the other
            # pieces: those rows fail as null, as they do when the file is read whole,
            # instead of the piece rejecting the file as missing a column.
            absent_required_is_null=records,
            hold_keys=_whole_source(spec),
            unit="row" if spec.format.get("type") == "excel" else "line",
        )
        progress.chunk(conformed)
        yield conformed
    if records:
        # What a whole read refuses: a required field that no record of the file has.
        rename_to_contract(
            pl.DataFrame(schema=dict.fromkeys(headers, pl.String)),
            spec.contract,
            spec.columns,
            where=source_name,
            absent_is_null=True,
        )


def _whole_source(spec: DatasetSpec) -> bool:
    """Whether a batch is the whole source, by key: what it lacks counts as deleted (a keyed
    snapshot) or closed (SCD2), so the keys of its quarantined rows must be known."""
    return spec.load_mode in ("snapshot", "scd2") and bool(spec.keys)


class Progress:
    """A log line every `EVERY_SECONDS` while a file is read (the Dagster UI shows the
    `kommunelake` logs of a run; `check` prints them), so a large export is not a silent
    minute or more."""

    EVERY_SECONDS = 15.0

    def __init__(self, what: str) -> None:
        self.what = what
        self.started = self.told = time.monotonic()
        self.rows_in = self.rows_valid = 0

    def chunk(self, conformed: Conformed) -> None:
        self.rows_in += conformed.rows_in
        self.rows_valid += conformed.rows_valid
        now = time.monotonic()
        if now - self.told >= self.EVERY_SECONDS:
            self.told = now
            log.info(
                "%s: %s rows read so far, %s of them valid (%.0f s)",
                self.what,
                f"{self.rows_in:,}",
                f"{self.rows_valid:,}",
                now - self.started,
            )


# Formats whose numbers are typed in the file (not text the sender wrote in a notation).
TYPED_NUMBER_FORMATS = {"excel", "json", "ndjson", "parquet"}


def reader_options(spec: DatasetSpec) -> dict:
    """The `format:` block as the reader takes it. A workbook's numeric cells, and a JSON or
    Parquet file's numbers, are rendered in the notation `parse:` reads: with a decimal comma,
    1234.56 would otherwise lose its `.` as a thousands separator, and 2.125 become 2125."""
    if spec.format.get("type") in TYPED_NUMBER_FORMATS and spec.parse.decimal_comma:
        return {**spec.format, "decimal_comma": True}
    return spec.format


class Tally:
    """A file's counts against its contract, chunk by chunk, without its rows: what a load
    records in quality.runs and `kommunelake check` prints."""

    def __init__(self) -> None:
        self.rows_in = self.rows_valid = self.rows_quarantined = 0
        self.rows_erased = 0  # rows of erased subjects left out before counting (not in rows_in)
        # Rows `skip_rows_matching` left out: in no count above, so said on their own.
        self.rows_skipped = 0
        self.counts: Counter[tuple[str, str]] = Counter()
        self._extra: list[tuple[str, ...]] = []
        self._added: list[tuple[str, ...]] = []

    def add(self, conformed: Conformed) -> None:
        self.rows_in += conformed.rows_in
        self.rows_valid += conformed.rows_valid
        self._extra.append(conformed.extra_columns)
        self._added.append(conformed.added_columns)
        self._failed(conformed.failures)

    def skipped(self, rows: int) -> None:
        self.rows_skipped += rows

    def add_repeats(self, failures: pl.DataFrame) -> None:
        """Failures of rows a chunk found valid (keys repeated across chunks)."""
        self.rows_valid -= self._failed(failures)

    def as_committed(self, failures: pl.DataFrame) -> None:
        """The counts of the outcome an earlier run of the batch committed (`failures`: the
        batch's quarantine rows), where this run's parse, under a changed YAML, differs."""
        self.rows_quarantined, self.counts = 0, Counter()
        self._failed(failures)
        self.rows_valid = self.rows_in - self.rows_quarantined

    def _failed(self, failures: pl.DataFrame) -> int:
        rows = failing_rows(failures)
        self.rows_quarantined += rows
        self.counts.update({(c, k): n for c, k, n in failure_counts(failures)})
        return rows

    def failure_counts(self) -> tuple[tuple[str, str, int], ...]:
        """(column, check, rows), most rows first."""
        most_first = sorted(self.counts.items(), key=lambda item: (-item[1], item[0]))
        return tuple((column, check, rows) for (column, check), rows in most_first)

    @property
    def extra_columns(self) -> tuple[str, ...]:
        return _union(self._extra)

    @property
    def added_columns(self) -> tuple[str, ...]:
        return _union(self._added)

    @property
    def drift_decision(self) -> str:
        return drift_decision(self.extra_columns, self.added_columns)


def load_dataset(
    spec: DatasetSpec,
    home: Home,
    key: bytes,
    run_id: str | None = None,
    *,
    settle: bool = False,
) -> LoadReport:
    """Land what is new for a dataset and load its pending batches. `settle`: leave drop
    files still within the settle window (see `land_drop_folder`)."""
    if is_api(spec):
        new_files, present = fetch_into_landing(spec, home), {}
    else:
        if spec.source.get("type") == "sftp":
            try:
                pick_up(spec, home)
            except SftpError as error:
                # The server away (a restart, a network blip) must not keep back the files an
                # earlier pickup, often this run's own sensor tick, already brought.
                log.warning(
                    "%s: %s. Files already in the drop folder are loaded; the pickup is tried"
                    " again next run",
                    spec.name,
                    redact(str(error)),
                )
        new_files, present = land_drop_folder(spec, home, settle=settle)
    batches = []
    # Read once where no batch is pending (most runs): only this dataset's loads write its
    # rows, and each read loads the table's whole log (many requests on object storage).
    history = quality.runs(home, spec.name)
    pending = pending_batches(spec, home, present, history)
    for landed in pending:
        result = load_batch(spec, home, key, landed, run_id)
        if result.status == "rejected":
            for path in present.get(landed.sha256, ()):
                move_to_rejected(path, result.message)
        batches.append(result)
    if pending:
        # After the loads: what they recorded decides what is stale and what stays open.
        history = quality.runs(home, spec.name)
    for stale in stale_deliveries(spec, history, present, pending):
        move_to_rejected(stale.path, stale.reason)
        present[stale.sha256].remove(stale.path)
    batches = tuple(batches)
    if not batches:
        log.info("%s: no new batch", spec.name)
    still_open = None if batches else open_rejection(spec, home, history, present)
    if still_open:
        # The `schema` check fails this run on it: without this line the run's log (often a
        # run the sensor started for a file an earlier run has loaded) said nothing about why.
        log.warning(
            "%s: the latest delivery is still rejected: %s. It waits in drop/%s/rejected/: "
            "deliver a corrected file, or delete the rejected one to close this",
            spec.name,
            still_open,
            spec.name,
        )
    return LoadReport(spec.name, new_files, batches, still_open, history)


def load_batch(
    spec: DatasetSpec,
    home: Home,
    key: bytes,
    landed: LandedFile,
    run_id: str | None = None,
    attempt: int = 0,
    newer: Collection[str] = (),
    reloaded_from: int | None = None,
) -> BatchResult:
    """Load one landed batch; attempt > 0 re-applies it (see reload_batch) under new ids.
    `newer`: batches delivered after it, whose rows a merge leaves as they are.
    `reloaded_from`: a reload's rows quarantined by the batch's last load (None: it was
    rejected), for the message of its quality.runs row."""
    started = dt.datetime.now(dt.UTC)
    batch_id, name = landed.batch_id, shown_name(landed.original_name)
    app_id = f"silver:{spec.name}:{batch_id}" + (f":reload{attempt}" if attempt else "")
    try:
        tally, commit = _load_chunks(spec, home, key, landed, app_id, attempt, newer)
    except (FormatError, SchemaBreak) as error:
        message = redact(str(error))
        drift = error.drift_decision if isinstance(error, SchemaBreak) else "none"
        result = BatchResult(batch_id, name, "rejected", message=message, drift_decision=drift)
        log.warning("%s: rejected %s: %s", spec.name, name, message)
        _record(home, spec, result, started, run_id, attempt)
        return result

    result = BatchResult(
        batch_id,
        name,
        "loaded",
        rows_in=tally.rows_in,
        rows_valid=tally.rows_valid,
        rows_quarantined=tally.rows_quarantined,
        failures=tally.failure_counts(),
        extra_columns=tally.extra_columns,
        silver_version=commit.version,
        drift_decision=tally.drift_decision,
        message="; ".join(
            part
            for part in (
                _reload_message(reloaded_from, tally.rows_quarantined) if attempt else "",
                _erased_message(tally.rows_erased),
                skipped_message(tally.rows_skipped),
            )
            if part
        ),
        rows_erased=tally.rows_erased,
    )
    log.info(
        "%s: %s: %d rows in, %d valid, %d quarantined%s",
        spec.name,
        name,
        result.rows_in,
        result.rows_valid,
        result.rows_quarantined,
        f"; {skipped_message(tally.rows_skipped)}" if tally.rows_skipped else "",
    )
    _record(home, spec, result, started, run_id, attempt)
    return result


def _load_chunks(
    spec: DatasetSpec,
    home: Home,
    key: bytes,
    landed: LandedFile,
    app_id: str,
    attempt: int,
    newer: Collection[str] = (),
) -> tuple[Tally, Commit]:
    """Parse, conform, pseudonymise and write a landed file chunk by chunk.

    Append and snapshot loads write each chunk as a Parquet part and commit them together,
    so memory stays flat for any file size; merge loads (which must join the whole batch
    against the table) collect the chunks and write once. Failing rows wait on local disk
    (`QuarantineSpool`): quarantine is committed before silver, so a crash in between
    never loses them.
    """
    # The load's own folder for its spool and an unpacked zip/gzip member: a killed load's
    # is removed by a later load (lake/scratch.py).
    with scratch_folder(home.scratch, "load-") as folder:
        spool = quality.QuarantineSpool(folder, spec.name, landed.batch_id)
        return _load_spooled(spec, home, key, landed, app_id, attempt, spool, newer)


def _load_spooled(
    spec: DatasetSpec,
    home: Home,
    key: bytes,
    landed: LandedFile,
    app_id: str,
    attempt: int,
    spool: quality.QuarantineSpool,
    newer: Collection[str],
) -> tuple[Tally, Commit]:
    uri = silver_uri(home, spec.name)
    pseudonyms = Pseudonymiser(identifier_columns(spec.contract), key)
    name = shown_name(landed.original_name)  # the sender's name may hold a CPR number
    lineage = (
        pl.lit(landed.batch_id).alias("_batch_id"),
        pl.lit(name).alias("_source_file"),
        pl.lit(landed.fetched_at).dt.cast_time_unit("us").alias("_ingested_at"),
    )
    metadata = {
        "kommunelake.batch_id": landed.batch_id,
        "kommunelake.source_file": name,
    }
    check_partitioning(uri, spec.partition_by)  # before anything is parsed or committed
    absent = evolved_columns(spec, home, uri)
    # An append reload replaces the batch's earlier rows (write_batch's replace_where), which
    # streamed parts cannot: reloads of append batches are written whole.
    reload = attempt > 0 and spec.load_mode == "append"
    writer: PartWriter | None = None
    buffered: list[pl.DataFrame] = []
    tally = Tally()
    held_back = RepeatFilter(spec.batch_keys)
    key_pseudonyms = Pseudonymiser(
        {c: d for c, d in identifier_columns(spec.contract).items() if c in spec.keys}, key
    )
    held_keys: list[pl.DataFrame] = []
    # Only a chunk's last rows are looked at: a load reads millions, and total rows end it.
    totals = TrailingTotals()
    trailer = ShortLastLine(spec)

    def look(raw: pl.DataFrame) -> None:
        last = raw.tail(100)
        totals.look(last)
        trailer.look(last)

    erased_rows = ErasedFilter(
        spec.contract, spec.columns, key, erased(home.erasures_uri, home.storage_options())
    )
    try:
        with local_copy(landed, home) as source:  # a remote landing is parsed from a copy
            for conformed in conform_chunks(
                spec,
                source,
                name,
                spool.folder,
                look=look,
                keep=erased_rows.apply,
                count_skipped=tally.skipped,
            ):
                # Only the counts of a chunk are kept; its rows go to disk.
                tally.add(conformed)
                spool.add(conformed.failures)
                if conformed.held_keys is not None:
                    held_keys.append(key_pseudonyms.apply(conformed.held_keys))
                silver = pseudonyms.apply(conformed.valid).with_columns(lineage)
                if SHEET in silver.columns:  # a sheet may be named after a citizen's CPR
                    silver = silver.with_columns(redacted(pl.col(SHEET)))
                silver = silver.with_columns(
                    pl.lit(None, dtype).alias(c) for c, dtype in absent.items() if c not in silver
                )
                if (
                    writer is None
                    and not buffered
                    and not reload
                    and _streams(spec, conformed, uri, silver)
                ):
                    writer = PartWriter(uri, mode=spec.load_mode, app_id=app_id, metadata=metadata)
                if writer is not None:
                    writer.write(held_back.hold_back(silver) if spec.batch_keys else silver)
                else:
                    buffered.append(silver)
        if writer is not None and spec.batch_keys:
            repeats = held_back.settle(writer, spec.contract)
        elif writer is None:
            batch, repeats = _drop_repeats(spec, buffered)
        else:
            repeats = pl.DataFrame(schema=FAILURE_SCHEMA)
        tally.add_repeats(repeats)
        spool.add(repeats)
        tally.rows_erased = erased_rows.rows
        if erased_rows.rows:
            log.warning("%s: %s: %s", spec.name, name, _erased_message(erased_rows.rows))
        _refuse_emptying_snapshot(
            spec,
            uri,
            name,
            rows_in=tally.rows_in,
            rows_valid=writer.rows if writer is not None else batch.height,
        )
    except BaseException:
        if writer is not None:
            writer.abort()
        raise
    # Quarantine is committed before silver, so a batch silver already holds (a run killed
    # after its silver commit, before its runs row) has its quarantine too: the outcome is
    # the one silver got. Replacing the quarantine with this run's outcome after the YAML
    # changed put the rows the change released in neither table; `reload` applies a change.
    committed_before = has_batch(uri, app_id)
    if committed_before:
        parsed = tally.rows_quarantined
        tally.as_committed(quality.batch_failures(home, spec.name, landed.batch_id))
        if tally.rows_quarantined != parsed:
            log.warning(
                "%s: batch %s was committed by an interrupted run with %s rows quarantined "
                "(the current YAML quarantines %s); `kommunelake reload --dataset %s --batch %s`"
                " applies the current YAML",
                spec.name,
                landed.batch_id,
                f"{tally.rows_quarantined:,}",
                f"{parsed:,}",
                spec.name,
                landed.batch_id,
            )
    else:
        quality.write_quarantine(home, spec.name, landed.batch_id, spool, attempt)
    if writer is not None:
        commit = writer.commit()
        rows_valid = writer.rows
    else:
        rows_valid = batch.height  # valid also where newer batches keep their own row
        if newer and spec.load_mode == "merge":
            batch = _without_newer_keys(spec, uri, batch, newer)
        commit = write_batch(
            uri,
            batch,
            mode=spec.load_mode,
            app_id=app_id,
            keys=spec.keys,
            metadata=metadata,
            # Every column of the batch is a contract field, lineage or one the drift policy
            # may keep (conform drops the others): one the table lacks was added under
            # `schema_drift: evolve` or to the contract, which is how a wanted column is
            # taken in. Both are additive; only the drift policy decides on file columns.
            add_columns=True,
            partition_by=spec.partition_by,
            valid_at=landed.fetched_at,
            replace_where=f"_batch_id = '{landed.batch_id}'" if reload else None,
            held_keys=pl.concat(held_keys) if held_keys else None,
        )
        # Keys a snapshot no longer holds are recorded, not just gone (safe to repeat).
        record_deletions(
            home.table_uri("quality", "deletions"),
            commit.deleted,
            dataset=spec.name,
            batch_id=landed.batch_id,
        )
    if not committed_before:
        tally.rows_valid = rows_valid  # what silver holds of the batch is the count recorded
    if totals.rows():  # loaded as data, they add themselves to every sum
        log.warning("%s: %s: %s", spec.name, name, total_rows_hint(spec, totals.rows()))
    if (line := trailer.line()) is not None:  # quarantined, it fails on every required field
        log.warning("%s: %s: %s", spec.name, name, trailer_hint(line))
    return tally, commit


def _without_newer_keys(
    spec: DatasetSpec, uri: str, batch: pl.DataFrame, newer: Collection[str]
) -> pl.DataFrame:
    """The rows of a reloaded merge batch whose keys no later batch has written since.

    An upsert of the whole batch put its old values back over the newer values later
    deliveries gave the same keys, and said nothing. Those keys keep their newer row; the
    batch's other rows (the ones a fix released among them) are upserted."""
    keys = list(spec.keys)
    held = pl.scan_delta(uri).filter(pl.col("_batch_id").is_in(list(newer))).select(keys).collect()
    kept = batch.join(held.cast(batch.select(keys).schema), on=keys, how="anti", nulls_equal=True)
    if kept.height < batch.height:
        log.info(
            "%s: %s of the batch's valid rows were left as they are: batches delivered after it"
            " hold newer values for their keys",
            spec.name,
            f"{batch.height - kept.height:,}",
        )
    return kept


def emptying_snapshot(spec: DatasetSpec, *, rows_in: int, rows_valid: int) -> str | None:
    """Why a file would empty a snapshot dataset, or None. A snapshot replaces silver: one
    without a valid row would leave the table empty and record every key as deleted. A
    failed export that wrote its header only, or an empty NDJSON, is far likelier than a
    source that truly holds nothing. A load refuses such a file; `check` says so first."""
    if spec.load_mode != "snapshot" or rows_valid:
        return None
    what = (
        "has no rows"
        if not rows_in
        else f"has no row that meets the contract (all {rows_in:,} would be quarantined)"
    )
    return (
        f"the file {what}; as a snapshot it would replace every row of silver.{spec.name} with none"
    )


def _refuse_emptying_snapshot(
    spec: DatasetSpec, uri: str, name: str, *, rows_in: int, rows_valid: int
) -> None:
    """Refuse an `emptying_snapshot` batch once silver has rows to lose (a first load of
    an empty file empties nothing)."""
    cause = emptying_snapshot(spec, rows_in=rows_in, rows_valid=rows_valid)
    if cause is not None and table_version(uri) is not None:
        raise FormatError(
            name,
            cause,
            "Check the export (`kommunelake check` shows why rows fail); a snapshot table is"
            " never emptied from a file",
        )


def evolved_columns(spec: DatasetSpec, home: Home, uri: str) -> dict[str, pl.DataType]:
    """Silver's columns that earlier files added under `schema_drift: evolve`, with their
    types. They are not in the contract, so a later file may lack them: it loads with nulls
    there (the lake refuses a batch missing a table column, which stuck the dataset). That
    holds after the policy went back to ignore or freeze too, as the table keeps the columns:
    then only those the loads' drift decisions in quality.runs name as added, so a column
    the contract dropped or renamed stays a breaking change."""
    table = open_table(uri)
    if table is None:
        return {}
    known = {*contract_columns(spec.contract), *LINEAGE, *OPTIONAL_LINEAGE, *SCD2_COLUMNS}
    schema = pl.scan_delta(table).collect_schema()
    extra = {c: dtype for c, dtype in schema.items() if c not in known}
    if spec.schema_drift == "evolve" or not extra:
        return extra
    added = {
        column
        for decision in quality.runs(home, spec.name)["drift_decision"].drop_nulls()
        if decision.startswith("added: ")
        for column in decision.removeprefix("added: ").split(", ")
    }
    return {c: dtype for c, dtype in extra.items() if c in added}


def _streams(spec: DatasetSpec, first: Conformed, uri: str, silver: pl.DataFrame) -> bool:
    # write_batch does what streaming parts cannot: evolve the schema for added columns,
    # partition, and find the keys a keyed snapshot no longer holds. A record format's later
    # chunks may bring fields the first did not have, which evolve would add mid-stream.
    # A contract whose types changed goes there too: write_batch widens safely and refuses
    # a breaking change with the table untouched, where parts would replace a snapshot's
    # schema with whatever the batch has.
    return (
        can_stream(spec.load_mode)
        and not first.added_columns
        and not (spec.schema_drift == "evolve" and _is_record_format(spec))
        and not spec.partition_by
        and not (spec.load_mode == "snapshot" and spec.keys)
        and _same_schema(uri, silver)
    )


def _same_schema(uri: str, silver: pl.DataFrame) -> bool:
    """Whether silver rows of this schema fit the table as it is (or there is no table)."""
    table = open_table(uri)
    return table is None or dict(pl.scan_delta(table).collect_schema()) == dict(silver.schema)


def _is_record_format(spec: DatasetSpec) -> bool:
    return spec.format.get("type") in RECORD_FORMATS


def _union(names: Iterable[tuple[str, ...]]) -> tuple[str, ...]:
    """Column names of every chunk, in first-seen order (a record format's later chunks may
    have fields the first did not)."""
    return tuple(dict.fromkeys(name for chunk in names for name in chunk))


def _drop_repeats(
    spec: DatasetSpec, frames: list[pl.DataFrame]
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """The chunks' valid rows as one frame without keys an earlier chunk already had, and
    the quarantine rows for those (within a chunk, `conform` has removed repeats)."""
    valid = pl.concat(frames, how="diagonal_relaxed")
    if not spec.batch_keys or len(frames) < 2:
        return valid, pl.DataFrame(schema=FAILURE_SCHEMA)
    repeats = repeated_rows(spec.batch_keys, frames)
    kept = valid.filter(~pl.col(SOURCE_ROW).is_in(repeats[SOURCE_ROW].implode()))
    return kept, duplicate_failures(repeats, spec.batch_keys, spec.contract)


def repeated_rows(keys: Sequence[str], frames: list[pl.DataFrame]) -> pl.DataFrame:
    """The rows of `frames` whose key an earlier chunk already had. 64-bit hashes nominate
    and only the nominated rows are compared by key value: a group-by over every key took
    `check` of the 6M-row bench extract from 0.9 to 1.5 GB."""
    hashes = pl.concat([f.select(key_hash(keys), SOURCE_ROW) for f in frames])
    nominated = hashes.filter(pl.col("_key_hash").is_duplicated()).get_column(SOURCE_ROW)
    picked = [f.filter(pl.col(SOURCE_ROW).is_in(nominated.implode())) for f in frames]
    return repeated_keys(pl.concat(picked, how="diagonal_relaxed"), keys)


class RepeatFilter:
    """Rows whose key an earlier chunk of the same file already had, held back before their
    chunk is written, so no written part ever has to be rewritten.

    Each chunk's 64-bit key hashes are looked up in a bitmap of those seen so far, one bit
    per hash prefix (2**28 bits, 32 MiB, whatever the file's size): a lookup per row, where
    probing all earlier hashes per chunk grew quadratic in the file's size. A set bit only
    nominates: another key may share it (about 2% of rows after 6 million keys), and
    `settle` compares the key values of the held rows with the rows written, so a shared
    bit or hash never quarantines a row (it is written late instead).
    """

    BITS = 28

    def __init__(self, keys: Sequence[str]) -> None:
        self.keys = list(keys)
        self._seen: pl.Series | None = None
        self._held: list[pl.DataFrame] = []

    def hold_back(self, rows: pl.DataFrame) -> pl.DataFrame:
        """`rows` without those whose key's bit an earlier chunk set (kept for `settle`)."""
        slot = key_hash(self.keys) // (1 << (64 - self.BITS))
        slots = rows.select(slot.cast(pl.UInt32)).to_series()
        if self._seen is None:
            self._seen = pl.repeat(False, 1 << self.BITS, dtype=pl.Boolean, eager=True)
            self._seen.scatter(slots, True)
            return rows
        nominated = self._seen.gather(slots)
        self._seen.scatter(slots, True)
        if not nominated.any():
            return rows
        self._held.append(detached(rows.filter(nominated)))
        return rows.filter(~nominated)

    def settle(self, writer: PartWriter, contract: type) -> pl.DataFrame:
        """Write the held rows that are not repeats; quarantine rows for those that are."""
        if not self._held:
            return pl.DataFrame(schema=FAILURE_SCHEMA)
        held = pl.concat(self._held)
        columns = [*self.keys, SOURCE_ROW]
        wanted = held.select(key_hash(self.keys)).to_series().implode()
        written = writer.scan(columns, where=key_hash(self.keys).is_in(wanted))
        repeats = repeated_keys(pl.concat([written, held.select(columns)]), self.keys)
        unique = held.filter(~pl.col(SOURCE_ROW).is_in(repeats[SOURCE_ROW].implode()))
        if unique.height:
            writer.write(unique)
        return duplicate_failures(repeats, self.keys, contract)


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


def _erased_message(rows: int) -> str:
    """Rows of erased subjects a load left out, for its quality.runs row and log: a subject
    coming back in a delivery is told, never dropped silently."""
    if not rows:
        return ""
    return (
        f"{rows:,} row(s) of erased data subjects left out (kommunelake erase; not counted "
        "in rows_in)"
    )


def skipped_message(rows: int) -> str:
    """What a load's quality.runs message and `check` say of the rows `skip_rows_matching`
    left out: they are in neither rows in, valid nor quarantined."""
    if not rows:
        return ""
    return f"{rows:,} row(s) matching `skip_rows_matching` skipped (not in rows_in)"


def _reload_message(before: int | None, after: int) -> str:
    """What a reload did, for quality.runs: its row has the same batch id and status as the
    load it replaces, and without this it looked like the same file loaded twice."""
    said = "reloaded from landing with the current YAML and contract"
    if before is None:
        return f"{said}; its last load was rejected"
    if after <= before:
        change = f"{before - after:,} rows released from quarantine"
    else:
        change = f"{after - before:,} more rows quarantined"
    return f"{said}: {change} ({before:,} quarantined before, {after:,} now)"


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
    rows (snapshot: replaced; merge: upserted, except over keys a batch delivered after it
    wrote since; append: the batch's earlier rows replaced, so each row is in silver once).
    Only the newest loaded batch of a snapshot or scd2 dataset can be reloaded, so old data
    never overwrites newer data.
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
    # Refused here, before its quarantine rows are replaced: an old snapshot would replace
    # newer data, and an old scd2 batch would open versions before the history's newest
    # (write_batch refuses that too, but only after the quarantine was rewritten).
    if (
        spec.load_mode in ("snapshot", "scd2")
        and loaded.height
        and batch_id != loaded["batch_id"][-1]
    ):
        raise LakeError(
            f"{spec.name}: batch {batch_id} is not the newest load of this {spec.load_mode} "
            "dataset; reloading it would replace or rewrite newer data. Reload the newest "
            "batch instead"
        )
    earlier = history.filter(pl.col("batch_id") == batch_id)
    attempt = earlier.height
    last = earlier.row(-1, named=True) if earlier.height else None
    before = last["rows_quarantined"] if last and last["status"] == "loaded" else None
    shown = shown_name(landed[batch_id].original_name)
    log.info("%s: reloading batch %s (%s)", spec.name, batch_id, shown)
    # Batches delivered after this one, in the manifest's (delivery) order: their newer
    # values stay where a merge reload would overwrite them (see _without_newer_keys).
    order, done = list(landed), set(loaded["batch_id"].to_list())
    newer = [b for b in order[order.index(batch_id) + 1 :] if b in done]
    return load_batch(
        spec,
        home,
        key,
        landed[batch_id],
        run_id,
        attempt=attempt,
        newer=newer,
        reloaded_from=before,
    )


def silver_state(home: Home, spec: DatasetSpec) -> tuple[int | None, pl.DataFrame | None]:
    """Current silver version and frame (None when the dataset was never loaded)."""
    uri = silver_uri(home, spec.name)
    version = table_version(uri)
    return version, (pl.read_delta(uri) if version is not None else None)


__all__ = ["BatchResult", "LoadReport", "load_dataset", "reload_batch"]
