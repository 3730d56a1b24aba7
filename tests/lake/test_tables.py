from __future__ import annotations

import polars as pl
import pytest
from deltalake import DeltaTable

from lake.errors import LakeError
from lake.tables import write_batch


def _frame(ids: list[str], value: int) -> pl.DataFrame:
    return pl.DataFrame({"id": ids, "value": [value] * len(ids)})


def _rows(uri: str) -> list[tuple]:
    return sorted(pl.read_delta(uri).rows())


def test_snapshot_replaces_the_table(tmp_path) -> None:
    uri = str(tmp_path / "t")
    write_batch(uri, _frame(["a", "b"], 1), mode="snapshot", app_id="b1")
    write_batch(uri, _frame(["c"], 2), mode="snapshot", app_id="b2")
    assert _rows(uri) == [("c", 2)]


def test_append_adds(tmp_path) -> None:
    uri = str(tmp_path / "t")
    write_batch(uri, _frame(["a"], 1), mode="append", app_id="b1")
    write_batch(uri, _frame(["a"], 2), mode="append", app_id="b2")
    assert _rows(uri) == [("a", 1), ("a", 2)]


def test_merge_upserts_on_keys(tmp_path) -> None:
    uri = str(tmp_path / "t")
    write_batch(uri, _frame(["a", "b"], 1), mode="merge", keys=["id"], app_id="b1")
    write_batch(uri, _frame(["b", "c"], 2), mode="merge", keys=["id"], app_id="b2")
    assert _rows(uri) == [("a", 1), ("b", 2), ("c", 2)]


@pytest.mark.parametrize("mode", ["append", "snapshot", "merge"])
def test_the_same_batch_twice_adds_no_commit(tmp_path, mode) -> None:
    uri = str(tmp_path / "t")
    first = write_batch(uri, _frame(["a"], 1), mode=mode, keys=["id"], app_id="batch-1")
    if mode == "merge":  # the first merge creates the table; merge the next batch for real
        first = write_batch(uri, _frame(["b"], 1), mode=mode, keys=["id"], app_id="batch-2")
    again = write_batch(
        uri,
        _frame(["b"], 1),
        mode=mode,
        keys=["id"],
        app_id="batch-2" if mode == "merge" else "batch-1",
    )
    assert first.committed and not again.committed
    assert again.version == first.version == DeltaTable(uri).version()


def test_merge_without_keys_is_refused(tmp_path) -> None:
    uri = str(tmp_path / "t")
    write_batch(uri, _frame(["a"], 1), mode="merge", keys=["id"], app_id="b1")
    with pytest.raises(LakeError, match="keys"):
        write_batch(uri, _frame(["b"], 1), mode="merge", app_id="b2")
