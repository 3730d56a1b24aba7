"""The notification sensor: observe, diff against the cursor, send, remember.

Thin on purpose: what counts as an incident and what to say is decided in incidents.py and
messages.py. The sensor never raises for a source it cannot read or a receiver that is down;
it logs, keeps what it knows in the cursor and tries again on the next tick.

No `from __future__ import annotations` here: Dagster reads the resource parameter's type
hint (`lake: LakeResource`) at decoration time.
"""

import datetime as dt
import logging
import time
from collections.abc import Callable, Sequence

import dagster as dg

from pipelines.notify.cursor import Cursor, load_cursor
from pipelines.notify.incidents import Incident, Observations, diff
from pipelines.notify.messages import OPENED, RESOLVED, render
from pipelines.notify.observe import (
    observe_checks,
    observe_freshness,
    observe_runs,
    owners,
    retired_incidents,
)
from pipelines.notify.senders import Pending, channels_for, deliver
from pipelines.notify.settings import NotifySettings
from pipelines.resources import LakeResource
from pipelines.specs import DatasetSpec, usable_specs

SENSOR_NAME = "quality_notifications"


def notification_sensor(
    *,
    name: str = SENSOR_NAME,
    specs: Callable[[], Sequence[DatasetSpec]] = usable_specs,
    clock: Callable[[], float] = time.time,
    minimum_interval_seconds: int = 60,
) -> dg.SensorDefinition:
    """The sensor; `specs` and `clock` are parameters so tests can age datasets."""

    @dg.sensor(
        name=name,
        minimum_interval_seconds=minimum_interval_seconds,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description="Tells each dataset's owner (the `contact` in its YAML) when a blocking "
        "check fails, a run fails or the dataset goes stale, once per incident, and again "
        "when it is resolved. Webhook and/or SMTP, Danish or Norwegian: see .env.example.",
    )
    def _notify(context: dg.SensorEvaluationContext, lake: LakeResource) -> dg.SensorResult:
        now = dt.datetime.fromtimestamp(clock(), dt.UTC)
        return evaluate(context, lake, list(specs()), now)

    return _notify


quality_notifications = notification_sensor()


def evaluate(
    context: dg.SensorEvaluationContext,
    lake: LakeResource,
    specs: Sequence[DatasetSpec],
    now: dt.datetime,
) -> dg.SensorResult:
    log = context.log
    settings = NotifySettings.from_env()
    for problem in settings.problems:
        log.warning(problem)
    cursor, problem = load_cursor(context.cursor)
    if problem:
        log.warning(problem)

    observed, runs_after = _observe(context, lake, specs, cursor, now, log)
    changes = diff(cursor.open, cursor.seen_runs, observed)
    for incident in changes.retired:
        log.info("closed without a message, no longer defined: %s", incident.key)

    new: list[tuple[Incident, str]] = [
        *((i, OPENED) for i in changes.opened),
        *((i, OPENED) for i in changes.runs),
        *((i, RESOLVED) for i in changes.resolved),
    ]
    pending = list(cursor.outbox)
    for incident, status in new:
        message = render(incident, status, settings.language, settings.ui_url, now)
        log.info("%s: %s", status, message.title)
        channels = channels_for(message, settings, log)
        if channels:
            pending.append(Pending(message, channels))
    outcome = deliver(pending, settings, log)

    next_cursor = Cursor(
        open=changes.open,
        seen_runs=changes.seen_runs,
        runs_after=runs_after,
        outbox=outcome.remaining,
    )
    summary = (
        f"{len(changes.opened)} opened, {len(changes.runs)} failed runs, "
        f"{len(changes.resolved)} resolved, {len(changes.retired)} no longer defined, "
        f"{len(changes.open)} open; "
        f"{outcome.delivered} delivered, {len(outcome.remaining)} waiting for retry"
    )
    if not settings.configured and changes.messages:
        summary += "; no webhook or SMTP configured"
    if outcome.delivered == 0:
        return dg.SensorResult(
            skip_reason=dg.SkipReason(f"nothing sent: {summary}"), cursor=next_cursor.dumps()
        )
    log.info(summary)
    return dg.SensorResult(cursor=next_cursor.dumps())


def _observe(
    context: dg.SensorEvaluationContext,
    lake: LakeResource,
    specs: Sequence[DatasetSpec],
    cursor: Cursor,
    now: dt.datetime,
    log: logging.Logger,
) -> tuple[Observations, float | None]:
    """Each source on its own: one that fails leaves its incidents as they were."""
    graph = _asset_graph(context)
    who = owners(specs, graph)
    failing: list[Incident] = []
    healthy: set[str] = set()
    runs: list[Incident] = []
    checked: list[str] = []
    runs_after = cursor.runs_after
    try:
        found, ok = observe_checks(context.instance, graph, who)
        failing += found
        healthy |= ok
    except Exception as error:  # a storage hiccup must not stop the other sources
        log.exception("could not read asset check evaluations (%s)", type(error).__name__)
    try:
        runs, checked, runs_after = observe_runs(
            context.instance, graph, who, cursor.runs_after, cursor.seen_runs, now
        )
    except Exception as error:
        log.exception("could not read failed runs (%s)", type(error).__name__)
    try:
        found, ok = observe_freshness(lake.lake_home(), specs, who, now)
        failing += found
        healthy |= ok
    except Exception as error:
        log.exception("could not read freshness (%s)", type(error).__name__)
    observed = Observations(
        failing=tuple(failing),
        healthy=frozenset(healthy),
        failed_runs=tuple(runs),
        runs_checked=tuple(checked),
        retired=retired_incidents(cursor.open, graph, specs),
    )
    return observed, runs_after


def _asset_graph(context: dg.SensorEvaluationContext):
    if context.repository_def is not None:
        return context.repository_def.asset_graph
    # Invoked without its code location (a bare test or script): build it. Imported here,
    # because pipelines.definitions imports this module to register the sensor.
    from pipelines.definitions import build_definitions

    return build_definitions().resolve_asset_graph()
