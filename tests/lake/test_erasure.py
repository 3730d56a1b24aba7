"""Erasure at table level (lake/erasure.py): rows go, history goes, and the register keeps an
erased subject out of later deliveries."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import polars as pl
import pyarrow.parquet as pq
import pytest
from deltalake import DeltaTable
from deltalake.exceptions import TableNotFoundError

from lake import erasure
from lake.privacy import pseudonym
from lake.tables import write_batch
from lake.validation import SOURCE_ROW
from schemas.sick_leave import SickLeave
from tests.conftest import TEST_KEY

SUBJECT = "0101901234"  # synthetic
OTHER = "0202851234"
SUBJECT_TOKEN = pseudonym(SUBJECT, TEST_KEY, "cpr")
OTHER_TOKEN = pseudonym(OTHER, TEST_KEY, "cpr")


def holding(table_dir: Path, text: str) -> list[Path]:
    """Every file under a table's folder that holds `text`: Parquet read as a table (it is
    compressed), log entries and the rest as bytes."""
    found = []
    for path in sorted(p for p in table_dir.rglob("*") if p.is_file()):
        if path.suffix == ".parquet":
            hit = text in str(pq.read_table(path).to_pylist())
        else:
            hit = text.encode() in path.read_bytes()
        if hit:
            found.append(path)
    return found


def _history(uri: str) -> None:
    """Three versions, each holding the subject: an append, a second append, a snapshot."""
    for i in range(2):
        write_batch(
            uri,
            pl.DataFrame({"cpr": [SUBJECT_TOKEN, OTHER_TOKEN], "n": [i, i]}),
            mode="append",
            app_id=f"b{i}",
        )


def test_delete_then_forget_history_leaves_the_subject_in_no_version_and_no_file(
    tmp_path,
) -> None:
    uri = str(tmp_path / "silver" / "visits")
    _history(uri)
    match = erasure.equals_any(["cpr"], SUBJECT_TOKEN)
    assert erasure.count_rows(uri, match) == 2
    assert holding(tmp_path, SUBJECT_TOKEN)

    assert erasure.delete_rows(uri, match) == 2
    assert erasure.readable_versions(uri) == [0, 1, 2]  # a delete alone keeps the history
    assert SUBJECT_TOKEN in pl.read_delta(uri, version=1)["cpr"].to_list()

    report = erasure.forget_history(uri)

    assert erasure.readable_versions(uri) == [report.version]
    with pytest.raises(TableNotFoundError, match="No files in log segment"):
        DeltaTable(uri, version=0)
    assert holding(tmp_path, SUBJECT_TOKEN) == []
    current = pl.read_delta(uri)
    assert current.sort("n")["cpr"].to_list() == [OTHER_TOKEN, OTHER_TOKEN]
    # the table goes on as before
    write_batch(uri, pl.DataFrame({"cpr": [OTHER_TOKEN], "n": [9]}), mode="append", app_id="b9")
    assert pl.read_delta(uri).height == 3


def test_a_table_without_the_subject_gets_no_delete_commit(tmp_path) -> None:
    uri = str(tmp_path / "t")
    _history(uri)
    version = DeltaTable(uri).version()
    assert erasure.delete_rows(uri, erasure.equals_any(["cpr"], "a" * 32)) == 0
    assert DeltaTable(uri).version() == version


def test_a_key_in_json_and_quarantine_rows_by_batch_and_row_are_matched(tmp_path) -> None:
    deletions = str(tmp_path / "deletions")
    keys = [f'{{"cpr":"{t}"}}' for t in (SUBJECT_TOKEN, OTHER_TOKEN)]
    write_batch(deletions, pl.DataFrame({"key": keys}), mode="append", app_id="d")
    assert erasure.delete_rows(deletions, erasure.contains("key", SUBJECT_TOKEN)) == 1
    assert pl.read_delta(deletions)["key"].to_list() == [keys[1]]

    quarantine = str(tmp_path / "quarantine")
    rows = pl.DataFrame(
        {"batch_id": ["b1", "b1", "b2"], "source_row": [2, 3, 2], "sheet": [None, None, None]},
        schema={"batch_id": pl.String, "source_row": pl.Int64, "sheet": pl.String},
    )
    write_batch(quarantine, rows, mode="append", app_id="q")
    match = erasure.either([erasure.source_rows("b1", [2])])
    assert match is not None and erasure.delete_rows(quarantine, match) == 1
    assert pl.read_delta(quarantine).sort("batch_id", "source_row").rows() == [
        ("b1", 3, None),
        ("b2", 2, None),
    ]


def test_values_that_would_break_the_predicate_are_refused() -> None:
    with pytest.raises(erasure.ErasureError, match="letters and digits"):
        erasure.equals_any(["cpr"], "x' OR '1'='1")


def test_the_subject_is_found_in_a_delivery_in_any_spelling() -> None:
    raw = pl.DataFrame(
        {
            "CPR": ["010190-1234", "0202851234", "0101901234", None],
            SOURCE_ROW: [2, 3, 4, 5],
        }
    )
    headers = erasure.raw_headers(raw.columns, ["cpr"], {"CPR": "cpr"})
    assert headers == ["CPR"]
    assert erasure.subject_rows(raw, headers, SUBJECT)[SOURCE_ROW].to_list() == [2, 4]
    assert erasure.name_holds("borger_010190-1234.csv", SUBJECT)
    assert not erasure.name_holds("borger_0202851234.csv", SUBJECT)


def test_the_filter_leaves_erased_subjects_out_of_a_delivery_and_counts_them(tmp_path) -> None:
    register = str(tmp_path / "state" / "erasures")
    assert erasure.register(register, SUBJECT_TOKEN)
    assert not erasure.register(register, SUBJECT_TOKEN)  # once
    raw = pl.DataFrame({"CPR": ["010190-1234", "0202851234", None], SOURCE_ROW: [2, 3, 4]})
    kept = erasure.ErasedFilter(SickLeave, {"CPR": "cpr"}, TEST_KEY, erasure.erased(register))
    assert kept.apply(raw)[SOURCE_ROW].to_list() == [3, 4]
    assert kept.rows == 1
    nobody = erasure.ErasedFilter(SickLeave, {"CPR": "cpr"}, TEST_KEY, frozenset())
    assert nobody.apply(raw).height == 3 and nobody.rows == 0


def test_the_audit_row_holds_counts_and_no_subject(tmp_path) -> None:
    uri = str(tmp_path / "quality" / "erasures")
    erasure.record_audit(
        uri,
        erasure.AuditRecord(
            erasure_id="e1",
            erased_at=dt.datetime(2026, 11, 23, tzinfo=dt.UTC),
            erased_by="operator",
            rows_removed_per_table={"silver.cpr_persons": 1, "quarantine.cpr_persons": 0},
            landing_files=1,
        ),
    )
    [row] = pl.read_delta(uri).to_dicts()
    assert row["rows_removed"] == 1 and row["subject_found"] and row["erased_by"] == "operator"
    assert holding(tmp_path, SUBJECT_TOKEN) == [] and holding(tmp_path, SUBJECT) == []
