"""RepeatFilter: keys repeated across chunks are held back before their chunk is written."""

from __future__ import annotations

import polars as pl
import pytest

from bench.cases import SPEC_PATH
from lake.bulk import PartWriter
from pipelines import ingest
from pipelines.ingest import RepeatFilter
from pipelines.specs import load_spec
from schemas.case_extract import CaseExtract


def _rows(*pairs: tuple[str, int]) -> pl.DataFrame:
    return pl.DataFrame(
        {"case_id": [k for k, _ in pairs], "_source_row": [r for _, r in pairs]},
        schema={"case_id": pl.String, "_source_row": pl.Int64},
    )


def _load(tmp_path, chunks: list[pl.DataFrame]) -> tuple[pl.DataFrame, pl.DataFrame]:
    writer = PartWriter(str(tmp_path / "t"), mode="append", app_id="a:1")
    repeats = RepeatFilter(["case_id"])
    for chunk in chunks:
        writer.write(repeats.hold_back(chunk))
    failures = repeats.settle(writer, CaseExtract)
    writer.commit()
    return pl.read_delta(str(tmp_path / "t")).sort("_source_row"), failures


def test_a_key_seen_in_an_earlier_chunk_is_quarantined_and_never_written(tmp_path) -> None:
    silver, failures = _load(
        tmp_path,
        [_rows(("A", 2), ("B", 3)), _rows(("C", 4), ("A", 5)), _rows(("A", 6), ("D", 7))],
    )
    assert silver["case_id"].to_list() == ["A", "B", "C", "D"]
    assert failures.select("_source_row", "check").rows() == [
        (5, "duplicate_key"),
        (6, "duplicate_key"),
    ]


def test_a_hash_collision_is_written_late_not_quarantined(tmp_path, monkeypatch) -> None:
    # Every key hashes alike, so every row of the later chunks is nominated; only the key
    # values may decide, and the unique rows must still reach the table.
    def same_hash(keys):
        return (pl.col(keys[0]).is_null().cast(pl.UInt64) * 0 + 7).alias("_key_hash")

    monkeypatch.setattr(ingest, "key_hash", same_hash)
    silver, failures = _load(tmp_path, [_rows(("A", 2)), _rows(("B", 3), ("A", 4))])
    assert silver["case_id"].to_list() == ["A", "B"]
    assert failures["_source_row"].to_list() == [4]


@pytest.mark.parametrize("chunks", [1, 3])
def test_without_repeats_nothing_is_held(tmp_path, chunks: int) -> None:
    rows = [_rows((f"K{i}{j}", 10 * i + j)) for i in range(chunks) for j in range(2)]
    silver, failures = _load(tmp_path, rows)
    assert silver.height == 2 * chunks and failures.is_empty()


def test_keys_sharing_bits_are_written_late_not_quarantined(tmp_path, monkeypatch) -> None:
    """With a 4-slot bitmap nearly every row of later chunks is nominated; the outcome must
    be the same as with exact lookups: only true repeats are quarantined."""
    monkeypatch.setattr(RepeatFilter, "BITS", 2)
    chunks = [_rows(*((f"K{i * 10 + j}", i * 10 + j) for j in range(10))) for i in range(4)]
    chunks[3] = chunks[3].vstack(_rows(("K5", 100), ("K17", 101)))
    silver, failures = _load(tmp_path, chunks)
    assert silver["case_id"].to_list() == [f"K{n}" for n in range(40)]
    assert failures.select("_source_row", "check").rows() == [
        (100, "duplicate_key"),
        (101, "duplicate_key"),
    ]


def _buffered(chunks: list[pl.DataFrame]) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Kept rows and failures of chunks held whole (merge loads; `check` shares the search)."""
    return ingest._drop_repeats(load_spec(SPEC_PATH), chunks)  # keys: case_id


def test_a_held_batch_drops_the_repeats_a_streamed_load_quarantines(tmp_path) -> None:
    chunks = [_rows(("A", 2), ("B", 3)), _rows(("C", 4), ("A", 5)), _rows(("A", 6), ("D", 7))]
    silver, loaded = _load(tmp_path, chunks)
    kept, failures = _buffered(chunks)
    assert failures.sort("_source_row").equals(loaded.sort("_source_row"))
    assert kept.sort("_source_row").equals(silver.select(kept.columns))


def test_a_hash_collision_in_a_held_batch_is_decided_by_the_key_values(monkeypatch) -> None:
    def same_hash(keys):
        return (pl.col(keys[0]).is_null().cast(pl.UInt64) * 0 + 7).alias("_key_hash")

    monkeypatch.setattr(ingest, "key_hash", same_hash)
    kept, failures = _buffered([_rows(("A", 2)), _rows(("B", 3), ("A", 4)), _rows(("B", 5))])
    assert failures["_source_row"].to_list() == [4, 5]
    assert kept["case_id"].to_list() == ["A", "B"]
