"""The serving layer: one DuckDB file of views over the lake's current Delta versions.

Schemas `silver`, `gold`, `quality` hold views (`delta_scan`, so readers always see the newest
committed version, deletion vectors and column mapping included); `catalog` holds small
tables describing datasets and columns. Landing and bronze are never exposed. The file is
built as `lake.duckdb.tmp` and moved over the old one, so open readers keep their snapshot;
builds take turns (a lock on the serving folder), so two loads finishing together both succeed.

The file is always local; with the lake in object storage its views read s3:// or az:// URIs,
and every connection needs the lake's credentials as a DuckDB secret (`duck_connect(...,
lake_uri=...)`, done by `lake.connect()`); secrets are never stored in the file.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Collection, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import polars as pl
from deltalake import DeltaTable

from lake import quality_views, storage
from lake.duck import duck_connect, sql_string
from lake.history_sql import install_history_macros
from lake.home import Home

EXPOSED_LAYERS = ("silver", "gold")
_EMPTY_QUARANTINE = (
    "SELECT NULL::VARCHAR AS dataset, NULL::VARCHAR AS batch_id, NULL::BIGINT AS source_row, "
    'NULL::VARCHAR AS "column", NULL::VARCHAR AS "check", NULL::VARCHAR AS value, '
    "NULL::TIMESTAMPTZ AS quarantined_at, NULL::VARCHAR AS sheet WHERE false"
)


@dataclass(frozen=True)
class DerivedView:
    """A view over a served view, made only where that view is served with `columns`."""

    source: str  # e.g. gold.population_by_district
    select: str
    columns: tuple[str, ...]


@dataclass(frozen=True)
class ServingReport:
    path: Path
    views: tuple[str, ...]
    tables: tuple[str, ...]


def delta_tables(home: Home, layer: str) -> dict[str, str]:
    """Table name → URI for every Delta table in a lake layer (local disk or object storage)."""
    return storage.list_tables(home.layer_uri(layer), home.storage_options())


def lake_views(
    home: Home, *, pin_columns: bool = False, defined: Collection[str] | None = None
) -> dict[str, str]:
    """Qualified view name → SELECT, for everything the serving layer exposes.

    `pin_columns`: every table is read by its columns now, by name (see `_scan`).
    `defined`: the silver and gold tables the code defines, as `silver.<dataset>` and
    `gold.<model>`; a table of any other (its YAML or model was removed) gets no view, so it
    is not served as current. Its Delta tables stay in the lake, and putting the YAML or
    model back serves it again. None: every table on disk."""
    options = dict(home.storage_options())

    def is_table(uri: str) -> bool:
        return DeltaTable.is_deltatable(uri, storage_options=options)

    def scan(uri: str) -> str:
        return _scan(uri, options if pin_columns else None)

    views = {
        f"{layer}.{name}": scan(uri)
        for layer in EXPOSED_LAYERS
        for name, uri in delta_tables(home, layer).items()
        if defined is None or f"{layer}.{name}" in defined
    }
    quarantine = [scan(uri) for uri in delta_tables(home, "quarantine").values()]
    # The empty select gives the view every column even when only tables written before
    # `sheet` existed are there; quality.failures counts rows by sheet and number.
    views["quality.quarantine"] = " UNION ALL BY NAME ".join([*quarantine, _EMPTY_QUARANTINE])
    history_uri = home.table_uri("quality", "check_history")
    history = scan(history_uri) if is_table(history_uri) else quality_views.EMPTY_CHECK_HISTORY
    runs = scan(home.runs_uri) if is_table(home.runs_uri) else quality_views.EMPTY_RUNS
    views["quality.check_history"] = history
    deletions = home.table_uri("quality", "deletions")
    views["quality.deletions"] = (
        scan(deletions)
        if is_table(deletions)
        else quality_views.EMPTY_DELETIONS  # until a snapshot first loses a key
    )
    erasures = home.table_uri("quality", "erasures")
    views["quality.erasures"] = (
        scan(erasures) if is_table(erasures) else quality_views.EMPTY_ERASURES
    )
    views["quality.runs"] = quality_views.RUNS.format(runs=runs, history=history)
    views["quality.failures"] = quality_views.FAILURES
    return views


def _scan(uri: str, options: dict[str, str] | None) -> str:
    """`SELECT` of a Delta table's current version; with `options`, of its columns now.

    DuckDB stores a view's column names and types, and a `SELECT *` view whose table gained
    a column (schema_drift: evolve) no longer binds: "Contents of view were altered". A
    notebook holding the previous file open would fail on that view until it reconnects.
    Naming the columns keeps it working (without the new column; the rebuilt file has it),
    also in the views built over these scans (quality.runs, quality.failures).

    The names come from the Delta log's schema (logical names, in delta_scan's order): a
    DuckDB `DESCRIBE` of the scan read the same log once more than creating the view does,
    which on object storage was most of the build's time."""
    scan = f"SELECT * FROM delta_scan({sql_string(uri)})"
    if options is None:
        return scan
    fields = DeltaTable(uri, storage_options=options or None).schema().fields
    listed = ", ".join('"' + f.name.replace('"', '""') + '"' for f in fields)
    return f"SELECT {listed} FROM ({scan})"


def catalog_views() -> dict[str, str]:
    """Views over the catalog tables that need the quality views (created after both)."""
    return {
        "quality.freshness": quality_views.FRESHNESS,
        "catalog.datasets": quality_views.DATASETS,
    }


def create_views(con, views: dict[str, str]) -> None:
    for schema in sorted({name.split(".")[0] for name in views}):
        con.execute(f"CREATE SCHEMA IF NOT EXISTS {schema}")
    for name, select in views.items():
        con.execute(f"CREATE OR REPLACE VIEW {name} AS {select}")


def build_serving(
    home: Home,
    catalog: dict[str, pl.DataFrame],
    *,
    defined: Collection[str] | None = None,
    derived: Mapping[str, DerivedView] | None = None,
) -> ServingReport:
    """Rebuild serving/lake.duckdb atomically; `catalog` maps table name → frame, `defined`
    names the silver and gold tables to serve (see `lake_views`), `derived` maps further
    views to what they read (`DerivedView`).

    With a `dataset_specs` table (one row per dataset: dataset, layer, freshness_hours, ...)
    the layer also gets quality.freshness and catalog.datasets with a quality score."""
    target = home.serving_db
    target.parent.mkdir(parents=True, exist_ok=True)
    with _one_build_at_a_time(target.parent):
        return _build(home, target, catalog, defined, derived or {})


@contextlib.contextmanager
def _one_build_at_a_time(folder: Path) -> Iterator[None]:
    """Hold an exclusive lock on the serving folder itself (no lock file is left behind).

    Every build writes `lake.duckdb.tmp`: two at once (two `kommunelake load` processes
    finishing together) would unlink each other's file mid-build and move a half-built one
    into place. The kernel drops the lock of a killed process, so a crash never blocks."""
    handle = os.open(folder, os.O_RDONLY)
    try:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield
    finally:
        os.close(handle)  # releases the lock


def _build(
    home: Home,
    target: Path,
    catalog: dict[str, pl.DataFrame],
    defined: Collection[str] | None,
    derived: Mapping[str, DerivedView],
) -> ServingReport:
    tmp = target.with_name(target.name + ".tmp")
    tmp.unlink(missing_ok=True)  # a killed build's file: only the lock holder writes it
    views = lake_views(home, pin_columns=True, defined=defined)
    con = duck_connect(tmp, lake_uri=home.lake_root)
    try:
        create_views(con, views)
        # A view is left out where what it reads is not served yet, or is an older table
        # without the columns it needs (a gold model changed, its table not yet recomputed):
        # one stale table must not stop the whole file from being built.
        over = {
            name: view.select
            for name, view in derived.items()
            if view.source in views
            and set(view.columns) <= set(con.sql(f"SELECT * FROM {view.source}").columns)
        }
        create_views(con, over)
        views.update(over)
        con.execute("CREATE SCHEMA IF NOT EXISTS catalog")
        for name, frame in catalog.items():
            con.register("_frame", frame.to_arrow())
            con.execute(f"CREATE TABLE catalog.{name} AS SELECT * FROM _frame")
            con.unregister("_frame")
        if "dataset_specs" in catalog:
            extra = catalog_views()
            create_views(con, extra)
            views.update(extra)
        # The views hold the lake's absolute location: connect() compares it with its home's,
        # so a copied or moved home is not silently served from the lake it was copied from.
        con.execute(
            "CREATE TABLE catalog.lake AS SELECT ? AS uri, now() AS built_at", [home.lake_root]
        )
        # as_of / current_of / as_of_scd2 are stored in the file, for read-only users too.
        install_history_macros(con)
        con.execute("CHECKPOINT")
    finally:
        con.close()
    os.replace(tmp, target)
    return ServingReport(target, tuple(views), tuple(f"catalog.{n}" for n in catalog))
