"""The serving layer's quality views, over real Delta tables in a temporary home."""

from __future__ import annotations

import dataclasses
import datetime as dt

import polars as pl
from deltalake import write_deltalake

from lake import connect
from lake.quality import CheckState, RunRecord, record_checks, record_run, write_quarantine
from lake.serving import build_serving

NOW = dt.datetime.now(dt.UTC)


def _run(dataset: str, batch: str, hours_ago: float, rows_in: int, valid: int) -> RunRecord:
    at = NOW - dt.timedelta(hours=hours_ago)
    return RunRecord(
        dataset,
        batch,
        f"{dataset}.csv",
        "loaded",
        rows_in,
        valid,
        rows_in - valid,
        "[]",
        "[]",
        1,
        at,
        at,
        "",
    )


def _check(dataset: str, name: str, passed: bool, hours_ago: float, *, blocking=False):
    return CheckState(
        dataset,
        name,
        passed,
        "ERROR" if blocking else "WARN",
        blocking,
        None if passed else 3,
        "",
        "b1",
        NOW - dt.timedelta(hours=hours_ago),
    )


def _specs(**freshness: float) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "dataset": list(freshness),
            "layer": ["silver"] * len(freshness),
            "freshness_hours": list(freshness.values()),
        }
    )


def test_freshness_failures_and_score(home) -> None:
    record_run(home, _run("fresh", "b1", hours_ago=2, rows_in=100, valid=100))
    record_run(home, _run("late", "b1", hours_ago=50, rows_in=100, valid=90))
    write_quarantine(
        home,
        "late",
        "b1",
        pl.DataFrame(
            {
                "_source_row": [2, 3],
                "column": ["cpr"] * 2,
                "check": ["cpr_valid"] * 2,
                "value": ["NNNNNNNNNN", "NNNNNN-NNNN"],
            }
        ),
    )
    record_checks(
        home,
        [
            _check("late", "schema", False, hours_ago=30, blocking=True),
            _check("late", "schema", False, hours_ago=10, blocking=True),
            _check("fresh", "volume", False, hours_ago=20),
            _check("fresh", "volume", True, hours_ago=1),  # recovered: no longer failing
        ],
        only_changes=False,
    )
    build_serving(home, {"dataset_specs": _specs(fresh=36, late=36)})

    con = connect(home.root)
    stale = dict(con.sql("select dataset, stale from quality.freshness").fetchall())
    assert stale == {"fresh": False, "late": True}
    failing = con.sql("""select dataset, "check", "rows", examples, failing_since
                         from quality.failures order by "check" """).fetchall()
    assert [(d, c, n) for d, c, n, _, _ in failing] == [
        ("late", "contract: cpr_valid", 2),
        ("late", "schema", 3),
    ]
    assert failing[0][3] == ["NNNNNN-NNNN", "NNNNNNNNNN"]
    assert abs((NOW - failing[1][4]).total_seconds() / 3600 - 30) < 0.1  # since the first
    score = dict(con.sql("select dataset, quality_score from catalog.datasets").fetchall())
    # fresh: 100% valid, nothing failing; late: 90% valid - 25 blocking - 20 stale.
    assert score == {"fresh": 100, "late": 45}
    con.close()


def _batch_check(name: str, passed: bool, batch: str | None, rows: int | None) -> CheckState:
    return CheckState(
        "persons", name, passed, "WARN", False, rows, "", batch, dt.datetime.now(dt.UTC)
    )


def test_a_check_failing_alike_for_the_next_load_is_counted_for_that_load(home) -> None:
    """A references check with the same 8 unmatched rows in two loads: both loads' rows in
    quality.runs name it, while re-running a load (or checking without one) adds nothing."""
    for batch, hours_ago in (("b1", 2), ("b2", 1)):
        record_run(home, _run("persons", batch, hours_ago=hours_ago, rows_in=10, valid=10))
        states = [_batch_check("unique_keys", True, batch, 0)]
        record_checks(home, states, only_changes=False)  # a load records all its checks
        # The references check runs after the load, recording only changes.
        assert record_checks(home, [_batch_check("refs", False, batch, 8)], only_changes=True)
    again = [_batch_check("refs", False, "b2", 8), _batch_check("unique_keys", True, None, 0)]
    assert record_checks(home, again, only_changes=True) == 0
    build_serving(home, {"dataset_specs": _specs(persons=36)})

    con = connect(home.root)
    runs = con.sql("""select batch_id, checks_passed, checks_failed from quality.runs
                      order by batch_id""").fetchall()
    con.close()
    assert runs == [("b1", 1, ["refs"]), ("b2", 1, ["refs"])]


def test_failing_rows_of_a_workbook_count_once_per_sheet(home) -> None:
    """Workbooks read with `sheets:` number rows per sheet: row 4 of January and row 4 of
    February failing the same check are two rows, as quality.runs counts them."""
    record_run(home, _run("visits", "b1", hours_ago=1, rows_in=10, valid=7))
    failures = pl.DataFrame(
        {
            "_source_row": [4, 4, 5],
            "_sheet": ["Januar", "Februar", "Februar"],
            "column": ["hours"] * 3,
            "check": ["type:Float64"] * 3,
            "value": ["mange", "?", "?"],
        }
    )
    write_quarantine(home, "visits", "b1", failures)
    build_serving(home, {"dataset_specs": _specs(visits=36)})

    con = connect(home.root)
    rows = con.sql("""select "rows" from quality.failures
                      where "check" = 'contract: type:Float64'""").fetchall()
    quarantined = con.sql("select rows_quarantined from quality.runs").fetchall()
    con.close()
    assert rows == quarantined == [(3,)]


def test_quarantine_tables_older_than_sheets_alone_still_serve_a_sheet_column(home) -> None:
    old = pl.DataFrame(
        {
            "dataset": ["old"],
            "batch_id": ["b0"],
            "source_row": [2],
            "column": ["x"],
            "check": ["not_nullable"],
            "value": [None],
            "quarantined_at": [NOW],
        },
        schema_overrides={"value": pl.String},
    )
    write_deltalake(home.table_uri("quarantine", "old"), old.to_arrow())
    record_run(home, _run("old", "b0", hours_ago=1, rows_in=2, valid=1))
    build_serving(home, {"dataset_specs": _specs(old=36)})

    con = connect(home.root)
    rows = con.sql("select source_row, sheet from quality.quarantine").fetchall()
    failing = con.sql('select "rows" from quality.failures').fetchall()
    con.close()
    assert rows == [(2, None)]
    assert failing == [(1,)]


def test_failing_rows_of_every_file_of_the_latest_run_are_shown(home) -> None:
    """Two exports loaded in one run: the first one's failing rows are the latest load's
    too, though the second finished last. An earlier run's rows are not."""
    loads = (  # batch, run, hours ago, rows in, rows valid
        ("b0", "run-1", 5, 10, 9),
        ("b1", "run-2", 1.1, 10, 0),
        ("b2", "run-2", 1, 600, 600),
    )
    for batch, run_id, hours_ago, rows_in, valid in loads:
        record = _run("leave", batch, hours_ago, rows_in=rows_in, valid=valid)
        record_run(home, dataclasses.replace(record, dagster_run_id=run_id))
        failing = rows_in - valid
        if failing:
            rows = {
                "_source_row": list(range(2, 2 + failing)),
                "column": ["start_date"] * failing,
                "check": ["type:Date"] * failing,
                "value": ["NN-NN-NNNN"] * failing,
            }
            write_quarantine(home, "leave", batch, pl.DataFrame(rows))
    build_serving(home, {"dataset_specs": _specs(leave=36)})

    con = connect(home.root)
    shown = con.sql("""select batch_id, "rows" from quality.failures
                       where "check" = 'contract: type:Date'""").fetchall()
    con.close()
    assert shown == [("b1", 10)]


def test_an_empty_delivery_scores_as_nothing_failed_and_a_never_loaded_one_has_no_score(
    home,
) -> None:
    """A month without sick leave is a header-only export: no row failed, so the dataset
    is not scored as if every row had. A dataset never loaded is unknown (null), not the
    worst (0, as it was); one whose every delivery was rejected is known to be bad."""
    record_run(home, _run("leave", "b1", hours_ago=1, rows_in=0, valid=0))
    rejected = dataclasses.replace(
        _run("broken", "b1", hours_ago=1, rows_in=0, valid=0), status="rejected"
    )
    record_run(home, rejected)
    build_serving(home, {"dataset_specs": _specs(leave=36, never=36, broken=36)})

    con = connect(home.root)
    score = dict(con.sql("select dataset, quality_score from catalog.datasets").fetchall())
    con.close()
    assert score == {"leave": 100, "never": None, "broken": 0}


def test_a_contract_failure_is_failing_since_the_first_of_the_loads_it_failed_in_a_row(
    home,
) -> None:
    """start_date fails in b0, b1 was clean, then it fails in b2 and b3: it has failed
    since b2's load, as the other checks count from their last pass, not since b3's."""
    loads = (("b0", 4, True), ("b1", 3, False), ("b2", 2, True), ("b3", 1, True))
    for batch, hours_ago, failing in loads:
        record = _run("leave", batch, hours_ago, rows_in=10, valid=8 if failing else 10)
        record_run(home, dataclasses.replace(record, dagster_run_id=f"run-{batch}"))
        if failing:
            rows = {
                "_source_row": [2, 3],
                "column": ["start_date"] * 2,
                "check": ["type:Date"] * 2,
                "value": ["NN-NN-NNNN"] * 2,
            }
            write_quarantine(home, "leave", batch, pl.DataFrame(rows))
    build_serving(home, {"dataset_specs": _specs(leave=36)})

    con = connect(home.root)
    [(batch, since, last)] = con.sql("""select batch_id, failing_since, last_evaluated_at
        from quality.failures where "check" = 'contract: type:Date'""").fetchall()
    started = con.sql("""select min(quarantined_at) from quality.quarantine
                         where batch_id = 'b2'""").fetchone()[0]
    con.close()
    assert batch == "b3" and since == started and since < last
