from __future__ import annotations

import datetime as dt

import polars as pl
import pytest
from deltalake import DeltaTable

from lake.duck import duck_connect, sql_string
from lake.errors import LakeError
from lake.history import append_registrations
from lake.history_sql import MACROS, install_history_macros
from lake.tables import write_batch

UTC = dt.UTC
T1 = dt.datetime(2026, 1, 1, tzinfo=UTC)
T2 = dt.datetime(2026, 2, 1, tzinfo=UTC)
T3 = dt.datetime(2026, 3, 1, tzinfo=UTC)


def _state(uri: str) -> tuple[int, list[tuple]]:
    return DeltaTable(uri).version(), sorted(pl.read_delta(uri).rows(), key=str)


def _history(uri: str) -> list[tuple]:
    """(id, name, valid_from, valid_to, is_current) sorted by id and valid_from."""
    return (
        pl.read_delta(uri)
        .sort("id", "valid_from")
        .select("id", "name", "valid_from", "valid_to", "is_current")
        .rows()
    )


def _companies(rows: dict[str, str], batch: str = "b") -> pl.DataFrame:
    return pl.DataFrame(
        {"id": list(rows), "name": list(rows.values()), "_batch_id": batch},
    )


def _scd2(uri: str, rows: dict[str, str], app_id: str, at: dt.datetime, **options):
    return write_batch(
        uri,
        _companies(rows, app_id),
        mode="scd2",
        keys=["id"],
        app_id=app_id,
        valid_at=at,
        **options,
    )


# --- SCD2 --------------------------------------------------------------------------------


def test_the_first_scd2_load_opens_one_version_per_key(tmp_path) -> None:
    uri = str(tmp_path / "t")
    commit = _scd2(uri, {"a": "Alfa", "b": "Beta"}, "b1", T1)
    assert commit.committed
    assert _history(uri) == [("a", "Alfa", T1, None, True), ("b", "Beta", T1, None, True)]


def test_a_full_scd2_load_closes_changed_and_vanished_keys_in_one_commit(tmp_path) -> None:
    uri = str(tmp_path / "t")
    _scd2(uri, {"a": "Alfa", "b": "Beta", "c": "Cirkel"}, "b1", T1)
    before = DeltaTable(uri).version()

    commit = _scd2(uri, {"a": "Alfa A/S", "b": "Beta", "d": "Delta"}, "b2", T2)

    assert commit.committed and commit.version == before + 1  # one commit for all of it
    assert _history(uri) == [
        ("a", "Alfa", T1, T2, False),
        ("a", "Alfa A/S", T2, None, True),
        ("b", "Beta", T1, None, True),  # unchanged: still the first version
        ("c", "Cirkel", T1, T2, False),  # gone from the full source: closed
        ("d", "Delta", T2, None, True),
    ]
    assert commit.metrics["num_target_rows_updated"] == 2
    assert commit.metrics["num_target_rows_inserted"] == 2
    # the unchanged row's lineage is the first batch's: it was not rewritten as a new version
    b = pl.read_delta(uri).filter(pl.col("id") == "b")
    assert b["_batch_id"].to_list() == ["b1"]


def test_a_delta_scd2_source_leaves_absent_keys_open(tmp_path) -> None:
    uri = str(tmp_path / "t")
    _scd2(uri, {"a": "Alfa", "b": "Beta"}, "b1", T1)
    _scd2(uri, {"a": "Alfa A/S"}, "b2", T2, scd2_source="delta")
    assert _history(uri) == [
        ("a", "Alfa", T1, T2, False),
        ("a", "Alfa A/S", T2, None, True),
        ("b", "Beta", T1, None, True),
    ]


def test_a_full_scd2_load_leaves_open_the_keys_whose_rows_were_quarantined(tmp_path) -> None:
    # "b"'s row failed the contract: the source still has "b", so closing its version (and
    # opening a new one when the next delivery is valid) would write history that never was.
    uri = str(tmp_path / "t")
    _scd2(uri, {"a": "Alfa", "b": "Beta", "c": "Cirkel"}, "b1", T1)
    held = pl.DataFrame({"id": ["b"]})
    _scd2(uri, {"a": "Alfa A/S"}, "b2", T2, held_keys=held)
    assert _history(uri) == [
        ("a", "Alfa", T1, T2, False),
        ("a", "Alfa A/S", T2, None, True),
        ("b", "Beta", T1, None, True),  # held: its last valid version stays current
        ("c", "Cirkel", T1, T2, False),  # gone from the full source: closed
    ]


def test_a_snapshot_keeps_the_stored_rows_of_keys_whose_rows_were_quarantined(tmp_path) -> None:
    uri = str(tmp_path / "t")
    write_batch(
        uri,
        _companies({"a": "Alfa", "b": "Beta", "c": "Cirkel"}, "b1"),
        mode="snapshot",
        keys=["id"],
        app_id="b1",
    )
    held = pl.DataFrame({"id": ["b", "a"]})  # "a" is in the batch as well: nothing to keep
    commit = write_batch(
        uri,
        _companies({"a": "Alfa A/S"}, "b2"),
        mode="snapshot",
        keys=["id"],
        app_id="b2",
        held_keys=held,
    )
    rows = pl.read_delta(uri).sort("id")
    assert rows.rows() == [("a", "Alfa A/S", "b2"), ("b", "Beta", "b1")]
    assert commit.deleted is not None and commit.deleted["id"].to_list() == ["c"]


def test_unchanged_rows_touch_nothing(tmp_path) -> None:
    # lineage columns (`_`-prefixed) differ in every batch and do not count as a change
    uri = str(tmp_path / "t")
    _scd2(uri, {"a": "Alfa", "b": "Beta"}, "b1", T1)
    before = _state(uri)
    commit = _scd2(uri, {"a": "Alfa", "b": "Beta"}, "b2", T2)
    assert not commit.committed and commit.skipped.startswith("no changes")
    assert _state(uri) == before


def test_a_changed_key_that_returns_gets_a_new_version(tmp_path) -> None:
    uri = str(tmp_path / "t")
    _scd2(uri, {"a": "Alfa"}, "b1", T1)
    _scd2(uri, {"x": "X"}, "b2", T2)  # a vanishes from the full source: closed
    _scd2(uri, {"a": "Alfa", "x": "X"}, "b3", T3)
    assert [r for r in _history(uri) if r[0] == "a"] == [
        ("a", "Alfa", T1, T2, False),
        ("a", "Alfa", T3, None, True),
    ]


def test_compare_columns_limit_what_counts_as_a_change(tmp_path) -> None:
    uri = str(tmp_path / "t")
    first = _companies({"a": "Alfa"}).with_columns(pl.lit("x").alias("note"))
    write_batch(uri, first, mode="scd2", keys=["id"], app_id="b1", valid_at=T1)
    second = first.with_columns(pl.lit("y").alias("note"))
    commit = write_batch(
        uri, second, mode="scd2", keys=["id"], app_id="b2", valid_at=T2, compare_columns=["name"]
    )
    assert not commit.committed
    assert pl.read_delta(uri)["note"].to_list() == ["x"]


def test_an_empty_scd2_batch_commits_nothing(tmp_path) -> None:
    # an empty "full" source would otherwise close every key: treat it as a broken delivery
    uri = str(tmp_path / "t")
    _scd2(uri, {"a": "Alfa"}, "b1", T1)
    before = _state(uri)
    empty = _companies({}).cast({"id": pl.String, "name": pl.String, "_batch_id": pl.String})
    commit = write_batch(uri, empty, mode="scd2", keys=["id"], app_id="b2")
    assert not commit.committed and "empty batch" in commit.skipped
    assert _state(uri) == before


def test_scd2_replays_commit_nothing(tmp_path) -> None:
    uri = str(tmp_path / "t")
    _scd2(uri, {"a": "Alfa", "b": "Beta"}, "b1", T1)
    _scd2(uri, {"a": "Alfa A/S"}, "b2", T2)
    before = _state(uri)
    again = _scd2(uri, {"a": "Alfa A/S"}, "b2", T3)
    assert not again.committed and again.skipped == "already committed"
    assert _state(uri) == before


def test_scd2_refuses_duplicate_and_null_keys_untouched(tmp_path) -> None:
    uri = str(tmp_path / "t")
    _scd2(uri, {"a": "Alfa"}, "b1", T1)
    before = _state(uri)
    dupes = pl.DataFrame({"id": ["a", "a"], "name": ["x", "y"], "_batch_id": "b2"})
    with pytest.raises(LakeError, match=r"more than once.*\{'id': 'a'\}"):
        write_batch(uri, dupes, mode="scd2", keys=["id"], app_id="b2")
    nulls = pl.DataFrame({"id": [None, "b"], "name": ["x", "y"], "_batch_id": "b3", "new": 1})
    with pytest.raises(LakeError, match=r"key column\(s\) \['id'\] have null values"):
        write_batch(
            uri,
            nulls.cast({"id": pl.String}),
            mode="scd2",
            keys=["id"],
            app_id="b3",
            add_columns=True,
        )
    assert _state(uri) == before


@pytest.mark.parametrize(
    ("at", "scd2_source", "says"),
    [
        # an old batch reloaded after a newer one: A2 would start before A3 and stay current
        (T2, "full", r"start at 2026-02-01.*\{'id': 'a'\} \(history to 2026-03-01"),
        # at the very instant of the current version: a zero-length version, two rows of
        # one key from one instant (unique_keys on id + valid_from)
        (T3, "full", r"start at 2026-03-01.*\{'id': 'a'\} \(history to 2026-03-01"),
        # b returns before the end of its closed version: two versions would overlap
        (T2, "delta", r"\{'id': 'b'\} \(history to 2026-03-01"),
    ],
    ids=["older", "same-instant", "overlap"],
)
def test_a_batch_before_the_history_is_refused_and_the_table_untouched(
    tmp_path, at, scd2_source, says
) -> None:
    uri = str(tmp_path / "t")
    _scd2(uri, {"a": "A1", "b": "B1"}, "b1", T1)
    _scd2(uri, {"a": "A3"}, "b3", T3)  # a changes, b vanishes from the full source
    before = _state(uri)
    rows = {"a": "A2"} if scd2_source == "full" else {"b": "B2"}
    with pytest.raises(LakeError, match=says) as error:
        _scd2(uri, rows, "b2", at, scd2_source=scd2_source)
    assert "Nothing was written" in str(error.value)
    assert str(error.value).startswith(f"{uri}: ")  # the path as given, not a file:// URI
    assert _state(uri) == before


@pytest.mark.parametrize(
    ("rows", "scd2_source"),
    [
        # c is new to the table, but the newer full batch (T3) said it did not exist then:
        # opened at T2 and left open, it would be current although the newest delivery
        # lacks it
        ({"a": "A3", "c": "C2"}, "full"),
        # b is unchanged since T1, so the per-key checks see nothing; closing it at T2
        # would end it before the T3 delivery that still had it
        ({"a": "A3"}, "full"),
        ({"c": "C2"}, "delta"),
    ],
    ids=["new-key", "close-unchanged", "delta-new-key"],
)
def test_a_batch_older_than_the_tables_history_is_refused_whatever_it_changes(
    tmp_path, rows, scd2_source
) -> None:
    uri = str(tmp_path / "t")
    _scd2(uri, {"a": "A1", "b": "B1"}, "b1", T1)
    _scd2(uri, {"a": "A3", "b": "B1"}, "b3", T3)  # a changes at T3, b stays
    before = _state(uri)
    with pytest.raises(
        LakeError, match=r"start at 2026-02-01.*\{'id': 'a'\} \(history to 2026-03-01"
    ):
        _scd2(uri, rows, "b2", T2, scd2_source=scd2_source)
    assert _state(uri) == before


def test_an_unchanged_batch_at_the_instant_of_its_versions_is_no_change(tmp_path) -> None:
    # the newest batch loaded again (a reload after a contract fix) changes nothing it had
    uri = str(tmp_path / "t")
    _scd2(uri, {"a": "Alfa"}, "b1", T1)
    before = _state(uri)
    commit = _scd2(uri, {"a": "Alfa", "n": "Ny"}, "b1-reload", T1, scd2_source="delta")
    assert commit.committed and DeltaTable(uri).version() == before[0] + 1
    assert _history(uri) == [("a", "Alfa", T1, None, True), ("n", "Ny", T1, None, True)]


def test_scd2_merge_prunes_partitions(tmp_path) -> None:
    uri = str(tmp_path / "t")
    rows = {f"{d}-{i}": d for d in ("nord", "syd", "vest") for i in range(2)}
    frame = pl.DataFrame({"id": list(rows), "district": list(rows.values()), "name": "n"})
    write_batch(
        uri, frame, mode="scd2", keys=["id"], app_id="b1", partition_by=["district"], valid_at=T1
    )
    changed = frame.with_columns(
        pl.when(pl.col("id") == "syd-0").then(pl.lit("ny")).otherwise("name").alias("name")
    )
    commit = write_batch(uri, changed, mode="scd2", keys=["id"], app_id="b2", valid_at=T2)
    assert commit.metrics["num_target_files_skipped_during_scan"] == 2
    history = pl.read_delta(uri).filter(pl.col("id") == "syd-0").sort("valid_from")
    assert history.select("name", "is_current").rows() == [("n", False), ("ny", True)]


def test_a_delta_scd2_batch_reads_only_its_keys_and_keeps_one_current_version(tmp_path) -> None:
    # A delta source can change only the keys it carries, so only those (in their
    # partitions, null partition included) are read; every key still has one current row.
    uri = str(tmp_path / "t")
    districts = ["nord", "syd", None]
    frame = pl.DataFrame(
        {"id": [f"k{i}" for i in range(6)], "district": districts * 2, "name": "n"}
    )
    write_batch(
        uri, frame, mode="scd2", keys=["id"], app_id="b1", partition_by=["district"], valid_at=T1
    )
    changes = frame.filter(pl.col("id").is_in(["k2", "k4"])).with_columns(name=pl.lit("ny"))
    changes = pl.concat([changes, pl.DataFrame({"id": ["k9"], "district": ["syd"], "name": ["x"]})])
    write_batch(
        uri, changes, mode="scd2", keys=["id"], app_id="b2", valid_at=T2, scd2_source="delta"
    )
    table = pl.read_delta(uri)
    current = table.filter(pl.col("is_current")).sort("id")
    assert current.select("id", "name").rows() == [
        ("k0", "n"),
        ("k1", "n"),
        ("k2", "ny"),
        ("k3", "n"),
        ("k4", "ny"),
        ("k5", "n"),
        ("k9", "x"),
    ]
    closed = table.filter(~pl.col("is_current")).sort("id")
    assert closed.select("id", "valid_to").rows() == [("k2", T2), ("k4", T2)]


@pytest.mark.parametrize("source", ["full", "delta"])
def test_a_key_moving_to_another_partition_closes_its_old_version(tmp_path, source) -> None:
    # The new version goes to the new partition; the one it replaces is closed where it is.
    uri = str(tmp_path / "t")
    frame = pl.DataFrame({"id": ["a", "b", "c"], "district": ["nord", "syd", "vest"], "name": "n"})
    write_batch(
        uri, frame, mode="scd2", keys=["id"], app_id="b1", partition_by=["district"], valid_at=T1
    )
    moved = frame.with_columns(
        pl.when(pl.col("id") == "a").then(pl.lit("syd")).otherwise("district").alias("district")
    )
    if source == "delta":
        moved = moved.filter(pl.col("id") == "a")

    write_batch(uri, moved, mode="scd2", keys=["id"], app_id="b2", valid_at=T2, scd2_source=source)

    history = pl.read_delta(uri).filter(pl.col("id") == "a").sort("valid_from")
    assert history.select("district", "valid_to", "is_current").rows() == [
        ("nord", T2, False),
        ("syd", None, True),
    ]
    assert pl.read_delta(uri).filter(pl.col("is_current")).height == 3


@pytest.mark.parametrize("source", ["full", "delta"])
def test_a_key_column_widened_int32_to_int64_keeps_one_history(tmp_path, source) -> None:
    # A contract that widens the key (Int32 -> Int64) is a safe widening: the old keys must
    # still match the batch's, not fail on mixed key types or start a second history.
    uri = str(tmp_path / "t")
    first = pl.DataFrame({"id": pl.Series([1, 2], dtype=pl.Int32), "name": ["a", "b"]})
    write_batch(uri, first, mode="scd2", keys=["id"], app_id="b1", valid_at=T1)
    wider = pl.DataFrame({"id": pl.Series([1, 3], dtype=pl.Int64), "name": ["a", "c"]})

    commit = write_batch(
        uri, wider, mode="scd2", keys=["id"], app_id="b2", valid_at=T2, scd2_source=source
    )

    assert commit.schema_changes == ("widened id: → Int64",)
    table = pl.read_delta(uri).sort("id", "valid_from")
    assert table.schema["id"] == pl.Int64
    b_to = T2 if source == "full" else None  # b vanished from a full source: closed
    assert table.select("id", "name", "valid_from", "valid_to").rows() == [
        (1, "a", T1, None),
        (2, "b", T1, b_to),
        (3, "c", T2, None),
    ]


# --- bitemporal registrations ------------------------------------------------------------

_TS = pl.Datetime("us", "UTC")


def _registrations(rows: list[tuple]) -> pl.DataFrame:
    """rows: (id, adresse, virkningFra, virkningTil, registreringFra, registreringTil)."""
    return pl.DataFrame(
        rows,
        schema={
            "id": pl.String,
            "adresse": pl.String,
            "virkningFra": _TS,
            "virkningTil": _TS,
            "registreringFra": _TS,
            "registreringTil": _TS,
        },
        orient="row",
    )


Y2020 = dt.datetime(2020, 1, 1, tzinfo=UTC)
Y2023 = dt.datetime(2023, 6, 1, tzinfo=UTC)
# An address as first registered in 2020, and the delivery after a retroactive correction in
# 2023: the register closed the first registration and registered the corrected address as
# true since 2020.
FIRST = [("A", "Gammel Vej 1", Y2020, None, Y2020, None), ("B", "Bro 2", Y2020, None, Y2020, None)]
CORRECTED = [
    ("A", "Gammel Vej 1", Y2020, None, Y2020, Y2023),
    ("A", "Ny Vej 1", Y2020, None, Y2023, None),
    ("B", "Bro 2", Y2020, None, Y2020, None),
]


def test_registrations_append_and_redelivery_adds_nothing(tmp_path) -> None:
    uri = str(tmp_path / "dar")
    first = append_registrations(uri, _registrations(FIRST), ids=["id"], app_id="d1")
    before = _state(uri)
    same = append_registrations(uri, _registrations(FIRST), ids=["id"], app_id="d2")
    replay = append_registrations(uri, _registrations(FIRST), ids=["id"], app_id="d1")
    assert first.committed
    assert not same.committed and same.skipped.startswith("nothing new: all 2 registrations")
    assert not replay.committed and replay.skipped == "already committed"
    assert _state(uri) == before


def test_a_correction_closes_the_old_registration_and_adds_the_new(tmp_path) -> None:
    uri = str(tmp_path / "dar")
    append_registrations(uri, _registrations(FIRST), ids=["id"], app_id="d1")
    before = DeltaTable(uri).version()
    commit = append_registrations(uri, _registrations(CORRECTED), ids=["id"], app_id="d2")
    assert commit.version == before + 1
    assert commit.metrics["num_target_rows_inserted"] == 1
    assert commit.metrics["num_target_rows_updated"] == 1
    stored = pl.read_delta(uri).sort("id", "registreringFra")
    assert stored.rows() == sorted(_registrations(CORRECTED).rows(), key=lambda r: (r[0], r[4]))
    # delivered again, even inside one file twice, it adds nothing
    twice = _registrations(CORRECTED + CORRECTED)
    again = append_registrations(uri, twice, ids=["id"], app_id="d3")
    assert not again.committed and DeltaTable(uri).version() == before + 1


def test_registrations_merge_prunes_partitions(tmp_path) -> None:
    uri = str(tmp_path / "dar")
    kommuner = _registrations(FIRST).with_columns(pl.Series("kommune", ["0101", "0147"]))
    append_registrations(uri, kommuner, ids=["id"], app_id="d1", partition_by=["kommune"])
    corrected = _registrations(CORRECTED[:2]).with_columns(pl.lit("0101").alias("kommune"))
    commit = append_registrations(uri, corrected, ids=["id"], app_id="d2")
    assert DeltaTable(uri).metadata().partition_columns == ["kommune"]
    assert commit.metrics["num_target_files_skipped_during_scan"] == 1
    assert pl.read_delta(uri).height == 3


def test_a_registration_closed_from_another_partition_is_closed_not_added(tmp_path) -> None:
    # The register re-delivers A's first registration, now closed, with today's kommune (a
    # boundary change): it is the stored registration, closed where it lives.
    uri = str(tmp_path / "dar")
    kommuner = _registrations(FIRST).with_columns(pl.Series("kommune", ["0101", "0147"]))
    append_registrations(uri, kommuner, ids=["id"], app_id="d1", partition_by=["kommune"])
    corrected = _registrations(CORRECTED).with_columns(pl.lit("0147").alias("kommune"))

    append_registrations(uri, corrected, ids=["id"], app_id="d2")

    stored = pl.read_delta(uri).sort("id", "registreringFra")
    assert stored.select("id", "kommune", "registreringFra", "registreringTil").rows() == [
        ("A", "0101", Y2020, Y2023),
        ("A", "0147", Y2023, None),
        ("B", "0147", Y2020, None),
    ]


def test_conflicting_registrations_are_refused(tmp_path) -> None:
    uri = str(tmp_path / "dar")
    append_registrations(uri, _registrations(FIRST), ids=["id"], app_id="d1")
    before = _state(uri)
    clash = _registrations([FIRST[0], ("A", "Andet", Y2020, None, Y2020, None)])
    # a new column would be a commit of its own: it must not happen before the refusal either
    clash = clash.with_columns(pl.lit("x").alias("note"))
    with pytest.raises(LakeError, match=r"1 registration\(s\) occur more than once.*'id': 'A'"):
        append_registrations(uri, clash, ids=["id"], app_id="d2", add_columns=True)
    assert _state(uri) == before


def test_registrations_need_the_bitemporal_columns(tmp_path) -> None:
    frame = _registrations(FIRST).drop("registreringTil")
    with pytest.raises(LakeError, match=r"lacks \['registreringTil'\]"):
        append_registrations(str(tmp_path / "dar"), frame, ids=["id"], app_id="d1")


# --- DuckDB macros over delta_scan -------------------------------------------------------


@pytest.fixture
def con():
    connection = duck_connect()
    connection.execute("SET TimeZone = 'UTC'")
    install_history_macros(connection)
    yield connection
    connection.close()


def _view(con, name: str, uri: str) -> None:
    con.execute("CREATE SCHEMA IF NOT EXISTS silver")
    con.execute(
        f"CREATE OR REPLACE VIEW silver.{name} AS SELECT * FROM delta_scan({sql_string(uri)})"
    )


def _addresses(con, virkning: str, registrering: str) -> list[tuple]:
    return con.sql(
        f"SELECT id, adresse FROM as_of('silver.dar', '{virkning}', '{registrering}') ORDER BY id"
    ).fetchall()


def test_as_of_answers_with_what_was_known_then(tmp_path, con) -> None:
    uri = str(tmp_path / "dar")
    append_registrations(uri, _registrations(FIRST), ids=["id"], app_id="d1")
    append_registrations(uri, _registrations(CORRECTED), ids=["id"], app_id="d2")
    _view(con, "dar", uri)

    # Where did A live in 2021? Asked in 2022, the register said Gammel Vej; asked after the
    # correction, it says Ny Vej — for the same 2021.
    assert _addresses(con, "2021-06-01 00:00:00+00", "2022-01-01 00:00:00+00") == [
        ("A", "Gammel Vej 1"),
        ("B", "Bro 2"),
    ]
    assert _addresses(con, "2021-06-01 00:00:00+00", "2024-01-01 00:00:00+00") == [
        ("A", "Ny Vej 1"),
        ("B", "Bro 2"),
    ]
    # half-open: at the correction's own instant the new registration is known, the old not
    assert _addresses(con, "2021-06-01 00:00:00+00", "2023-06-01 00:00:00+00")[0] == (
        "A",
        "Ny Vej 1",
    )
    # before anything was true, or before anything was registered, nothing
    assert _addresses(con, "2019-01-01 00:00:00+00", "2024-01-01 00:00:00+00") == []
    assert _addresses(con, "2021-06-01 00:00:00+00", "2019-01-01 00:00:00+00") == []
    current = con.sql("SELECT id, adresse FROM current_of('silver.dar') ORDER BY id").fetchall()
    assert current == [("A", "Ny Vej 1"), ("B", "Bro 2")]


def test_as_of_respects_virkning_intervals(tmp_path, con) -> None:
    uri = str(tmp_path / "dar")
    moved = dt.datetime(2022, 1, 1, tzinfo=UTC)
    rows = [
        ("A", "Første Vej", Y2020, moved, Y2020, None),
        ("A", "Anden Vej", moved, None, Y2020, None),
    ]
    append_registrations(uri, _registrations(rows), ids=["id"], app_id="d1")
    _view(con, "dar", uri)
    assert _addresses(con, "2021-12-31 23:59:00+00", "2024-01-01 00:00:00+00") == [
        ("A", "Første Vej")
    ]
    assert _addresses(con, "2022-01-01 00:00:00+00", "2024-01-01 00:00:00+00") == [
        ("A", "Anden Vej")
    ]


def test_in_period_is_half_open_with_null_as_open(con) -> None:
    rows = con.sql(
        """
        SELECT in_period(1, 3, 1), in_period(1, 3, 3), in_period(1, NULL, 100), in_period(2, 3, 1)
        """
    ).fetchall()
    assert rows == [(True, False, True, False)]


def test_as_of_scd2_returns_the_versions_valid_then(tmp_path, con) -> None:
    uri = str(tmp_path / "cvr")
    _scd2(uri, {"a": "Alfa", "c": "Cirkel"}, "b1", T1)
    _scd2(uri, {"a": "Alfa A/S"}, "b2", T2)
    _view(con, "cvr", uri)

    def names(ts: str) -> list[tuple]:
        sql = f"SELECT id, name FROM as_of_scd2('silver.cvr', '{ts}') ORDER BY id"
        return con.sql(sql).fetchall()

    assert names("2025-12-31 00:00:00+00") == []
    assert names("2026-01-15 00:00:00+00") == [("a", "Alfa"), ("c", "Cirkel")]
    assert names("2026-02-01 00:00:00+00") == [("a", "Alfa A/S")]  # c closed by the full load


def test_macros_persist_in_a_database_file_for_read_only_readers(tmp_path) -> None:
    uri = str(tmp_path / "dar")
    append_registrations(uri, _registrations(CORRECTED), ids=["id"], app_id="d1")
    path = tmp_path / "lake.duckdb"
    writer = duck_connect(path)
    assert install_history_macros(writer) == tuple(MACROS)
    _view(writer, "dar", uri)
    writer.close()

    reader = duck_connect(path, read_only=True)
    try:
        rows = reader.sql("SELECT id, adresse FROM current_of('silver.dar') ORDER BY id")
        assert rows.fetchall() == [("A", "Ny Vej 1"), ("B", "Bro 2")]
    finally:
        reader.close()
