"""The failed-check lines of `kommunelake load`'s summary: each says how much failed."""

from __future__ import annotations

from types import SimpleNamespace

import dagster as dg

from pipelines.checks import LoadFacts, check_results, silver_key
from pipelines.cli import _print_summary
from pipelines.specs import spec_by_name


def test_a_failed_quarantine_threshold_says_how_many_rows_failed_and_the_limit(
    home, capsys
) -> None:
    spec = spec_by_name("sick_leave")
    facts = LoadFacts(168, 15, 153, (("start_date", "type:Date", 153),), (), (), True, 168, ())
    evaluations = [
        dg.AssetCheckEvaluation(
            asset_key=silver_key(spec.name),
            check_name=r.check_name,
            passed=r.passed,
            metadata=r.metadata,
            severity=r.severity,
        )
        for r in check_results(spec, facts, None)
    ]
    result = SimpleNamespace(
        run_id="r", success=True, get_asset_check_evaluations=lambda: evaluations
    )

    _print_summary(home, result)

    out = capsys.readouterr().out
    [line] = [line for line in out.splitlines() if "quarantine_threshold" in line]
    # It used to end after the check's name: an operator saw no number at all.
    assert line.split("quarantine_threshold", 1)[1].strip() == (
        "share_quarantined 0.9107, error_above 0.05"
    )
