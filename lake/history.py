"""History in Delta tables: SCD2 versions and bitemporal register registrations.

SCD2 (`load_mode: scd2`): every key has versions with `valid_from`, `valid_to` (null = open)
and `is_current`. A changed row closes its current version and opens a new one; an unchanged
row touches nothing; with a full source, keys missing from the batch are closed. All of it is
one Delta merge, so a crash leaves either the whole batch or nothing.
History only grows forward: a batch that would change anything while the table holds a
version starting or ending after the batch's time (valid_at), or that would close a version
starting at that time, is refused before anything is written.

Bitemporal (`load_mode: bitemporal`): Danish registers (DAR, BBR, CPR, Matrikel) deliver
registrations with `virkningFra/virkningTil` (when it was true in the world) and
`registreringFra/registreringTil` (when the register knew it). A registration is identified by
entity id + registreringFra + virkningFra and is never changed, except that the register
closes it (sets registreringTil) when a later registration supersedes it. Re-delivering a
registration adds nothing. lake/history_sql.py holds the DuckDB macros that query both.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

import polars as pl
from deltalake import CommitProperties, DeltaTable, write_deltalake

from lake import storage
from lake.errors import LakeError
from lake.schema_plan import table_schema
from lake.tables import (
    UTC_US,
    Commit,
    ScdSource,
    key_predicate,
    merge_metrics,
    partition_pruning,
    partitions_holding,
    quote,
    quote_target,
    write_batch,
)

VIRKNING_FRA = "virkningFra"
VIRKNING_TIL = "virkningTil"
REGISTRERING_FRA = "registreringFra"
REGISTRERING_TIL = "registreringTil"
BITEMPORAL_COLUMNS = (VIRKNING_FRA, VIRKNING_TIL, REGISTRERING_FRA, REGISTRERING_TIL)
_EXAMPLES = 3


# --------------------------------------------------------------------------------------------
# SCD2
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Scd2Changes:
    """What one batch does to an SCD2 table, worked out before anything is committed."""

    opened: pl.DataFrame  # new versions, with valid_from/valid_to/is_current
    closes: pl.DataFrame  # keys whose current version ends at `at`
    to_close: pl.DataFrame  # those current versions (keys and partitions, for pruning)
    at: dt.datetime

    @property
    def empty(self) -> bool:
        return self.opened.is_empty() and self.closes.is_empty()


def scd2_changes(
    table: DeltaTable,
    frame: pl.DataFrame,
    *,
    keys: Sequence[str],
    source: ScdSource = "full",
    valid_at: dt.datetime | None = None,
    compare_columns: Sequence[str] | None = None,
    held: pl.DataFrame | None = None,
) -> Scd2Changes:
    """The versions a batch opens and closes (called by write_batch before any commit, so
    a batch refused here leaves even the table's schema as it was).

    source: "full" — the batch holds every live key, so absent keys are closed; "delta" — the
    batch holds changed keys only. valid_at: when the batch's versions start (default now).
    compare_columns: what counts as a change (default: every column but the keys and
    `_`-prefixed lineage columns, which differ in every batch). held: keys the source still
    has whose rows were quarantined; a full source does not close them."""
    keys = list(keys)
    compare = check_scd2_batch(
        storage.shown(table.table_uri),
        frame,
        keys=keys,
        compare_columns=compare_columns,
        source=source,
    )
    at = pl.select(pl.lit(valid_at or dt.datetime.now(dt.UTC)).cast(UTC_US)).item()

    stored = table_schema(table)
    partitions = [p for p in table.metadata().partition_columns if p in stored]
    wanted = list(
        dict.fromkeys([*keys, *partitions, "valid_from", *(c for c in compare if c in stored)])
    )
    scan = pl.scan_delta(table.table_uri, version=table.version()).filter(pl.col("is_current"))
    if source == "delta":
        # Only the batch's keys can change: read just those, in the partitions they are in
        # now or were in before (a moved key's current version is closed where it is).
        holding = partitions_holding(table, frame, keys)
        scan = _same_partitions(scan, holding, partitions).join(
            frame.select(keys).lazy(), on=keys, how="semi"
        )
    current = scan.select(wanted).collect()
    # The batch has the table's types or wider ones (a widened column is rewritten only
    # later, in write_batch): the stored versions are cast up to meet it, or keys of mixed
    # types cannot be compared and concatenated (Int32 keys against an Int64 batch).
    current = current.cast({c: frame.schema[c] for c in current.columns if c in frame.schema})
    # columns this batch adds have no value in the current versions yet
    current = current.with_columns(
        pl.lit(None, frame.schema[c]).alias(c) for c in compare if c not in current.columns
    )

    before = current.select(*keys, *(pl.col(c).alias(f"{c}__current") for c in compare))
    joined = frame.join(
        before.with_columns(pl.lit(True).alias("__found")), on=keys, how="left"
    ).with_columns(pl.col("__found").fill_null(False))
    changed = pl.any_horizontal(
        [pl.col(c).ne_missing(pl.col(f"{c}__current")) for c in compare] or [pl.lit(False)]
    )
    inserts = joined.filter(~pl.col("__found") | changed).select(frame.columns)
    closes = joined.filter(pl.col("__found") & changed).select(keys)
    if source == "full":
        absent = current.select(keys).join(frame, on=keys, how="anti")
        if held is not None and not held.is_empty():
            held = held.select(keys).cast({k: frame.schema[k] for k in keys})
            absent = absent.join(held, on=keys, how="anti", nulls_equal=True)
        closes = pl.concat([closes, absent])
    to_close = current.join(closes, on=keys, how="semi")
    new_keys = inserts.join(current, on=keys, how="anti").select(keys)
    _refuse_out_of_order(table, to_close, new_keys, keys=keys, at=at)
    opened = inserts.with_columns(
        pl.lit(at).cast(UTC_US).alias("valid_from"),
        pl.lit(None, UTC_US).alias("valid_to"),
        pl.lit(True).alias("is_current"),
    )
    return Scd2Changes(opened, closes, to_close.drop("valid_from"), at)


def _same_partitions(scan: pl.LazyFrame, rows: pl.DataFrame, partitions: Sequence[str]):
    """`scan` restricted to the partition values `rows` have (null partition included)."""
    for column in partitions:
        if column in rows.columns:
            values = rows.get_column(column).unique()
            same = pl.col(column).is_in(values.drop_nulls().implode())
            if values.null_count():
                same = same | pl.col(column).is_null()
            scan = scan.filter(same)
    return scan


def _refuse_out_of_order(
    table: DeltaTable,
    to_close: pl.DataFrame,
    new_keys: pl.DataFrame,
    *,
    keys: Sequence[str],
    at: dt.datetime,
) -> None:
    """A batch's versions start at `at`: it cannot close a version that starts at or after
    `at` (valid_to would not be after valid_from, and a key would have two versions from one
    instant), nor change anything while any version starts or ends after `at`. That happens
    when a batch older than the table's history is applied: an old batch reloaded, or a
    clock set back. Checking only the keys the batch touches is not enough: a key new to
    the table would be opened at `at` and stay current although a newer full batch lacked
    it, and an unchanged key missing from an old full batch would be closed before a newer
    batch that still had it."""
    late = to_close.filter(pl.col("valid_from") >= at).select(
        *keys, pl.col("valid_from").alias("history_to")
    )
    if not to_close.is_empty() or not new_keys.is_empty():
        # versions starting or ending after `at`, anywhere in the table; in order, no row
        # passes the filter, and the Parquet statistics of valid_from/valid_to let the scan
        # skip every file
        later = (
            pl.scan_delta(table.table_uri, version=table.version())
            .filter((pl.col("valid_from") > at) | (pl.col("valid_to") > at))
            .group_by(list(keys))
            .agg(pl.max_horizontal("valid_from", "valid_to").max().alias("history_to"))
            .collect()
        )
        late = pl.concat([late, later.cast(late.schema)], how="vertical_relaxed")
        late = late.group_by(list(keys)).agg(pl.col("history_to").max())
    if late.is_empty():
        return
    examples = ", ".join(
        f"{dict(zip(keys, row[:-1], strict=True))} (history to {row[-1].isoformat()})"
        for row in late.sort(list(keys)).head(_EXAMPLES).rows()
    )
    raise LakeError(
        f"{storage.shown(table.table_uri)}: this batch's versions would start at "
        f"{at.isoformat()}, but {late.height} key(s) already have history at or after that "
        f"time, e.g. {examples}. "
        "SCD2 history only grows forward: a batch older than the table's history (an old "
        "batch reloaded, a clock set back) cannot be applied. Nothing was written. Load a "
        "newer delivery, or rebuild the table from landing in delivery order"
    )


def merge_scd2(
    table: DeltaTable, changes: Scd2Changes, *, keys: Sequence[str], props: CommitProperties
) -> Commit:
    """Apply one batch's changes (`scd2_changes`) to an SCD2 table in one commit (called by
    write_batch): a changed row closes its current version and opens a new one; an unchanged
    row touches nothing."""
    keys = list(keys)
    if changes.empty:
        return Commit(table.version(), False, skipped="no changes: every row is unchanged")
    opened, closes = changes.opened, changes.closes
    # Only new keys: a plain append is the same single commit, cheaper, where the table's
    # lock keeps other loads out (local disk). On object storage an append commits over a
    # racing load's, and a key both batches add would be current twice (every key, into a
    # table without rows: tables._create_empty); a merge conflicts with it and is written
    # again on top of it.
    if closes.is_empty() and not storage.parse_lake_uri(table.table_uri).is_remote:
        write_deltalake(table, opened.to_arrow(), mode="append", commit_properties=props)
        return Commit(
            DeltaTable(table.table_uri).version(),
            True,
            metrics={"num_target_rows_inserted": opened.height, "num_target_rows_updated": 0},
        )

    # One merge does both: rows marked "close" match the current version of their key and end
    # it; rows marked "insert" have null match columns, never match, and are inserted.
    at = pl.lit(changes.at).cast(UTC_US)
    match = {k: f"__match_{i}" for i, k in enumerate(keys)}
    staged = pl.concat(
        [
            opened.with_columns(
                *(pl.lit(None, opened.schema[k]).alias(m) for k, m in match.items()),
                pl.lit("insert").alias("__action"),
            ),
            closes.select(
                *(pl.col(k).alias(m) for k, m in match.items()),
                at.alias("valid_to"),
                pl.lit(False).alias("is_current"),
                pl.lit("close").alias("__action"),
            ),
        ],
        how="diagonal_relaxed",
    )
    predicate = " AND ".join(
        p
        for p in (
            " AND ".join(f"t.{quote(k)} = s.{quote(m)}" for k, m in match.items()),
            "t.is_current = true",
            partition_pruning(table, changes.to_close),
        )
        if p
    )
    metrics = (
        table.merge(
            staged.to_arrow(),
            predicate,
            source_alias="s",
            target_alias="t",
            commit_properties=props,
        )
        .when_matched_update(
            updates={"valid_to": "s.valid_to", "is_current": "s.is_current"},
            predicate="s.__action = 'close'",
        )
        .when_not_matched_insert(
            updates={quote_target(c): f"s.{quote(c)}" for c in opened.columns},
            predicate="s.__action = 'insert'",
        )
        .execute()
    )
    return Commit(DeltaTable(table.table_uri).version(), True, metrics=merge_metrics(metrics))


def check_scd2_batch(
    uri: str,
    frame: pl.DataFrame,
    *,
    keys: Sequence[str],
    compare_columns: Sequence[str] | None,
    source: str = "full",
) -> list[str]:
    """Refuse what SCD2 cannot load (before anything is written); returns the columns
    compared for changes."""
    if source not in ("full", "delta"):
        raise LakeError(f"{uri}: scd2 source must be 'full' or 'delta', not {source!r}")
    compare = (
        list(compare_columns)
        if compare_columns is not None
        else [c for c in frame.columns if c not in keys and not c.startswith("_")]
    )
    unknown = [c for c in compare if c not in frame.columns]
    if unknown:
        raise LakeError(f"{uri}: compare_columns {unknown} are not in the batch")
    _refuse_null_keys(uri, frame, keys)
    return compare


def _refuse_null_keys(uri: str, frame: pl.DataFrame, keys: Sequence[str]) -> None:
    # SQL equality never matches null, so a null key would get a new version on every load
    nulls = [k for k in keys if frame.get_column(k).null_count()]
    if nulls:
        raise LakeError(
            f"{uri}: key column(s) {nulls} have null values; history needs a value in every "
            "key. Quarantine those rows in the contract (not null) or fix `keys:`"
        )


# --------------------------------------------------------------------------------------------
# Bitemporal registrations
# --------------------------------------------------------------------------------------------


def append_registrations(
    uri: str,
    frame: pl.DataFrame,
    *,
    ids: Sequence[str],
    app_id: str,
    metadata: dict[str, str] | None = None,
    add_columns: bool = False,
    partition_by: Sequence[str] = (),
) -> Commit:
    """Append a delivery of register registrations; same as write_batch(mode="bitemporal").

    New registrations are inserted, a registration already stored is left alone except that
    a registreringTil the register has since set is copied onto it. A delivery with nothing
    new commits nothing (skipped says so); the same app_id twice commits nothing either."""
    return write_batch(
        uri,
        frame,
        mode="bitemporal",
        keys=ids,
        app_id=app_id,
        metadata=metadata,
        add_columns=add_columns,
        partition_by=partition_by,
    )


def registration_key(ids: Sequence[str]) -> list[str]:
    return [*ids, REGISTRERING_FRA, VIRKNING_FRA]


def prepare_registrations(uri: str, frame: pl.DataFrame, *, ids: Sequence[str]) -> pl.DataFrame:
    """Check a delivery's bitemporal columns and drop registrations repeated within it."""
    missing = [c for c in BITEMPORAL_COLUMNS if c not in frame.columns]
    if missing:
        raise LakeError(
            f"{uri}: a bitemporal load needs columns {list(BITEMPORAL_COLUMNS)}; the batch "
            f"lacks {missing}. Map them in `columns:` of the dataset YAML"
        )
    key = registration_key(ids)
    _refuse_null_keys(uri, frame, key)
    # the same registration twice in one delivery is one registration; lineage columns differ
    content = [c for c in frame.columns if not c.startswith("_")]
    frame = frame.unique(subset=content, keep="first", maintain_order=True)
    clashes = frame.group_by(key).len().filter(pl.col("len") > 1)
    if not clashes.is_empty():
        examples = ", ".join(
            str(dict(zip(key, row[:-1], strict=True)))
            for row in clashes.sort(key).head(_EXAMPLES).rows()
        )
        raise LakeError(
            f"{uri}: {clashes.height} registration(s) occur more than once with different "
            f"content on {key}, e.g. {examples}. A registration is immutable: ask the source "
            "which is right. Nothing was written"
        )
    return frame


def merge_registrations(
    table: DeltaTable, frame: pl.DataFrame, *, ids: Sequence[str], props: CommitProperties
) -> Commit:
    """Insert new registrations and close stored ones, in one merge (called by write_batch)."""
    uri = table.table_uri  # the frame went through prepare_registrations in write_batch
    key = registration_key(ids)
    partitions = [c for c in table.metadata().partition_columns if c in frame.columns]
    stored = (
        pl.scan_delta(uri, version=table.version())
        .select(*key, *partitions, pl.col(REGISTRERING_TIL).alias("__stored_til"))
        .join(frame.select(key).lazy(), on=key, how="semi")
        .collect()
    )
    found = stored.select(*key, "__stored_til", pl.lit(True).alias("__found"))
    joined = frame.join(found, on=key, how="left")
    new = pl.col("__found").is_null()
    closing = (
        pl.col("__found")
        & pl.col("__stored_til").is_null()
        & pl.col(REGISTRERING_TIL).is_not_null()
    )
    staged = joined.filter(new | closing).select(frame.columns)
    if staged.is_empty():
        return Commit(
            table.version(),
            False,
            skipped=f"nothing new: all {frame.height} registrations are already in the table",
        )
    til = quote(REGISTRERING_TIL)
    # a stored registration is closed where it lives, whatever partition the delivery gives it
    holding = pl.concat(
        [staged.select(partitions), stored.join(staged, on=key, how="semi").select(partitions)],
        how="vertical_relaxed",
    )
    predicate = " AND ".join(
        p for p in (key_predicate(key), partition_pruning(table, holding)) if p
    )
    metrics = (
        table.merge(
            staged.to_arrow(),
            predicate,
            source_alias="s",
            target_alias="t",
            commit_properties=props,
        )
        .when_matched_update(
            updates={quote_target(REGISTRERING_TIL): f"s.{til}"},
            predicate=f"t.{til} IS NULL AND s.{til} IS NOT NULL",
        )
        .when_not_matched_insert_all()
        .execute()
    )
    return Commit(DeltaTable(uri).version(), True, metrics=merge_metrics(metrics))
