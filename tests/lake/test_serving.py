from __future__ import annotations

import datetime as dt
import shutil
from concurrent.futures import ThreadPoolExecutor

import polars as pl
import pytest
from deltalake import write_deltalake

from lake import connect
from lake.errors import ConfigError
from lake.home import Home
from lake.quality import RunRecord, record_run, write_quarantine
from lake.serving import build_serving
from lake.tables import write_batch


def _silver(home, name: str, frame: pl.DataFrame, app_id: str = "b1") -> None:
    write_batch(home.table_uri("silver", name), frame, mode="snapshot", app_id=app_id)


def test_views_catalog_and_quality_are_served(home) -> None:
    _silver(home, "dar_addresses", pl.DataFrame({"address_id": ["a", "b"], "district": ["N", "S"]}))
    failures = pl.DataFrame(
        {"_source_row": [7], "column": ["cpr"], "check": ["cpr_valid"], "value": ["NNNNNNNNNN"]}
    )
    write_quarantine(home, "cpr_persons", "batch1", failures)
    catalog = {"datasets": pl.DataFrame({"dataset": ["dar_addresses"], "owner": ["team:geo"]})}
    report = build_serving(home, catalog)
    assert set(report.views) >= {"silver.dar_addresses", "quality.quarantine"}

    con = connect(home.root)
    assert con.sql("select count(*) from silver.dar_addresses").fetchall() == [(2,)]
    assert con.sql("select dataset, source_row from quality.quarantine").fetchall() == [
        ("cpr_persons", 7)
    ]
    assert con.sql("select owner from catalog.datasets").fetchall() == [("team:geo",)]
    tables = {r[0] for r in con.sql("select schema_name from duckdb_schemas()").fetchall()}
    assert "landing" not in tables and "bronze" not in tables
    con.close()


def test_views_follow_new_commits_and_open_readers_survive_a_rebuild(home) -> None:
    _silver(home, "t", pl.DataFrame({"x": [1]}))
    build_serving(home, {})
    reader = connect(home.root)
    _silver(home, "t", pl.DataFrame({"x": [1, 2, 3]}), app_id="b2")
    _silver(home, "u", pl.DataFrame({"y": [1]}))
    build_serving(home, {})  # replaces the file under the open reader
    assert reader.sql("select count(*) from silver.t").fetchall() == [(3,)]
    reader.close()
    fresh = connect(home.root)
    assert fresh.sql("select count(*) from silver.u").fetchall() == [(1,)]
    fresh.close()


def test_an_open_reader_keeps_working_when_a_load_adds_a_column(home) -> None:
    # schema_drift: evolve adds a column to silver; the reader's file still has the view it
    # opened, which a `SELECT *` view stopped binding ("Contents of view were altered").
    _silver(home, "t", pl.DataFrame({"x": [1]}))
    build_serving(home, {})
    reader = connect(home.root)
    write_batch(
        home.table_uri("silver", "t"),
        pl.DataFrame({"x": [1, 2], "note": ["a", "b"]}),
        mode="snapshot",
        app_id="b2",
        add_columns=True,
    )
    assert reader.sql("select x from silver.t order by x").fetchall() == [(1,), (2,)]
    assert reader.sql("select * from silver.t order by x").fetchall() == [(1,), (2,)]
    reader.close()
    build_serving(home, {})
    fresh = connect(home.root)
    assert fresh.sql("select * from silver.t order by x").fetchall() == [(1, "a"), (2, "b")]
    fresh.close()


def test_builds_running_at_once_all_succeed_and_leave_a_whole_file(home) -> None:
    # Two `kommunelake load` processes each rebuild serving at the end. Both used
    # lake.duckdb.tmp: one unlinked the other's file mid-build, and the other then moved a
    # half-built file into place or failed ("No such file", "Could not set lock").
    _silver(home, "t", pl.DataFrame({"x": [1, 2]}))
    catalog = {"datasets": pl.DataFrame({"dataset": ["t"], "owner": ["team:geo"]})}
    with ThreadPoolExecutor(4) as pool:
        builds = [pool.submit(build_serving, home, catalog) for _ in range(8)]
        reports = [build.result() for build in builds]  # raises what a build raised

    assert all("silver.t" in r.views for r in reports)
    assert sorted(p.name for p in home.serving_db.parent.iterdir()) == ["lake.duckdb"]
    con = connect(home.root)
    assert con.sql("select count(*) from silver.t").fetchall() == [(2,)]
    assert con.sql("select owner from catalog.datasets").fetchall() == [("team:geo",)]
    con.close()


def test_a_copied_home_is_not_served_from_the_lake_it_was_copied_from(home, tmp_path) -> None:
    # The views hold the lake's absolute paths: a copy of the home read the original's lake,
    # silently while that still existed.
    _silver(home, "t", pl.DataFrame({"x": [1]}))
    build_serving(home, {})
    copy = tmp_path / "copied-home"
    shutil.copytree(home.root, copy)
    _silver(home, "t", pl.DataFrame({"x": [1, 2]}), app_id="b2")  # the original moves on

    with pytest.raises(ConfigError) as error:
        connect(copy)
    assert f"built for the lake at {home.lake_root}" in str(error.value)
    assert f"--home {copy} --select 'key:serving/lake_duckdb'" in str(error.value)
    build_serving(Home(copy), {})
    con = connect(copy)
    assert con.sql("select count(*) from silver.t").fetchall() == [(1,)]  # its own lake
    assert con.sql("select uri from catalog.lake").fetchall() == [(Home(copy).lake_root,)]
    con.close()


def test_quality_deletions_is_there_before_any_key_was_deleted(home) -> None:
    # The README points analysts at quality.deletions; before a snapshot first lost a key it
    # was "Table with name deletions does not exist".
    _silver(home, "t", pl.DataFrame({"x": [1]}))
    build_serving(home, {})
    con = connect(home.root)
    assert con.sql("select * from quality.deletions").fetchall() == []
    assert con.sql("select * from quality.deletions").columns == [
        "dataset",
        "batch_id",
        "key",
        "deleted_at",
    ]
    con.close()


def test_connect_without_serving_layer_says_what_to_do(home) -> None:
    with pytest.raises(ConfigError, match="make demo"):
        connect(home.root)


def test_quarantine_rows_of_a_workbook_keep_their_sheet_and_older_tables_gain_it(home) -> None:
    # A quarantine table written before the `sheet` column existed.
    old = pl.DataFrame(
        {
            "dataset": ["visits"],
            "batch_id": ["old"],
            "source_row": [4],
            "column": ["cpr"],
            "check": ["cpr_valid"],
            "value": ["NNNNNNNNNN"],
            "quarantined_at": [dt.datetime(2026, 1, 1, tzinfo=dt.UTC)],
        }
    )
    write_deltalake(home.table_uri("quarantine", "visits"), old.to_arrow())
    sheets = pl.DataFrame(
        {
            "_source_row": [4, 4],
            "_sheet": ["Januar", "Februar"],
            "column": ["hours", "hours"],
            "check": ["type:Float64", "type:Float64"],
            "value": ["mange", "?"],
        }
    )
    write_quarantine(home, "visits", "new", sheets)
    build_serving(home, {})
    con = connect(home.root)
    rows = con.sql(
        "select batch_id, sheet, source_row from quality.quarantine order by batch_id, sheet"
    ).fetchall()
    con.close()
    assert rows == [("new", "Februar", 4), ("new", "Januar", 4), ("old", None, 4)]


def test_an_open_reader_keeps_its_quality_views_when_quality_tables_gain_a_column(home) -> None:
    # quality.runs, quality.failures and catalog.datasets are built over the quality tables'
    # scans: a column added to quality/runs or a quarantine table (record_run and
    # write_quarantine merge schemas) must not stop them binding in a file held open.
    _silver(home, "t", pl.DataFrame({"x": [1]}))
    at = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    record_run(home, RunRecord("t", "b1", "t.csv", "loaded", 2, 1, 1, "[]", "[]", 0, at, at, ""))
    failures = pl.DataFrame(
        {"_source_row": [2], "column": ["x"], "check": ["not_null"], "value": [None]},
        schema_overrides={"value": pl.String},
    )
    write_quarantine(home, "t", "b1", failures)
    specs = pl.DataFrame(
        {"dataset": ["t"], "layer": ["silver"], "freshness_hours": [None]},
        schema_overrides={"freshness_hours": pl.Float64},
    )
    build_serving(home, {"dataset_specs": specs})
    reader = connect(home.root)
    before = {v: reader.sql(f"select * from {v}").columns for v in _QUALITY_VIEWS}

    for uri in (home.runs_uri, home.table_uri("quarantine", "t")):
        row = pl.read_delta(uri).head(1).with_columns(pl.lit("new").alias("added_later"))
        write_deltalake(uri, row.to_arrow(), mode="append", schema_mode="merge")

    for view in _QUALITY_VIEWS:  # the held file still binds, with the columns it had
        assert reader.sql(f"select * from {view}").columns == before[view]
    assert reader.sql("select count(*) from quality.runs").fetchall() == [(2,)]
    reader.close()
    build_serving(home, {"dataset_specs": specs})
    fresh = connect(home.root)
    for view in ("quality.runs", "quality.quarantine"):
        assert "added_later" in fresh.sql(f"select * from {view}").columns
    assert fresh.sql("select rows_in from catalog.datasets").fetchall() == [(2,)]
    fresh.close()


_QUALITY_VIEWS = (
    "quality.runs",
    "quality.quarantine",
    "quality.failures",
    "quality.freshness",
    "catalog.datasets",
)


def test_a_table_of_no_dataset_or_model_gets_no_view_and_stays_in_the_lake(home) -> None:
    _silver(home, "dar_addresses", pl.DataFrame({"address_id": ["a"]}))
    _silver(home, "school_absence", pl.DataFrame({"hours": [1.5]}))  # its YAML was removed
    for name in ("population_by_district", "old_model"):  # old_model's code was removed
        write_batch(
            home.table_uri("gold", name), pl.DataFrame({"n": [1]}), mode="snapshot", app_id=name
        )
    defined = ["silver.dar_addresses", "gold.population_by_district"]
    report = build_serving(home, {}, defined=defined)
    assert set(defined) <= set(report.views)
    assert not [v for v in report.views if v.endswith(("school_absence", "old_model"))]
    con = connect(home.root)
    assert con.sql(
        "select schema_name, view_name from duckdb_views() where schema_name in "
        "('silver', 'gold') order by all"
    ).fetchall() == [("gold", "population_by_district"), ("silver", "dar_addresses")]
    con.close()
    assert pl.read_delta(home.table_uri("silver", "school_absence"))["hours"].to_list() == [1.5]
    assert pl.read_delta(home.table_uri("gold", "old_model"))["n"].to_list() == [1]
