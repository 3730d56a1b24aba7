"""Quarantine commits: a batch's failing rows, written once per outcome, from memory or from
the spool a load keeps them in on local disk."""

from __future__ import annotations

import polars as pl
from deltalake import DeltaTable

from lake.quality import QuarantineSpool, quarantine_app_id, write_quarantine
from lake.validation import FAILURE_SCHEMA


def _failures(rows: range, check: str = "type:Date") -> pl.DataFrame:
    return pl.DataFrame(
        {
            "_source_row": list(rows),
            "column": ["opened"] * len(rows),
            "check": [check] * len(rows),
            "value": [f"2024/01/{n % 28 + 1:02d}" for n in rows],
        },
        schema=FAILURE_SCHEMA,
    )


def _table(home, dataset: str) -> pl.DataFrame:
    return pl.read_delta(home.table_uri("quarantine", dataset)).drop("quarantined_at")


def test_a_spooled_batch_commits_what_the_same_rows_in_memory_do(home, tmp_path) -> None:
    # Three chunks' failures spooled to disk, then committed: the same rows and the same
    # commit id as the whole frame, so a re-run after a crash writes nothing either way.
    whole = pl.concat([_failures(range(2, 500)), _failures(range(2, 40), "cpr_valid")])
    spool = QuarantineSpool(tmp_path, "cases", "b1")
    for part in (_failures(range(2, 200)), _failures(range(2, 40), "cpr_valid")):
        spool.add(part)
    spool.add(pl.DataFrame(schema=FAILURE_SCHEMA))  # a chunk without failures
    spool.add(_failures(range(200, 500)))
    assert len(list(tmp_path.glob("*.parquet"))) == 3
    write_quarantine(home, "spooled", "b1", spool)
    write_quarantine(home, "in_memory", "b1", whole)
    spooled, in_memory = _table(home, "spooled"), _table(home, "in_memory")
    order = ["source_row", "check"]
    assert spooled.drop("dataset").sort(order).equals(in_memory.drop("dataset").sort(order))
    assert spooled.height == 498 + 38

    # Written again (a re-run after a crash): the same outcome is not written twice.
    write_quarantine(home, "spooled", "b1", spool)
    write_quarantine(home, "spooled", "b1", whole)
    assert _table(home, "spooled").height == 498 + 38
    assert DeltaTable(home.table_uri("quarantine", "spooled")).version() == 0


def test_the_commit_id_names_the_outcome_in_any_order() -> None:
    rows = (
        pl.concat([_failures(range(2, 300)), _failures(range(5, 9), "cpr_valid")])
        .rename({"_source_row": "source_row"})
        .with_columns(pl.lit(None, pl.String).alias("sheet"))
    )
    first = quarantine_app_id("cases", "b1", rows)
    assert first == quarantine_app_id("cases", "b1", rows.reverse())
    assert first == quarantine_app_id("cases", "b1", rows.sample(fraction=1.0, shuffle=True))
    # One value, one check or one row fewer is another outcome.
    changed = rows.with_columns(
        pl.when(pl.col("source_row") == 7)
        .then(pl.lit("2024/13/01"))
        .otherwise("value")
        .alias("value")
    )
    assert quarantine_app_id("cases", "b1", changed) != first
    assert quarantine_app_id("cases", "b1", rows.head(-1)) != first
    relabelled = rows.with_columns(pl.lit("type:Date").alias("check"))
    assert quarantine_app_id("cases", "b1", relabelled) != first
    assert quarantine_app_id("cases", "b1", rows, attempt=1) != first
