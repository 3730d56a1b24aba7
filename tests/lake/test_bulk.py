"""Parquet parts committed as one batch (lake/bulk.py): only into a table of their schema."""

from __future__ import annotations

import datetime as dt

import polars as pl
import pytest
from deltalake import DeltaTable

from lake.bulk import PartWriter
from lake.errors import LakeError
from lake.tables import write_batch


@pytest.mark.parametrize("mode", ["append", "snapshot"])
def test_parts_of_another_schema_are_refused_and_the_table_stays_readable(tmp_path, mode):
    # An overwrite of parts once committed the batch's schema unchecked: a timestamp without
    # a time zone over a date column left a table delta-rs could no longer open (its protocol
    # lacked the timestampNtz feature).
    uri = str(tmp_path / "t")
    write_batch(
        uri, pl.DataFrame({"id": ["a"], "day": [dt.date(2026, 1, 1)]}), mode=mode, app_id="b1"
    )
    writer = PartWriter(uri, mode=mode, app_id="b2")

    with pytest.raises(LakeError, match=r"'day' is Date in the table but Datetime.*Nothing was"):
        writer.write(pl.DataFrame({"id": ["b"], "day": [dt.datetime(2026, 1, 2, 10)]}))

    assert DeltaTable(uri).version() == 0
    assert pl.read_delta(uri).rows() == [("a", dt.date(2026, 1, 1))]


def test_parts_are_refused_for_a_partitioned_table_and_it_stays_readable(tmp_path) -> None:
    # Parts carry no partition values: committed, they made every read fail on the column.
    uri = str(tmp_path / "t")
    first = pl.DataFrame({"id": [1, 2], "year": [2024, 2025]})
    write_batch(uri, first, mode="append", app_id="b1", partition_by=["year"])
    writer = PartWriter(uri, mode="append", app_id="b2")
    with pytest.raises(LakeError, match=r"partitioned by \['year'\]"):
        writer.write(pl.DataFrame({"id": [3], "year": [2026]}))
    assert DeltaTable(uri).version() == 0
    assert pl.read_delta(uri).sort("id").equals(first)
