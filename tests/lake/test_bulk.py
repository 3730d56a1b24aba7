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
