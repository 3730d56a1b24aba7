"""Freshness: is each dataset's newest load within its expected cadence?"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import polars as pl

from lake.home import Home
from lake.quality import runs
from pipelines.specs import DatasetSpec


@dataclass(frozen=True)
class Freshness:
    dataset: str
    last_loaded_at: dt.datetime | None
    expected_within_hours: float | None
    age_hours: float | None
    stale: bool


def freshness(
    home: Home, specs: list[DatasetSpec], now: dt.datetime | None = None
) -> list[Freshness]:
    """One row per dataset; a dataset with no freshness_hours is never stale."""
    now = now or dt.datetime.now(dt.UTC)
    loaded = runs(home).filter(pl.col("status") == "loaded")
    last = dict(loaded.group_by("dataset").agg(pl.col("finished_at").max()).iter_rows())
    rows = []
    for spec in specs:
        at = last.get(spec.name)
        age = (now - at).total_seconds() / 3600 if at is not None else None
        limit = spec.quality.freshness_hours
        stale = limit is not None and (age is None or age > limit)
        rows.append(Freshness(spec.name, at, limit, age, stale))
    return rows
