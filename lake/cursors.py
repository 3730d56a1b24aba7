"""Paging state of API datasets, kept with the lake so a restart resumes where it stopped.

After each page is landed, its state (the next page, cursor or scroll position, as the
connector's JSON) is appended here with the page's content hash. A run that dies mid-way
leaves its last state as the dataset's newest row, unfinished; the next run continues from
it: the pages before it are already in landing, the ones after it have not been asked for.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from typing import Any

import polars as pl
from deltalake import DeltaTable, write_deltalake

from lake.home import Home
from lake.tables import commit_properties

_SCHEMA = {
    "dataset": pl.String,
    "run": pl.String,
    "page": pl.Int64,
    "state": pl.String,  # JSON; null once the source is exhausted
    "sha256": pl.String,
    "finished": pl.Boolean,
    "saved_at": pl.Datetime("us", "UTC"),
}


@dataclass(frozen=True)
class Cursor:
    run: str
    page: int
    state: dict[str, Any] | None
    finished: bool


def cursors_uri(home: Home) -> str:
    return home.table_uri("state", "cursors")


def latest(home: Home, dataset: str) -> Cursor | None:
    uri = cursors_uri(home)
    if not DeltaTable.is_deltatable(uri):
        return None
    rows = (
        pl.read_delta(uri)
        .filter(pl.col("dataset") == dataset)
        .sort("saved_at", "page", maintain_order=True)
    )
    if not rows.height:
        return None
    last = rows.row(-1, named=True)
    state = json.loads(last["state"]) if last["state"] else None
    return Cursor(last["run"], last["page"], state, last["finished"])


def save(
    home: Home,
    dataset: str,
    run: str,
    page: int,
    state: dict[str, Any] | None,
    sha256: str | None,
    *,
    finished: bool = False,
) -> None:
    row = pl.DataFrame(
        [
            {
                "dataset": dataset,
                "run": run,
                "page": page,
                "state": json.dumps(state, sort_keys=True) if state is not None else None,
                "sha256": sha256,
                "finished": finished,
                "saved_at": dt.datetime.now(dt.UTC),
            }
        ],
        schema=_SCHEMA,
    )
    write_deltalake(
        cursors_uri(home), row.to_arrow(), mode="append", commit_properties=commit_properties()
    )
