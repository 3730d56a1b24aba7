"""Check rules from the YAML quality block, on hand-made load facts."""

from __future__ import annotations

import dataclasses

import dagster as dg
import polars as pl
import pytest

from lake.quality import runs
from lake.validation import contract_columns
from pipelines.checks import LoadFacts, check_results, load_facts
from pipelines.ingest import LINEAGE, BatchResult, LoadReport
from pipelines.specs import QualitySpec, spec_by_name

SPEC = dataclasses.replace(
    spec_by_name("sick_leave"),
    quality=QualitySpec(quarantine_warn=0.01, quarantine_error=0.05, volume_tolerance=0.5),
)


def _facts(**changes) -> LoadFacts:
    facts = LoadFacts(
        rows_in=1000,
        rows_valid=1000,
        rows_quarantined=0,
        failures=(),
        extra_columns=(),
        rejected=(),
        reconciled=True,
        latest_rows_in=1000,
        previous_rows_in=(990, 1010, 1000),
    )
    return dataclasses.replace(facts, **changes)


def _results(facts: LoadFacts) -> dict[str, dg.AssetCheckResult]:
    return {r.check_name: r for r in check_results(SPEC, facts, None)}


def test_a_clean_load_passes_everything() -> None:
    assert all(r.passed for r in _results(_facts()).values())


@pytest.mark.parametrize(
    ("quarantined", "contract_passes", "threshold_passes"),
    [(10, True, True), (11, False, True), (50, False, True), (51, False, False)],
)
def test_quarantine_share_warns_then_blocks(quarantined, contract_passes, threshold_passes):
    results = _results(_facts(rows_valid=1000 - quarantined, rows_quarantined=quarantined))
    assert results["contract"].passed is contract_passes
    assert results["contract"].severity == dg.AssetCheckSeverity.WARN
    assert results["quarantine_threshold"].passed is threshold_passes
    assert results["quarantine_threshold"].severity == dg.AssetCheckSeverity.ERROR


def test_a_file_whose_every_row_failed_blocks_also_beside_good_files(home) -> None:
    """Two exports loaded in one run: 10 rows that all failed, and 600 good ones. Together
    1.6% failed, but the first file is suspect as a whole."""
    report = LoadReport(
        "sick_leave",
        new_files=2,
        batches=(
            BatchResult("b1", "fravaer_marts.csv", "loaded", 10, 0, 10),
            BatchResult("b2", "fravaer_april.csv", "loaded", 600, 600, 0),
        ),
        history=runs(home),
    )
    results = _results(load_facts(home, SPEC, report))
    threshold = results["quarantine_threshold"]
    assert not threshold.passed and threshold.severity == dg.AssetCheckSeverity.ERROR
    assert threshold.metadata["file"].value == "fravaer_marts.csv"
    assert threshold.metadata["share_quarantined"].value == 1.0
    assert results["contract"].metadata["rows_quarantined"].value == 10  # the run's total

    good = dataclasses.replace(report, batches=report.batches[1:] * 2)
    assert _results(load_facts(home, SPEC, good))["quarantine_threshold"].passed


@pytest.mark.parametrize(("rows", "passes"), [(1499, True), (1600, False), (400, False)])
def test_volume_compares_with_the_median_of_earlier_loads(rows, passes) -> None:
    volume = _results(_facts(latest_rows_in=rows))["volume"]
    assert volume.passed is passes and volume.severity == dg.AssetCheckSeverity.WARN


def test_volume_needs_history_before_it_judges() -> None:
    assert _results(_facts(latest_rows_in=5, previous_rows_in=()))["volume"].passed
    assert not _results(_facts(latest_rows_in=300, previous_rows_in=(1000,)))["volume"].passed


def test_new_columns_are_drift_and_rejections_break_the_schema() -> None:
    results = _results(
        _facts(
            extra_columns=("Afdelingskode",), rejected=("x.csv: missing required column(s) cpr",)
        )
    )
    assert not results["schema_drift"].passed
    assert results["schema_drift"].metadata["new_columns"].value == "Afdelingskode"
    assert not results["schema"].passed
    assert results["schema"].severity == dg.AssetCheckSeverity.ERROR


def test_freshness_follows_the_last_load_not_the_clock_of_the_run(home) -> None:
    import datetime as dt

    from lake.quality import RunRecord, record_run
    from pipelines.freshness import freshness

    now = dt.datetime(2026, 11, 22, 12, tzinfo=dt.UTC)
    specs = [
        dataclasses.replace(spec_by_name(n), quality=QualitySpec(freshness_hours=36))
        for n in ("cpr_persons", "dar_addresses", "sick_leave")
    ]
    for name, hours_ago, status in (
        ("cpr_persons", 50, "loaded"),
        ("dar_addresses", 10, "loaded"),
        ("sick_leave", 1, "rejected"),
    ):
        at = now - dt.timedelta(hours=hours_ago)
        record_run(home, RunRecord(name, "b1", "f.csv", status, 1, 1, 0, "[]", "[]", 1, at, at, ""))
    states = {f.dataset: f for f in freshness(home, specs, now)}
    assert states["cpr_persons"].stale and round(states["cpr_persons"].age_hours) == 50
    assert not states["dar_addresses"].stale
    # A rejected delivery is not a load: the dataset has never loaded, so it is stale.
    assert states["sick_leave"].stale and states["sick_leave"].last_loaded_at is None


def test_scd2_history_columns_are_part_of_silver_schema() -> None:
    # An SCD2 dataset's silver has valid_from/valid_to/is_current besides the contract's
    # columns: the blocking schema check must not fail every load of it.
    spec = dataclasses.replace(spec_by_name("cpr_persons"), load_mode="scd2")
    columns = [*contract_columns(spec.contract), *LINEAGE, "valid_from", "valid_to", "is_current"]
    silver = pl.DataFrame(schema=dict.fromkeys(columns, pl.String))
    results = {r.check_name: r for r in check_results(spec, _facts(), silver)}
    assert results["schema"].passed
    stray = silver.with_columns(pl.lit(None).alias("unexpected"))
    results = {r.check_name: r for r in check_results(spec, _facts(), stray)}
    assert not results["schema"].passed
