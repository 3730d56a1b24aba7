"""Erasure of a data subject, table by table: delete their rows, then forget the history.

A Delta delete only writes a new version: the earlier versions, and the Parquet files they
refer to, still hold the rows, and time travel reads them. `forget_history` removes both:
a full vacuum with no retention deletes every file the current version does not use, and a
checkpoint at the current version lets the log entries before it go, so no earlier version
can be read at all. The weekly maintenance keeps 7 days of history (MIN_RETENTION_HOURS);
an erasure is the one explicit reason it yields: the law asks that the person be gone, not
gone from the newest version only.

The erasure register (`state/erasures`) keeps the pseudonyms of erased subjects, so a load
(a reload of an old landed file, or a vendor delivering the person again) leaves their rows
out (`ErasedFilter`). It holds pseudonyms only, never CPR numbers, and is never served.

Plain functions; pipelines/erasure.py runs them over every dataset.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import pandera.polars as pa
import polars as pl
from deltalake import DeltaTable
from deltalake.exceptions import DeltaError
from deltalake.fs import DeltaStorageHandler
from pyarrow import fs

from lake.errors import LakeError
from lake.privacy import CPR_SEPARATORS, pseudonyms
from lake.tables import UTC_US, commit_properties, open_table, write_batch
from lake.validation import SHEET, SOURCE_ROW, identifier_columns

REGISTER_SCHEMA = {"pseudonym": pl.String, "registered_at": UTC_US}
# Log files are named by the version they hold: 00000000000000000012.json,
# 00000000000000000012.checkpoint.parquet (or .checkpoint.0000000001.0000000002.parquet), .crc
_LOG_VERSION = re.compile(r"^(\d{20})\.")
_CPR_IN_NAME = re.compile(rf"(?<!\d)\d{{6}}[{CPR_SEPARATORS}]?\d{{4}}(?!\d)")


class ErasureError(LakeError):
    """An erasure step failed; the message says which table and what to do."""


@dataclass(frozen=True)
class Match:
    """Which rows of a table are the subject's: the same condition for Delta's delete (SQL)
    and for counting them without deleting (a dry run)."""

    sql: str
    expr: pl.Expr


def equals_any(columns: Sequence[str], value: str) -> Match:
    """Rows where any of `columns` is `value` (a pseudonym: 32 letters a-p, no quoting)."""
    _refuse_unsafe(value)
    return Match(
        " OR ".join(f"{_quoted(c)} = '{value}'" for c in columns),
        pl.any_horizontal(pl.col(c) == value for c in columns),
    )


def contains(column: str, value: str) -> Match:
    """Rows where the text in `column` holds `value` (a key stored as JSON text)."""
    _refuse_unsafe(value)
    return Match(f"{_quoted(column)} LIKE '%{value}%'", pl.col(column).str.contains(value))


def source_rows(batch_id: str, rows: Sequence[int], sheet: str | None = None) -> Match:
    """Quarantine rows of one batch by source row (and sheet, where rows number per sheet)."""
    _refuse_unsafe(batch_id)
    numbers = sorted({int(r) for r in rows})
    listed = ", ".join(map(str, numbers))
    sql = f"batch_id = '{batch_id}' AND source_row IN ({listed})"
    expr = (pl.col("batch_id") == batch_id) & pl.col("source_row").is_in(numbers)
    if sheet is not None:
        sql += " AND sheet = '" + sheet.replace("'", "''") + "'"
        expr &= pl.col("sheet") == sheet
    return Match(sql, expr)


def either(matches: Sequence[Match]) -> Match | None:
    if not matches:
        return None
    return Match(
        " OR ".join(f"({m.sql})" for m in matches), pl.any_horizontal(m.expr for m in matches)
    )


def _refuse_unsafe(value: str) -> None:
    # Values go into a SQL predicate: pseudonyms and batch ids are letters and digits only.
    if not re.fullmatch(r"[0-9A-Za-z]+", value):
        raise ErasureError(f"refusing to match {value!r}: expected letters and digits only")


def _quoted(column: str) -> str:
    return '"' + column.replace('"', '""') + '"'


def count_rows(uri: str, match: Match, storage_options: Mapping[str, str] | None = None) -> int:
    """How many rows of the table's current version `match` picks (0 where no table)."""
    table = open_table(uri, storage_options)
    if table is None:
        return 0
    return pl.scan_delta(table).filter(match.expr).select(pl.len()).collect().item()


def delete_rows(uri: str, match: Match, storage_options: Mapping[str, str] | None = None) -> int:
    """Delete the rows `match` picks in one commit; returns how many went. A table without
    such rows gets no commit."""
    table = open_table(uri, storage_options)
    if table is None:
        return 0
    found = pl.scan_delta(table).filter(match.expr).select(pl.len()).collect().item()
    if not found:
        return 0
    try:
        metrics = table.delete(match.sql, commit_properties=commit_properties())
    except DeltaError as error:
        raise ErasureError(
            f"{uri}: deleting the subject's rows failed ({error}); nothing was deleted from "
            "this table. Run the erasure again (it is safe to repeat)"
        ) from error
    return int(metrics.get("num_deleted_rows", found))


@dataclass(frozen=True)
class ForgetReport:
    uri: str
    version: int  # the only readable version left
    files_deleted: int
    log_files_deleted: int


def forget_history(uri: str, storage_options: Mapping[str, str] | None = None) -> ForgetReport:
    """Make the table's earlier versions unreadable and delete the files only they used.

    1. A full vacuum with zero retention deletes every data file the current version does not
       refer to, also files no log entry names (a killed writer's).
    2. A checkpoint at the current version: a reader starts there.
    3. Every log entry, checkpoint and checksum before that version is deleted, so time
       travel to an earlier version fails instead of reading rows that are gone.

    The retention rule (`maintenance.MIN_RETENTION_HOURS`, never below 7 days) protects
    readers and time travel; an erasure must end both for the erased rows, so it is the
    one caller that goes below it. A reader holding an earlier version open at this moment
    fails on its next file read, as after any vacuum."""
    options = dict(storage_options) if storage_options else None
    table = open_table(uri, options)
    if table is None:
        return ForgetReport(uri, -1, 0, 0)
    try:
        deleted = table.vacuum(
            retention_hours=0,
            dry_run=False,
            enforce_retention_duration=False,
            full=True,
            commit_properties=commit_properties(),
        )
        table = DeltaTable(uri, storage_options=options)
        version = table.version()
        table.create_checkpoint()
    except DeltaError as error:
        raise ErasureError(
            f"{uri}: vacuum or checkpoint failed ({error}); the table is readable, but its "
            "history may still hold the subject. Run the erasure again"
        ) from error
    handler = DeltaStorageHandler(uri, options)
    old = [
        info.path
        for info in handler.get_file_info_selector(fs.FileSelector("_delta_log", recursive=True))
        if info.type == fs.FileType.File
        and (found := _LOG_VERSION.match(info.base_name)) is not None
        and int(found.group(1)) < version
    ]
    for path in old:
        handler.delete_file(path)
    return ForgetReport(uri, version, len(deleted), len(old))


def readable_versions(uri: str, storage_options: Mapping[str, str] | None = None) -> list[int]:
    """The versions a reader can still load (for checking an erasure)."""
    options = dict(storage_options) if storage_options else None
    table = open_table(uri, options)
    if table is None:
        return []
    readable = []
    for version in range(table.version() + 1):
        try:
            DeltaTable(uri, version=version, storage_options=options)
        except (DeltaError, OSError):
            continue
        readable.append(version)
    return readable


# --- the subject in raw deliveries -----------------------------------------------------------


def cpr_fields(contract: type[pa.DataFrameModel]) -> list[str]:
    """The contract's fields pseudonymised as CPR numbers (`identifier="cpr"`)."""
    return [name for name, domain in identifier_columns(contract).items() if domain == "cpr"]


def raw_headers(
    columns: Sequence[str], fields: Sequence[str], aliases: Mapping[str, str]
) -> list[str]:
    """The headers of a delivered file that become `fields` (as `rename_to_contract` maps
    them: by the YAML's `columns:`, else by name)."""
    return [c for c in columns if aliases.get(c, c) in fields]


def digits(text: pl.Expr) -> pl.Expr:
    """A CPR number's digits, as the pseudonym is computed from them (`privacy.normalise`)."""
    return text.cast(pl.String).str.replace_all("[^0-9]", "")


def subject_rows(raw: pl.DataFrame, headers: Sequence[str], number: str) -> pl.DataFrame:
    """The source rows (and sheets) of a delivered chunk whose CPR columns hold `number`
    (10 digits), in whatever spelling (`010190-1234`, `0101901234`)."""
    wanted = pl.any_horizontal(digits(pl.col(h)) == number for h in headers)
    columns = [SOURCE_ROW, *([SHEET] if SHEET in raw.columns else [])]
    if not headers:
        return raw.select(columns).clear()
    return raw.filter(wanted.fill_null(False)).select(columns)


def name_holds(name: str, number: str) -> bool:
    """Whether a delivered file's name holds the CPR number (`borger_0101901234.csv`)."""
    return any(re.sub(r"\D", "", m.group()) == number for m in _CPR_IN_NAME.finditer(name))


class ErasedFilter:
    """Leaves the rows of erased subjects out of a delivered chunk, before it is conformed:
    neither silver nor quarantine gets them, and `rows` counts them for the load's report.

    The register holds pseudonyms, so each distinct CPR value of the chunk is pseudonymised
    to compare: a cost only lakes that have erased someone pay."""

    def __init__(
        self,
        contract: type[pa.DataFrameModel],
        aliases: Mapping[str, str],
        key: bytes,
        erased: frozenset[str],
    ) -> None:
        self.fields, self.aliases, self.key, self.erased = (
            cpr_fields(contract),
            aliases,
            key,
            erased,
        )
        self.rows = 0

    def apply(self, raw: pl.DataFrame) -> pl.DataFrame:
        if not self.erased or not self.fields:
            return raw
        hits = []
        for header in raw_headers(raw.columns, self.fields, self.aliases):
            values = raw.get_column(header).cast(pl.String).drop_nulls().unique()
            tokens = pl.Series(pseudonyms(values, self.key, "cpr"), dtype=pl.String)
            found = values.filter(tokens.is_in(list(self.erased)))
            if found.len():
                hits.append(pl.col(header).cast(pl.String).is_in(found.implode()))
        if not hits:
            return raw
        gone = raw.select(pl.any_horizontal(hits).fill_null(False)).to_series()
        self.rows += int(gone.sum())
        return raw.filter(~gone)


def erased(uri: str, storage_options: Mapping[str, str] | None = None) -> frozenset[str]:
    """The pseudonyms in the erasure register (empty when nobody was erased)."""
    table = open_table(uri, storage_options)
    if table is None:
        return frozenset()
    return frozenset(pl.scan_delta(table).select("pseudonym").collect().to_series().to_list())


def register(uri: str, pseudonym: str, at: dt.datetime | None = None) -> bool:
    """Add a pseudonym to the erasure register (once: a second erasure of the same person
    adds nothing). Returns whether it was new."""
    _refuse_unsafe(pseudonym)
    if pseudonym in erased(uri):
        return False
    row = pl.DataFrame(
        {"pseudonym": [pseudonym], "registered_at": [at or dt.datetime.now(dt.UTC)]},
        schema=REGISTER_SCHEMA,
    )
    write_batch(uri, row, mode="append", app_id=f"erasure:{pseudonym}")
    return True


# --- the audit trail ----------------------------------------------------------------------

AUDIT_SCHEMA = {
    "erasure_id": pl.String,
    "erased_at": UTC_US,
    "erased_by": pl.String,
    "subject_found": pl.Boolean,
    "rows_removed": pl.Int64,
    "rows_removed_per_table": pl.String,  # JSON: {"silver.cpr_persons": 1, ...}
    "landing_files": pl.Int64,  # landed files holding the subject, left for the operator
}


@dataclass(frozen=True)
class AuditRecord:
    """One erasure, as `quality.erasures` shows it: who, when and how many rows per table.
    Never the CPR number or its pseudonym (the id is random): the audit trail must not
    become a list of the people who asked to be forgotten."""

    erasure_id: str
    erased_at: dt.datetime
    erased_by: str
    rows_removed_per_table: Mapping[str, int]
    landing_files: int

    @property
    def subject_found(self) -> bool:
        return bool(self.landing_files or any(self.rows_removed_per_table.values()))


def record_audit(uri: str, record: AuditRecord) -> None:
    counts = dict(sorted(record.rows_removed_per_table.items()))
    row = pl.DataFrame(
        {
            "erasure_id": [record.erasure_id],
            "erased_at": [record.erased_at],
            "erased_by": [record.erased_by],
            "subject_found": [record.subject_found],
            "rows_removed": [sum(counts.values())],
            "rows_removed_per_table": [json.dumps(counts)],
            "landing_files": [record.landing_files],
        },
        schema=AUDIT_SCHEMA,
    )
    write_batch(uri, row, mode="append", app_id=f"erasure-audit:{record.erasure_id}")
