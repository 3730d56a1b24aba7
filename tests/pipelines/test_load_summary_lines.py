"""The failed-check lines of `kommunelake load`'s summary: each says how much failed."""

from __future__ import annotations

from types import SimpleNamespace

import dagster as dg
import httpx

from connectors.http.errors import HttpError
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


def test_a_failed_step_shows_its_own_error_not_the_innermost_cause(home, capsys) -> None:
    # An API dataset whose server is down raises HttpError (what, where, what to do) from
    # httpx's ConnectError from the OSError: the summary used to print only the last,
    # "[Errno 111] Connection refused", which names neither the source nor a remedy.
    @dg.asset(key=silver_key("road_work_orders"))
    def _load() -> None:
        try:
            try:
                raise ConnectionRefusedError(111, "Connection refused")
            except OSError as os_error:
                raise httpx.ConnectError(str(os_error)) from os_error
        except httpx.ConnectError as exc:
            raise HttpError(
                "GET",
                "http://127.0.0.1:9/work-orders",
                status=None,
                attempts=5,
                reason=f"no complete response (ConnectError: {exc})",
                hint="Check the network path to 127.0.0.1 (DNS, proxy, firewall)",
                transient=True,
            ) from exc

    with dg.DagsterInstance.ephemeral() as instance:
        result = dg.materialize([_load], instance=instance, raise_on_error=False)

    _print_summary(home, result)

    err = capsys.readouterr().err
    [line] = [line for line in err.splitlines() if line.startswith("FAILED ")]
    assert line == (
        "FAILED silver__road_work_orders: GET http://127.0.0.1:9/work-orders: no complete "
        "response (ConnectError: [Errno 111] Connection refused) (after 5 attempts). "
        "Check the network path to 127.0.0.1 (DNS, proxy, firewall)"
    )


def test_findings_stay_in_columns_when_a_name_is_longer_than_usual(home, capsys) -> None:
    # The demo's gold/meal_delivery_reconciliation pushed its numbers two places right.
    evaluations = [
        dg.AssetCheckEvaluation(
            asset_key=dg.AssetKey(key),
            check_name=check,
            passed=False,
            metadata={"rows_without_match": 11},
            severity=dg.AssetCheckSeverity.WARN,
        )
        for key, check in (
            (["silver", "sick_leave"], "contract"),
            (["gold", "meal_delivery_reconciliation"], "entries_match_registers_everywhere"),
        )
    ]
    result = SimpleNamespace(
        run_id="r", success=True, get_asset_check_evaluations=lambda: evaluations
    )

    _print_summary(home, result)

    lines = [line for line in capsys.readouterr().out.splitlines() if "rows_without_match" in line]
    assert len(lines) == 2
    assert len({line.index("rows_without_match") for line in lines}) == 1
