"""Maintenance on real Delta tables: fewer files, the same rows, time travel intact."""

from __future__ import annotations

import math
import threading
from pathlib import Path

import polars as pl
import pytest
from deltalake import DeltaTable, write_deltalake

from lake.maintenance import (
    MaintenanceError,
    checkpoint_and_cleanup,
    compact,
    maintain,
    open_seconds,
    vacuum,
)


def _append(uri: str, start: int, rows: int = 3, partition_by: list[str] | None = None) -> None:
    frame = pl.DataFrame(
        {
            "id": list(range(start, start + rows)),
            "district": [f"d{i % 3}" for i in range(start, start + rows)],
            "value": [f"v{i}" for i in range(start, start + rows)],
        }
    )
    write_deltalake(uri, frame.to_arrow(), mode="append", partition_by=partition_by)


def _appends(uri: str, count: int, partition_by: list[str] | None = None) -> None:
    for i in range(count):
        _append(uri, i * 3, partition_by=partition_by)


def _appends_from(uri: str, first: int, count: int) -> None:
    for i in range(first, first + count):
        _append(uri, i * 3)


def _sorted(uri: str, version: int | None = None) -> pl.DataFrame:
    frame = pl.read_delta(uri, version=version)
    return frame.select(sorted(frame.columns)).sort("id")


def _files(uri: str) -> int:
    return DeltaTable(uri).get_add_actions().num_rows


def test_compaction_of_many_small_appends_keeps_rows_and_every_version(tmp_path: Path) -> None:
    uri = str(tmp_path / "t")
    _appends(uri, 50)
    before = _sorted(uri)
    assert _files(uri) == 50

    report = compact(uri)

    assert (report.files_before, report.files_after) == (50, 1)
    assert (report.version_before, report.version_after) == (49, 50)
    assert (report.files_removed, report.files_added) == (50, 1)
    assert report.bytes_removed > 0 and report.errors == ()
    assert _sorted(uri).equals(before)
    assert DeltaTable(uri).history(1)[0]["operation"] == "OPTIMIZE"
    # Every load's version is still there to time-travel to.
    for version in (0, 10, 49):
        assert pl.read_delta(uri, version=version).height == (version + 1) * 3
    # Idempotent: nothing left to compact, no new commit.
    again = compact(uri)
    assert (again.files_removed, again.version_after) == (0, 50)


def test_loads_committed_during_compaction_keep_their_rows(tmp_path: Path) -> None:
    uri = str(tmp_path / "t")
    _appends(uri, 30)
    errors: list[BaseException] = []

    def load() -> None:
        try:
            for i in range(30, 45):
                _append(uri, i * 3)
        except BaseException as error:  # collected, asserted in the test thread
            errors.append(error)

    loader = threading.Thread(target=load)
    loader.start()
    report = compact(uri)
    loader.join()

    assert errors == [] and report.errors == ()
    rows = pl.read_delta(uri)
    assert rows.height == 45 * 3
    assert sorted(rows["id"].to_list()) == list(range(45 * 3))


def test_a_partitioned_table_is_compacted_partition_by_partition(tmp_path: Path) -> None:
    uri = str(tmp_path / "t")
    _appends(uri, 10, partition_by=["district"])  # each append writes to all three districts
    _append(uri, 1000, rows=1, partition_by=["district"])  # d1 (1000 % 3) gets one more file
    before = _sorted(uri)
    version = DeltaTable(uri).version()

    report = compact(uri)

    by_partition = {p.partition["district"]: p for p in report.partitions}
    assert set(by_partition) == {"d0", "d1", "d2"}
    assert by_partition["d1"].files_removed == 11 and by_partition["d0"].files_removed == 10
    assert all(p.files_added == 1 and p.bytes_added > 0 for p in report.partitions)
    assert report.version_after == version + 3  # one commit per partition
    assert report.files_after == 3
    assert _sorted(uri).equals(before)


def test_partitions_of_one_file_are_left_alone(tmp_path: Path) -> None:
    # Each partition's OPTIMIZE replays the log: a table of thousands of one-file partitions
    # (a municipality code, a date) took minutes of weekly maintenance to change nothing.
    uri = str(tmp_path / "t")
    schema = {"district": pl.String, "id": pl.Int64}
    for districts in (["d0", "d1", None], ["d1", None], ["d2"]):
        frame = pl.DataFrame({"district": districts, "id": range(len(districts))}, schema=schema)
        write_deltalake(uri, frame.to_arrow(), mode="append", partition_by=["district"])
    before, version = sorted(pl.read_delta(uri).rows(), key=str), DeltaTable(uri).version()

    report = compact(uri)

    compacted = {p.partition["district"]: p.files_removed for p in report.partitions}
    assert compacted == {"d1": 2, None: 2}  # d0 and d2 hold one file each
    assert report.version_after == version + 2 and report.files_after == 4
    assert sorted(pl.read_delta(uri).rows(), key=str) == before


def test_partition_filters_compact_only_the_matching_partition(tmp_path: Path) -> None:
    uri = str(tmp_path / "t")
    _appends(uri, 5, partition_by=["district"])

    report = compact(uri, partition_filters=[("district", "=", "d2")])

    [only] = report.partitions
    assert only.partition == {"district": "d2"} and only.files_removed == 5
    assert report.files_after == 5 + 5 + 1


def test_a_failing_partition_is_reported_and_the_others_are_still_compacted(
    tmp_path: Path,
) -> None:
    uri = str(tmp_path / "t")
    _appends(uri, 4, partition_by=["district"])
    next((tmp_path / "t" / "district=d1").glob("*.parquet")).unlink()  # a broken partition

    report = compact(uri)

    [failed] = report.errors
    assert failed.partition == {"district": "d1"} and "not found" in (failed.error or "")
    compacted = {p.partition["district"] for p in report.partitions if p.files_removed}
    assert compacted == {"d0", "d2"}


def test_checkpoint_covers_the_log_and_the_table_opens_from_it(tmp_path: Path) -> None:
    uri = str(tmp_path / "t")
    _appends(uri, 15)
    before = _sorted(uri)

    report = checkpoint_and_cleanup(uri, checkpoint_every=10)

    assert report.checkpoint_created and report.commits_since_checkpoint == 15
    log = tmp_path / "t" / "_delta_log"
    assert (log / "00000000000000000014.checkpoint.parquet").is_file()
    assert '"version":14' in (log / "_last_checkpoint").read_text()
    assert report.log_files_removed == 0  # the default log retention is 30 days
    assert DeltaTable(uri).version() == 14 and _sorted(uri).equals(before)
    assert pl.read_delta(uri, version=3).height == 12  # older versions still readable

    _appends_from(uri, 15, 3)
    fewer = checkpoint_and_cleanup(uri, checkpoint_every=10)
    assert not fewer.checkpoint_created and fewer.commits_since_checkpoint == 3


def test_log_files_past_the_tables_log_retention_are_cleaned_up(tmp_path: Path) -> None:
    uri = str(tmp_path / "t")
    write_deltalake(
        uri,
        pl.DataFrame({"id": [0]}).to_arrow(),
        configuration={"delta.logRetentionDuration": "interval 0 seconds"},
    )
    for i in range(1, 6):
        write_deltalake(uri, pl.DataFrame({"id": [i]}).to_arrow(), mode="append")

    report = checkpoint_and_cleanup(uri)

    assert report.checkpoint_created and report.log_files_removed == 5
    remaining = sorted(p.name for p in (tmp_path / "t" / "_delta_log").iterdir())
    assert remaining == [
        "00000000000000000005.checkpoint.parquet",
        "00000000000000000005.json",
        "_last_checkpoint",
    ]
    assert sorted(pl.read_delta(uri)["id"].to_list()) == list(range(6))


def test_vacuum_refuses_a_retention_under_seven_days(tmp_path: Path) -> None:
    uri = str(tmp_path / "t")
    _appends(uri, 3)
    with pytest.raises(MaintenanceError, match=r"below 168 h.*allow_short_retention"):
        vacuum(uri, 24)
    with pytest.raises(MaintenanceError, match="below 168 h"):
        maintain(uri, retention_hours=0)
    assert DeltaTable(uri).version() == 2 and _files(uri) == 3  # nothing compacted


@pytest.mark.parametrize("hours", [math.nan, math.inf])
def test_vacuum_refuses_a_retention_that_is_not_a_number_of_hours(tmp_path, hours) -> None:
    # NaN passed the 7-day check (every comparison with it is false), then crashed in ceil()
    uri = str(tmp_path / "t")
    _appends(uri, 2)
    with pytest.raises(MaintenanceError, match="must be a number of hours >= 0"):
        vacuum(uri, hours, allow_short=True)
    assert _files(uri) == 2


def test_vacuum_keeps_files_of_versions_within_the_retention(tmp_path: Path) -> None:
    uri = str(tmp_path / "t")
    _appends(uri, 10)
    before = _sorted(uri)
    compact(uri)  # the ten small files are now tombstones, removed just now

    report = vacuum(uri, 168)

    assert (report.candidates, report.files_deleted, report.bytes_deleted) == (0, 0, 0)
    assert _sorted(uri, version=9).equals(before)  # time travel to before compaction works
    assert _sorted(uri).equals(before)


def test_vacuum_with_an_allowed_short_retention_removes_an_overwritten_file(
    tmp_path: Path,
) -> None:
    uri = str(tmp_path / "t")
    _append(uri, 0)
    [old] = (tmp_path / "t").glob("*.parquet")
    old_size = old.stat().st_size
    write_deltalake(
        uri,
        pl.DataFrame({"id": [9], "district": ["d0"], "value": ["new"]}).to_arrow(),
        mode="overwrite",
    )

    report = vacuum(uri, 0, allow_short=True)

    assert (report.candidates, report.files_deleted) == (1, 1)
    assert report.bytes_deleted == old_size
    assert not old.exists()
    assert pl.read_delta(uri)["id"].to_list() == [9]
    assert len(list((tmp_path / "t").glob("*.parquet"))) == 1


def test_maintain_runs_all_three_steps_and_open_seconds_measures(tmp_path: Path) -> None:
    uri = str(tmp_path / "t")
    _appends(uri, 20)
    before = _sorted(uri)
    assert open_seconds(uri) > 0

    report = maintain(uri, checkpoint_every=10)

    assert report.compaction.files_after == 1
    assert report.checkpoint.checkpoint_created and report.checkpoint.version == 20
    assert report.vacuum.files_deleted == 0 and report.vacuum.version >= 20
    assert _sorted(uri).equals(before)
