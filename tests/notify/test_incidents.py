"""The incident diff: one message when something breaks, none while it stays broken, one
when it clears; a failed run is told once."""

from __future__ import annotations

import dataclasses

from pipelines.notify.cursor import Cursor, load_cursor
from pipelines.notify.incidents import (
    CHECK_FAILED,
    RUN_FAILED,
    STALE,
    Incident,
    Observations,
    diff,
    incident_key,
)
from pipelines.notify.messages import Message
from pipelines.notify.senders import Pending

SCHEMA = Incident(
    kind=CHECK_FAILED,
    asset="silver/cpr_persons",
    check="schema",
    dataset="cpr_persons",
    counts={"rejected_files": 1},
    since="2026-01-05T06:00:00+00:00",
    recipients=("borgerservice@demo-kommune.example",),
)
STALE_DAR = Incident(kind=STALE, asset="silver/dar_addresses", dataset="dar_addresses")


def _run(run_id: str) -> Incident:
    return Incident(kind=RUN_FAILED, asset="silver/sick_leave", check=run_id, run_id=run_id)


def test_a_new_failure_opens_one_incident() -> None:
    changes = diff({}, (), Observations(failing=(SCHEMA, STALE_DAR)))
    assert changes.opened == (SCHEMA, STALE_DAR)
    assert changes.resolved == () and changes.runs == ()
    assert set(changes.open) == {SCHEMA.key, STALE_DAR.key}
    assert changes.messages == 2


def test_a_failure_that_stays_says_nothing_and_keeps_its_start() -> None:
    later = dataclasses.replace(SCHEMA, counts={"rejected_files": 2}, since="later")
    changes = diff({SCHEMA.key: SCHEMA}, (), Observations(failing=(later,)))
    assert changes.messages == 0 and changes.still_open == 1
    assert changes.open[SCHEMA.key].since == SCHEMA.since  # what the owner was told


def test_a_cleared_failure_resolves_once_and_leaves_the_open_set() -> None:
    first = diff({SCHEMA.key: SCHEMA}, (), Observations(healthy=frozenset({SCHEMA.key})))
    assert first.resolved == (SCHEMA,) and first.opened == ()
    assert first.open == {}
    again = diff(first.open, (), Observations(healthy=frozenset({SCHEMA.key})))
    assert again.messages == 0


def test_an_unknown_state_keeps_the_incident_open() -> None:
    # e.g. the check is planned in a running run, or the instance could not be read
    changes = diff({SCHEMA.key: SCHEMA}, (), Observations())
    assert changes.messages == 0 and changes.open == {SCHEMA.key: SCHEMA}


def test_kinds_are_separate_incidents_for_the_same_asset() -> None:
    stale_cpr = Incident(kind=STALE, asset="silver/cpr_persons", dataset="cpr_persons")
    assert stale_cpr.key == incident_key(STALE, "silver/cpr_persons")
    changes = diff(
        {SCHEMA.key: SCHEMA},
        (),
        Observations(failing=(stale_cpr,), healthy=frozenset({SCHEMA.key})),
    )
    assert changes.opened == (stale_cpr,) and changes.resolved == (SCHEMA,)


def test_failed_runs_are_told_once_per_run_id() -> None:
    first = diff({}, (), Observations(failed_runs=(_run("r1"),), runs_checked=("r1", "r0")))
    assert [i.run_id for i in first.runs] == ["r1"]
    assert first.open == {}  # a failed run is a one-off, never "open"
    assert set(first.seen_runs) == {"r0", "r1"}

    second = diff({}, first.seen_runs, Observations(failed_runs=(_run("r1"), _run("r2"))))
    assert [i.run_id for i in second.runs] == ["r2"]
    third = diff({}, second.seen_runs, Observations(failed_runs=(_run("r1"), _run("r2"))))
    assert third.runs == ()


def test_the_cursor_round_trips_and_survives_garbage() -> None:
    message = Message(
        key="k",
        kind=STALE,
        status="open",
        title="Løst",
        text="æøå",
        link="http://x",
        language="da",
        to=("a@b.example",),
        payload={"title": "Løst"},
    )
    cursor = Cursor(
        open={SCHEMA.key: SCHEMA},
        seen_runs=("r1",),
        runs_after=1700000000.5,
        outbox=(Pending(message, ("webhook",), attempts=2),),
    )
    loaded, problem = load_cursor(cursor.dumps())
    assert problem is None and loaded == cursor

    for garbage in ("not json", "[]", '{"version": 99}', '{"version": 1, "open": [1]}'):
        empty, problem = load_cursor(garbage)
        assert empty == Cursor() and problem
