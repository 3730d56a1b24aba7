"""Observations from the Dagster instance, the code location's asset graph and the home.

The only module here that reads Dagster storage. It turns what it finds into `Incident`s and
healthy keys; deciding what to say is left to `incidents.diff`.

- Checks: the latest completed evaluation of every asset check in the code location. Whether
  a check blocks comes from the evaluation (what the run enforced), else from its spec; no
  check names are hard-coded.
- Runs: failed runs updated since the cursor. A step that failed only because a blocking
  check failed is left out: the check_failed incident already tells the owner.
- Freshness: `pipelines.freshness.freshness` on the home's quality.runs table.
- Retired: open incidents whose check or dataset the code location no longer has.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import dagster as dg

from lake.home import Home
from pipelines.freshness import freshness
from pipelines.notify.evidence import counts_from_metadata, files_from_metadata
from pipelines.notify.incidents import (
    CHECK_FAILED,
    RUN_FAILED,
    STALE,
    Incident,
    incident_key,
)
from pipelines.specs import DatasetSpec

if TYPE_CHECKING:  # internal Dagster types, for annotations only
    from dagster._core.definitions.assets.graph.asset_graph import AssetGraph
    from dagster._core.storage.asset_check_execution_record import AssetCheckExecutionRecord

# Dagster fails the step of an asset whose blocking check failed with this error.
BLOCKING_CHECK_ERROR = "DagsterAssetCheckFailedError"
_COMPLETED = {"SUCCEEDED", "FAILED"}
HISTORY = 20  # evaluations looked back through to find when a failure started
RUN_LOOKBACK = dt.timedelta(hours=24)  # first tick: failed runs this recent are reported
RUN_OVERLAP = dt.timedelta(minutes=5)  # re-read this much before the cursor; ids dedupe
MAX_RUNS = 100  # failed runs read per tick


@dataclass(frozen=True)
class Owner:
    dataset: str
    recipients: tuple[str, ...]


def silver_path(dataset: str) -> str:
    return f"silver/{dataset}"


def owners(specs: Sequence[DatasetSpec], graph: AssetGraph) -> dict[str, Owner]:
    """Asset path → who to tell: the dataset's YAML `contact`, else any e-mail owner."""
    found: dict[str, Owner] = {}
    for node in graph.asset_nodes:
        path = node.key.to_user_string()
        emails = tuple(o for o in node.owners if "@" in o and not o.startswith("team:"))
        found[path] = Owner(path, emails)
    for spec in specs:
        path = silver_path(spec.name)
        fallback = found.get(path, Owner(spec.name, ())).recipients
        found[path] = Owner(spec.name, (spec.contact,) if spec.contact else fallback)
    return found


def observe_checks(
    instance: dg.DagsterInstance, graph: AssetGraph, who: Mapping[str, Owner]
) -> tuple[list[Incident], set[str]]:
    keys = sorted(graph.asset_check_keys, key=lambda k: (k.asset_key.to_user_string(), k.name))
    if not keys:
        return [], set()
    storage = instance.event_log_storage
    latest = storage.get_latest_asset_check_execution_by_key(keys)
    evaluations = {}
    for key in keys:
        record = latest.get(key)
        if record is not None and record.status.value not in _COMPLETED:
            # Planned (running now, or skipped when its asset failed): judge by the last
            # evaluation that finished instead.
            record = _last_completed(instance, key)
        if record is None or record.event is None:
            continue  # never evaluated: unknown
        evaluation = record.event.asset_check_evaluation
        if evaluation is not None:
            evaluations[key] = (evaluation, record)

    failing_by_asset: dict[dg.AssetKey, list[tuple[bool, str, str]]] = defaultdict(list)
    for key, (evaluation, _) in evaluations.items():
        if not evaluation.passed:
            severity = evaluation.severity.value
            failing_by_asset[key.asset_key].append((severity != "ERROR", key.name, severity))

    failing, healthy = [], set()
    for key, (evaluation, record) in evaluations.items():
        asset = key.asset_key.to_user_string()
        ikey = incident_key(CHECK_FAILED, asset, key.name)
        blocking = evaluation.blocking
        if blocking is None:
            blocking = graph.get_check_spec(key).blocking
        if evaluation.passed or evaluation.severity != dg.AssetCheckSeverity.ERROR or not blocking:
            healthy.add(ikey)
            continue
        owner = who.get(asset, Owner(asset, ()))
        others = sorted(failing_by_asset[key.asset_key])  # ERROR first, then by name
        failing.append(
            Incident(
                kind=CHECK_FAILED,
                asset=asset,
                check=key.name,
                dataset=owner.dataset,
                severity="ERROR",
                counts=counts_from_metadata(evaluation.metadata),
                failing_checks=tuple(f"{name} ({sev})" for _, name, sev in others),
                files=files_from_metadata(evaluation.metadata),
                since=_iso(_failing_since(instance, key, record.event.timestamp)),
                recipients=owner.recipients,
            )
        )
    return failing, healthy


def _last_completed(
    instance: dg.DagsterInstance, key: dg.AssetCheckKey
) -> AssetCheckExecutionRecord | None:
    history = instance.event_log_storage.get_asset_check_execution_history(key, limit=HISTORY)
    return next((r for r in history if r.status.value in _COMPLETED), None)


def _failing_since(instance: dg.DagsterInstance, key: dg.AssetCheckKey, latest: float) -> float:
    """When the current run of failed evaluations started (newest first in history)."""
    since = latest
    for record in instance.event_log_storage.get_asset_check_execution_history(key, HISTORY):
        status = record.status.value
        if status == "SUCCEEDED":
            break
        if status == "FAILED" and record.event is not None:
            since = min(since, record.event.timestamp)
    return since


def observe_runs(
    instance: dg.DagsterInstance,
    graph: AssetGraph,
    who: Mapping[str, Owner],
    runs_after: float | None,
    seen: Sequence[str],
    now: dt.datetime,
) -> tuple[list[Incident], list[str], float | None]:
    """Incidents for failed runs not seen before, every failed run id read, newest time."""
    start = (
        dt.datetime.fromtimestamp(runs_after, dt.UTC) - RUN_OVERLAP
        if runs_after is not None
        else now - RUN_LOOKBACK
    )
    records = instance.get_run_records(
        filters=dg.RunsFilter(statuses=[dg.DagsterRunStatus.FAILURE], updated_after=start),
        limit=MAX_RUNS,
    )
    step_assets = _step_assets(graph)
    incidents, checked, newest = [], [], runs_after
    already = set(seen)
    for record in sorted(records, key=lambda r: r.update_timestamp):
        updated = record.update_timestamp.timestamp()
        newest = updated if newest is None else max(newest, updated)
        run = record.dagster_run
        checked.append(run.run_id)
        if run.run_id in already:
            continue
        failed_at = record.end_time or updated
        incident = _run_incident(instance, run.run_id, failed_at, step_assets, who)
        if incident is not None:
            incidents.append(incident)
    return incidents, checked, newest


def _step_assets(graph: AssetGraph) -> dict[str, tuple[str, ...]]:
    """Step (op) name → the asset paths it materializes or checks."""
    mapping = {}
    for assets_def in graph.assets_defs:
        if not assets_def.is_executable:
            continue
        keys = list(assets_def.keys) or [k.asset_key for k in assets_def.check_keys]
        mapping[assets_def.node_def.name] = tuple(sorted({k.to_user_string() for k in keys}))
    return mapping


def _run_incident(
    instance: dg.DagsterInstance,
    run_id: str,
    failed_at: float,
    step_assets: Mapping[str, tuple[str, ...]],
    who: Mapping[str, Owner],
) -> Incident | None:
    failures = instance.get_records_for_run(
        run_id, of_type=dg.DagsterEventType.STEP_FAILURE
    ).records
    steps, errors, assets = [], [], []
    for record in failures:
        entry = record.event_log_entry
        error = getattr(entry.dagster_event.event_specific_data, "error", None)
        cls_name = error.cls_name if error is not None else None
        if cls_name == BLOCKING_CHECK_ERROR:
            continue  # a blocking check failed: its check_failed incident covers this step
        step = entry.step_key or "?"
        steps.append(step)
        if cls_name:
            errors.append(cls_name)
        assets += step_assets.get(step.split("[")[0], ())
    if failures and not steps:
        return None  # every failed step was a failed blocking check
    assets = list(dict.fromkeys(assets))
    first = assets[0] if assets else ""
    recipients = tuple(
        dict.fromkeys(r for a in assets for r in who.get(a, Owner(a, ())).recipients)
    )
    return Incident(
        kind=RUN_FAILED,
        asset=first,
        check=run_id,
        dataset=who[first].dataset if first in who else first,
        severity="ERROR",
        counts={"failed_steps": len(dict.fromkeys(steps))},
        steps=tuple(dict.fromkeys(steps)),
        assets=tuple(assets),
        errors=tuple(dict.fromkeys(errors)),
        since=_iso(failed_at),
        recipients=recipients,
        run_id=run_id,
    )


def retired_incidents(
    open_incidents: Mapping[str, Incident], graph: AssetGraph, specs: Sequence[DatasetSpec]
) -> frozenset[str]:
    """Keys of open incidents nothing will evaluate again: a check_failed incident whose
    check is not in the code location, a stale one whose dataset is neither an asset nor a
    spec (its YAML was removed). Left open, they would stay open for good."""
    checks = {(k.asset_key.to_user_string(), k.name) for k in graph.asset_check_keys}
    assets = {node.key.to_user_string() for node in graph.asset_nodes}
    assets |= {silver_path(spec.name) for spec in specs}
    return frozenset(
        key
        for key, incident in open_incidents.items()
        if (incident.kind == CHECK_FAILED and (incident.asset, incident.check) not in checks)
        or (incident.kind == STALE and incident.asset not in assets)
    )


def observe_freshness(
    home: Home, specs: Sequence[DatasetSpec], who: Mapping[str, Owner], now: dt.datetime
) -> tuple[list[Incident], set[str]]:
    """Stale datasets. One never loaded is unknown, not stale: its failed checks or runs
    already say why, and a home that has just been set up should not page everyone."""
    failing, healthy = [], set()
    for row in freshness(home, list(specs), now):
        asset = silver_path(row.dataset)
        key = incident_key(STALE, asset)
        if row.expected_within_hours is None or (row.last_loaded_at and not row.stale):
            healthy.add(key)
            continue
        if row.last_loaded_at is None or row.age_hours is None:
            continue
        limit = row.expected_within_hours
        owner = who.get(asset, Owner(row.dataset, ()))
        failing.append(
            Incident(
                kind=STALE,
                asset=asset,
                dataset=row.dataset,
                severity="WARN",
                counts={"age_hours": round(row.age_hours, 1), "freshness_hours": limit},
                since=(row.last_loaded_at + dt.timedelta(hours=limit)).isoformat(),
                recipients=owner.recipients,
            )
        )
    return failing, healthy


def _iso(timestamp: float) -> str:
    return dt.datetime.fromtimestamp(timestamp, dt.UTC).isoformat(timespec="seconds")
