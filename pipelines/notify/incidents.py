"""Incidents: what is wrong now, compared with what the owners were already told.

Pure functions over plain data. An incident is keyed by (kind, asset, check):

- check_failed  the latest evaluation of a blocking check failed with ERROR severity
- stale         a dataset's newest load is older than its `freshness_hours`
- run_failed    a run failed; a one-off, keyed by its run id, told once

check_failed and stale incidents stay open while the observation holds: the owner hears
when it opens and when it clears, not on every run in between. One whose check or dataset
the code location no longer has (its YAML was removed) is closed without a message: nothing
will ever evaluate it again, and "works again" would not be true.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

CHECK_FAILED = "check_failed"
RUN_FAILED = "run_failed"
STALE = "stale"
KINDS = (CHECK_FAILED, RUN_FAILED, STALE)
MAX_SEEN_RUNS = 500  # run ids remembered for dedup; far more than fail within the overlap


def incident_key(kind: str, asset: str, check: str = "") -> str:
    return f"{kind}|{asset}|{check}"


@dataclass(frozen=True)
class Incident:
    kind: str
    asset: str  # "silver/cpr_persons"; "" for a run that failed outside any asset
    check: str = ""  # check name (check_failed), run id (run_failed), "" (stale)
    dataset: str = ""  # the dataset name, or the asset path when it is not a dataset
    severity: str = "ERROR"
    counts: Mapping[str, int | float] = field(default_factory=dict)
    failing_checks: tuple[str, ...] = ()  # e.g. "schema (ERROR)", worst first
    files: tuple[str, ...] = ()
    steps: tuple[str, ...] = ()  # run_failed: failed steps
    assets: tuple[str, ...] = ()  # run_failed: every asset whose step failed
    errors: tuple[str, ...] = ()  # run_failed: exception class names, never their messages
    since: str | None = None  # ISO 8601 UTC: when the failure started
    recipients: tuple[str, ...] = ()  # e-mail addresses of the owners
    run_id: str = ""

    @property
    def key(self) -> str:
        return incident_key(self.kind, self.asset, self.check)

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "asset": self.asset,
            "check": self.check,
            "dataset": self.dataset,
            "severity": self.severity,
            "counts": dict(self.counts),
            "failing_checks": list(self.failing_checks),
            "files": list(self.files),
            "steps": list(self.steps),
            "assets": list(self.assets),
            "errors": list(self.errors),
            "since": self.since,
            "recipients": list(self.recipients),
            "run_id": self.run_id,
        }

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> Incident:
        tuples = ("failing_checks", "files", "steps", "assets", "errors", "recipients")
        known = {k: v for k, v in raw.items() if k in cls.__dataclass_fields__}
        for name in tuples:
            known[name] = tuple(known.get(name) or ())
        known["counts"] = dict(known.get("counts") or {})
        return cls(**known)


@dataclass(frozen=True)
class Observations:
    """What the sensor saw on this tick.

    A key in neither `failing` nor `healthy` is unknown (a check still running or skipped, a
    dataset never loaded, a source that could not be read): its incident stays as it was.
    """

    failing: tuple[Incident, ...] = ()  # check_failed and stale incidents holding now
    healthy: frozenset[str] = frozenset()  # incident keys seen passing / fresh now
    failed_runs: tuple[Incident, ...] = ()  # run_failed incidents, one per failed run
    runs_checked: tuple[str, ...] = ()  # every failed run id looked at, incident or not
    retired: frozenset[str] = frozenset()  # incident keys of checks/datasets no longer defined


@dataclass(frozen=True)
class Changes:
    opened: tuple[Incident, ...]  # tell the owner: it broke
    resolved: tuple[Incident, ...]  # tell the owner: it works again
    runs: tuple[Incident, ...]  # tell the owner: this run failed
    open: dict[str, Incident]  # the open set after this tick
    retired: tuple[Incident, ...]  # closed silently: their check or dataset is gone
    seen_runs: tuple[str, ...]  # run ids never to report again
    still_open: int  # open before and after: nothing to say

    @property
    def messages(self) -> int:
        return len(self.opened) + len(self.resolved) + len(self.runs)


def diff(
    open_incidents: Mapping[str, Incident],
    seen_runs: Sequence[str],
    observed: Observations,
) -> Changes:
    """New open set and what to say, given what was open and what holds now."""
    failing = {i.key: i for i in observed.failing}
    opened = tuple(i for key, i in failing.items() if key not in open_incidents)
    resolved = tuple(
        i for key, i in open_incidents.items() if key in observed.healthy and key not in failing
    )
    retired = tuple(
        i
        for key, i in open_incidents.items()
        if key in observed.retired and key not in failing and key not in observed.healthy
    )
    closed = {i.key for i in (*resolved, *retired)}
    # Still-open incidents keep what they were opened with (their `since`, the counts the
    # owner was told); a later tick does not re-announce changed counts.
    new_open = {k: i for k, i in open_incidents.items() if k not in closed}
    new_open.update({i.key: i for i in opened})

    seen = set(seen_runs)
    runs = []
    for incident in observed.failed_runs:
        if incident.run_id and incident.run_id not in seen:
            runs.append(incident)
            seen.add(incident.run_id)
    remembered = _remember(seen_runs, [*observed.runs_checked, *(i.run_id for i in runs)])
    return Changes(
        opened=opened,
        resolved=resolved,
        runs=tuple(runs),
        open=new_open,
        retired=retired,
        seen_runs=remembered,
        still_open=sum(1 for key in failing if key in open_incidents),
    )


def _remember(old: Sequence[str], new: Iterable[str]) -> tuple[str, ...]:
    ordered = list(dict.fromkeys([*old, *new]))  # keeps first-seen order, drops repeats
    return tuple(ordered[-MAX_SEEN_RUNS:])
