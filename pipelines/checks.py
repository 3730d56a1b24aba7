"""Asset checks made from a dataset's YAML and contract: what operators see in the UI.

Checks on the load itself (schema, rows_reconcile, contract, unique_keys, schema_drift,
volume) are evaluated inside the dataset's asset from the load report. Reference checks
(values that must exist in another dataset) are separate asset checks that read both silver
tables, so they run after both are loaded. Severities follow the `quality:` block: ERROR
blocks downstream assets in the same run and under automation; WARN only reports.
"""

import datetime as dt
import json
import statistics
from collections.abc import Collection
from dataclasses import dataclass

import dagster as dg
import polars as pl
from dagster import AssetCheckExecutionContext
from deltalake import DeltaTable

from lake.duck import duck_connect, sql_string
from lake.home import Home
from lake.quality import CheckState, record_checks, runs
from lake.tables import SCD2_COLUMNS
from lake.validation import contract_columns
from pipelines.freshness import freshness
from pipelines.ingest import LINEAGE, OPTIONAL_LINEAGE, BatchResult, LoadReport
from pipelines.resources import LakeResource
from pipelines.specs import DatasetSpec, Reference

ERROR, WARN = dg.AssetCheckSeverity.ERROR, dg.AssetCheckSeverity.WARN


def silver_key(name: str) -> dg.AssetKey:
    return dg.AssetKey(["silver", name])


@dataclass(frozen=True)
class LoadFacts:
    """What the checks judge: this run's batches, or the last load when nothing was new."""

    rows_in: int
    rows_valid: int
    rows_quarantined: int
    failures: tuple[tuple[str, str, int], ...]
    extra_columns: tuple[str, ...]
    rejected: tuple[str, ...]
    reconciled: bool
    latest_rows_in: int | None  # rows in of the newest loaded batch
    previous_rows_in: tuple[int, ...]  # rows in of the loads before it, oldest first
    drift_decision: str = "none"
    # Of several files loaded in one run, the one with the largest quarantined share: a file
    # whose every row failed must not pass the threshold because good files came with it.
    worst_file: str | None = None
    worst_share: float = 0.0
    batch_id: str | None = None  # the newest loaded batch the facts describe


def load_facts(home: Home, spec: DatasetSpec, report: LoadReport) -> LoadFacts:
    history = runs(home, spec.name) if report.history is None else report.history
    history = history.filter(pl.col("status") == "loaded")
    loaded = [b for b in report.batches if b.status == "loaded"]
    rejected = tuple(b.message for b in report.rejected)
    if report.open_rejection:
        rejected = (report.open_rejection,)
    if loaded:
        new_ids = {b.batch_id for b in loaded}
        earlier = history.filter(~pl.col("batch_id").is_in(list(new_ids)))
        previous = tuple(earlier["rows_in"].to_list()) + tuple(b.rows_in for b in loaded[:-1])
        return LoadFacts(
            rows_in=sum(b.rows_in for b in loaded),
            rows_valid=sum(b.rows_valid for b in loaded),
            rows_quarantined=sum(b.rows_quarantined for b in loaded),
            failures=tuple(f for b in loaded for f in b.failures),
            extra_columns=tuple(sorted({c for b in loaded for c in b.extra_columns})),
            rejected=rejected,
            reconciled=all(b.rows_in == b.rows_valid + b.rows_quarantined for b in loaded),
            latest_rows_in=loaded[-1].rows_in,
            previous_rows_in=previous,
            drift_decision=loaded[-1].drift_decision,
            batch_id=loaded[-1].batch_id,
            **_worst_batch(loaded),
        )
    if not history.height:
        return LoadFacts(0, 0, 0, (), (), rejected, True, None, ())
    last = history.row(-1, named=True)
    return LoadFacts(
        rows_in=last["rows_in"],
        rows_valid=last["rows_valid"],
        rows_quarantined=last["rows_quarantined"],
        failures=tuple(
            (f["column"], f["check"], f["rows"]) for f in json.loads(last["failed_checks"])
        ),
        extra_columns=tuple(json.loads(last["extra_columns"])),
        rejected=rejected,
        reconciled=last["rows_in"] == last["rows_valid"] + last["rows_quarantined"],
        latest_rows_in=last["rows_in"],
        previous_rows_in=tuple(history["rows_in"].to_list()[:-1]),
        drift_decision=last.get("drift_decision") or "none",
        batch_id=last["batch_id"],
    )


def _worst_batch(loaded: list[BatchResult]) -> dict[str, str | float]:
    if len(loaded) < 2:
        return {}
    worst = max(loaded, key=_share)
    return {"worst_file": worst.source_file, "worst_share": _share(worst)}


def _share(batch: BatchResult) -> float:
    return batch.rows_quarantined / batch.rows_in if batch.rows_in else 0.0


def check_specs(spec: DatasetSpec) -> list[dg.AssetCheckSpec]:
    key = silver_key(spec.name)
    q = spec.quality
    specs = [
        dg.AssetCheckSpec(
            "schema",
            asset=key,
            blocking=True,
            description=(
                "Every file has the contract's columns (else it is rejected whole) and silver's "
                "columns match the contract. Blocks downstream."
            ),
        ),
        dg.AssetCheckSpec(
            "rows_reconcile",
            asset=key,
            blocking=True,
            description=(
                "For every batch: rows in = rows valid + rows quarantined. Blocks downstream."
            ),
        ),
        dg.AssetCheckSpec(
            "contract",
            asset=key,
            description=(
                "Rows that failed the contract went to quarantine (counts per column and "
                f"check). Warns above {q.quarantine_warn:.0%} of rows; does not block."
            ),
        ),
        # Blocking checks only ever fail with ERROR: Dagster's automation treats any failed
        # blocking check as blocking, so a warning level must live in a non-blocking check.
        dg.AssetCheckSpec(
            "quarantine_threshold",
            asset=key,
            blocking=True,
            description=(
                f"At most {q.quarantine_error:.0%} of rows quarantined; above that the load "
                "is suspect as a whole and downstream is blocked."
            ),
        ),
        dg.AssetCheckSpec(
            "schema_drift",
            asset=key,
            description=(
                "The file has columns the contract does not know (they are not loaded). Warns."
            ),
        ),
        dg.AssetCheckSpec(
            "volume",
            asset=key,
            description=(
                f"Rows in within ±{q.volume_tolerance:.0%} of the median of earlier loads. Warns."
            ),
        ),
    ]
    if spec.silver_keys:
        specs.append(
            dg.AssetCheckSpec(
                "unique_keys",
                asset=key,
                blocking=True,
                description=(
                    f"Silver has one row per key ({', '.join(spec.silver_keys)}). "
                    "Blocks downstream."
                ),
            )
        )
    return specs


def check_results(
    spec: DatasetSpec,
    facts: LoadFacts,
    silver: pl.DataFrame | None,
    evolved: Collection[str] = (),
) -> list[dg.AssetCheckResult]:
    """`evolved`: silver's columns that loads added under `schema_drift: evolve`, which the
    table keeps after the policy went back to ignore or freeze (`ingest.evolved_columns`)."""
    q = spec.quality
    expected = [*contract_columns(spec.contract), *LINEAGE]
    if spec.load_mode == "scd2":
        expected += SCD2_COLUMNS
    # Under schema_drift: evolve, silver also holds the columns added from new headers.
    schema_ok = silver is None or (
        set(expected) <= set(silver.columns)
        and (
            spec.schema_drift == "evolve"
            or set(silver.columns) <= {*expected, *OPTIONAL_LINEAGE, *evolved}
        )
    )
    share = facts.rows_quarantined / facts.rows_in if facts.rows_in else 0.0
    results = [
        dg.AssetCheckResult(
            check_name="schema",
            passed=schema_ok and not facts.rejected,
            severity=ERROR,
            metadata={
                "rejected_files": dg.MetadataValue.md(
                    "\n".join(f"- {m}" for m in facts.rejected) or "none"
                ),
                "silver_columns_match_contract": schema_ok,
            },
        ),
        dg.AssetCheckResult(
            check_name="rows_reconcile",
            passed=facts.reconciled,
            severity=ERROR,
            metadata={
                "rows_in": facts.rows_in,
                "rows_valid": facts.rows_valid,
                "rows_quarantined": facts.rows_quarantined,
            },
        ),
        dg.AssetCheckResult(
            check_name="contract",
            passed=share <= q.quarantine_warn,
            severity=WARN,
            metadata={
                "rows_quarantined": facts.rows_quarantined,
                "share_quarantined": round(share, 4),
                "failures": dg.MetadataValue.md(_failure_table(facts.failures)),
                "where": f"quality.quarantine where dataset = '{spec.name}'",
            },
        ),
        _threshold(facts, share, q.quarantine_error),
        dg.AssetCheckResult(
            check_name="schema_drift",
            passed=not facts.extra_columns,
            severity=WARN,
            metadata={
                "new_columns": ", ".join(facts.extra_columns) or "none",
                "decision": facts.drift_decision,
                "policy": spec.schema_drift,
            },
        ),
        _volume(facts, q.volume_tolerance),
    ]
    if spec.silver_keys:
        duplicates = (
            0 if silver is None else silver.height - silver.select(spec.silver_keys).n_unique()
        )
        results.append(
            dg.AssetCheckResult(
                check_name="unique_keys",
                passed=duplicates == 0,
                severity=ERROR,
                metadata={"duplicate_rows": duplicates},
            )
        )
    return results


def _threshold(facts: LoadFacts, share: float, error_above: float) -> dg.AssetCheckResult:
    """Judged per file: the load's share, or a worse file's among several loaded at once."""
    metadata: dict[str, str | float] = {"share_quarantined": round(share, 4)}
    if facts.worst_file is not None and facts.worst_share > share:
        share = facts.worst_share
        metadata = {"share_quarantined": round(share, 4), "file": facts.worst_file}
    return dg.AssetCheckResult(
        check_name="quarantine_threshold",
        passed=share <= error_above,
        severity=ERROR,
        metadata={**metadata, "error_above": error_above},
    )


def _volume(facts: LoadFacts, tolerance: float) -> dg.AssetCheckResult:
    if facts.latest_rows_in is None or not facts.previous_rows_in:
        return dg.AssetCheckResult(
            check_name="volume",
            passed=True,
            severity=WARN,
            metadata={"note": "no earlier load: nothing to compare with yet"},
        )
    median = statistics.median(facts.previous_rows_in[-10:])
    deviation = abs(facts.latest_rows_in - median) / median if median else 0.0
    return dg.AssetCheckResult(
        check_name="volume",
        passed=deviation <= tolerance,
        severity=WARN,
        metadata={
            "rows_in": facts.latest_rows_in,
            "median_of_earlier_loads": median,
            "deviation": round(deviation, 3),
            "tolerance": tolerance,
        },
    )


def _failure_table(failures: tuple[tuple[str, str, int], ...]) -> str:
    if not failures:
        return "no failures"
    lines = ["| column | check | rows |", "|---|---|---|"]
    lines += [f"| {c} | {k} | {n} |" for c, k, n in failures[:20]]
    return "\n".join(lines)


# --- references between datasets --------------------------------------------------------------


def reference_violations(
    home: Home, spec: DatasetSpec, ref: Reference
) -> tuple[int, int, list[int]]:
    """(rows whose value is missing in the referenced dataset, rows checked, first source rows)."""
    this = sql_string(home.table_uri("silver", spec.name))
    other = sql_string(home.table_uri("silver", ref.dataset))
    con = duck_connect(lake_uri=home.lake_root)
    try:
        missing, checked, rows = con.execute(f"""
            SELECT count(*) FILTER (WHERE o.k IS NULL),
                   count(*),
                   list(t._source_row ORDER BY t._source_row) FILTER (WHERE o.k IS NULL)
            FROM delta_scan({this}) t
            LEFT JOIN (SELECT DISTINCT "{ref.key}" AS k FROM delta_scan({other})) o
              ON t."{ref.column}" = o.k
            WHERE t."{ref.column}" IS NOT NULL""").fetchone()
    finally:
        con.close()
    return missing, checked, (rows or [])[:10]


def reference_check(spec: DatasetSpec, ref: Reference) -> dg.AssetChecksDefinition:
    name = f"references_{ref.dataset}"

    @dg.asset_check(
        asset=silver_key(spec.name),
        name=name,
        additional_deps=[silver_key(ref.dataset)],
        blocking=ref.severity == "error",
        description=(
            f"Every {spec.name}.{ref.column} exists as {ref.dataset}.{ref.key} "
            f"({'blocks downstream' if ref.severity == 'error' else 'warns'})."
        ),
    )
    def _check(context: AssetCheckExecutionContext, lake: LakeResource) -> dg.AssetCheckResult:
        home = lake.lake_home()
        other = home.table_uri("silver", ref.dataset)
        loaded = DeltaTable.is_deltatable(other, storage_options=dict(home.storage_options()))
        # Not loaded yet (a first load of this dataset alone): nothing can match, and saying
        # so beats DuckDB's "Invalid table location".
        missing, checked, rows = reference_violations(home, spec, ref) if loaded else (0, 0, [])
        # Only counts and source row numbers: the values themselves may be identifiers.
        result = dg.AssetCheckResult(
            check_name=name,
            passed=loaded and missing == 0,
            severity=ERROR if ref.severity == "error" else WARN,
            metadata={
                "rows_without_match": missing,
                "rows_checked": checked,
                "first_source_rows": ", ".join(map(str, rows)) or "none",
                "column": ref.column,
                "references": f"silver.{ref.dataset}.{ref.key}"
                + ("" if loaded else " (not loaded yet)"),
            },
            description=None
            if loaded
            else (
                f"silver.{ref.dataset} has not been loaded yet, so {spec.name}.{ref.column} "
                f"cannot be checked against it. Load it (`kommunelake load --select "
                f"key:silver/{ref.dataset}`); the check runs again with the next load of "
                f"{spec.name}."
            ),
        )
        latest = runs(home, spec.name).filter(pl.col("status") == "loaded").tail(1)
        batch = latest["batch_id"][0] if latest.height else None
        blocking = {name} if ref.severity == "error" else set()
        record(
            home,
            spec.name,
            [result],
            blocking,
            batch_id=batch,
            run_id=context.run.run_id,
            only_changes=True,
        )
        return result

    return _check


def reference_checks(spec: DatasetSpec) -> list[dg.AssetChecksDefinition]:
    return [reference_check(spec, ref) for ref in spec.quality.references]


# --- history in the lake --------------------------------------------------------------------

_AFFECTED = ("rows_quarantined", "duplicate_rows", "rows_without_match")
_DETAIL_KEYS = (
    "share_quarantined",
    "new_columns",
    "deviation",
    "first_source_rows",
    "references",
    "error_above",
    "file",
    "age_hours",
    "expected_within_hours",
)


def record(
    home: Home,
    dataset: str,
    results: list[dg.AssetCheckResult],
    blocking: set[str],
    *,
    batch_id: str | None,
    run_id: str | None,
    only_changes: bool,
) -> None:
    """Keep check outcomes in quality/check_history, where the serving layer reads them even
    when a blocking failure stopped everything downstream (the serving rebuild included)."""
    now = dt.datetime.now(dt.UTC)
    states = []
    for result in results:
        meta = {k: getattr(v, "value", v) for k, v in (result.metadata or {}).items()}
        affected = next((int(meta[k]) for k in _AFFECTED if k in meta), None)
        details = "; ".join(f"{k} {meta[k]}" for k in _DETAIL_KEYS if k in meta)
        if meta.get("rejected_files") not in (None, "none"):
            details = f"rejected: {meta['rejected_files']}"
        states.append(
            CheckState(
                dataset=dataset,
                check=result.check_name or "",
                passed=result.passed,
                severity=result.severity.value,
                blocking=result.check_name in blocking,
                rows_affected=affected,
                details=details,
                batch_id=batch_id,
                evaluated_at=now,
                dagster_run_id=run_id,
            )
        )
    record_checks(home, states, only_changes=only_changes)


# --- freshness --------------------------------------------------------------------------------


def freshness_check(spec: DatasetSpec) -> dg.AssetChecksDefinition:
    """Stale when the newest *load* (not the newest materialization: a run with nothing new
    materializes too) is older than the YAML's freshness_hours. Runs on a schedule."""
    limit = spec.quality.freshness_hours

    @dg.asset_check(
        asset=silver_key(spec.name),
        name="freshness",
        description=f"A new delivery has loaded within the last {limit:g} hours. Warns.",
    )
    def _check(context: AssetCheckExecutionContext, lake: LakeResource) -> dg.AssetCheckResult:
        home = lake.lake_home()
        [state] = freshness(home, [spec])
        result = dg.AssetCheckResult(
            check_name="freshness",
            passed=not state.stale,
            severity=WARN,
            metadata={
                "last_loaded_at": state.last_loaded_at.isoformat()
                if state.last_loaded_at
                else "never",
                "age_hours": round(state.age_hours, 1) if state.age_hours is not None else -1,
                "expected_within_hours": limit,
            },
        )
        record(
            home,
            spec.name,
            [result],
            set(),
            batch_id=None,
            run_id=context.run.run_id,
            only_changes=True,
        )
        return result

    return _check


def freshness_checks(specs: list[DatasetSpec]) -> list[dg.AssetChecksDefinition]:
    return [freshness_check(s) for s in specs if s.quality.freshness_hours is not None]
