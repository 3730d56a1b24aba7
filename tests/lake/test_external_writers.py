"""The serving layer reads Delta tables that other writers (Spark, Databricks) produced.

delta-rs cannot write column mapping or deletion vectors, so `delta_crafting` builds such tables
byte by byte from the Delta protocol; these tests check that DuckDB's `delta_scan` (what every
serving view is) applies them, and that the fixtures really carry the feature (the raw Parquet
shows physical names / still holds the deleted rows, so a reader ignoring the log would fail).
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import polars as pl
import pytest
from deltalake import DeltaTable, QueryBuilder

import lake
from lake.duck import duck_connect, sql_string
from lake.home import Home
from lake.serving import build_serving
from tests.lake.delta_crafting import (
    roaring_bitmap_array,
    write_column_mapped_table,
    write_table_with_deletion_vector,
    z85_decode,
    z85_encode,
)

ROWS = [
    {"district": "Nord", "persons": 120},
    {"district": "Syd", "persons": 80},
    {"district": "Øst", "persons": 45},
    {"district": "Vest", "persons": 300},
    {"district": "Midt", "persons": 7},
    {"district": "Havn", "persons": 61},
]
DELETED = [1, 3, 4]
KEPT = [row for i, row in enumerate(ROWS) if i not in DELETED]


def scan(table: Path, order_by: str = "district") -> list[dict]:
    con = duck_connect()
    try:
        return (
            con.sql(f"SELECT * FROM delta_scan({sql_string(str(table))}) ORDER BY {order_by}")
            .pl()
            .to_dicts()
        )
    finally:
        con.close()


def by_district(rows: list[dict]) -> list[dict]:
    return sorted(rows, key=lambda row: row["district"])


def data_files(table: Path) -> list[Path]:
    return sorted(table.glob("*.parquet"))


# --- the encodings against the protocol's own examples ---------------------------------------


def test_z85_matches_protocol_uuid_example() -> None:
    # PROTOCOL.md "JSON Example 1": "ab^-aqEH.-t@S}K{vb[*k^" is prefix "ab" + this UUID.
    dv_id = uuid.UUID("d2c639aa-8816-431a-aaf6-d3fe2512ff61")
    assert z85_encode(dv_id.bytes) == "^-aqEH.-t@S}K{vb[*k^"
    assert z85_decode("^-aqEH.-t@S}K{vb[*k^") == dv_id.bytes


def test_roaring_bitmap_array_layout() -> None:
    bitmap = roaring_bitmap_array([3, 4, 7, 11, 18, 29])
    assert bitmap[:4] == (1681511377).to_bytes(4, "little")  # magic
    assert bitmap[4:12] == (1).to_bytes(8, "little")  # one 32-bit bucket…
    assert bitmap[12:16] == bytes(4)  # …with key 0
    assert bitmap[16:20] == (12346).to_bytes(4, "little")  # portable cookie, no run containers
    assert len(bitmap) == 16 + 4 + 4 + 4 + 4 + 2 * 6  # count, key/card, offset, values


# --- column mapping ----------------------------------------------------------------------------


def test_column_mapped_table_reads_with_logical_names(tmp_path: Path) -> None:
    table = tmp_path / "population"
    mapping = write_column_mapped_table(table, ROWS)

    assert scan(table) == by_district(ROWS)

    # The fixture discriminates: the file itself only knows the physical names.
    [data_file] = data_files(table)
    raw = pl.read_parquet(data_file)
    assert raw.columns == [mapping["district"], mapping["persons"]]
    assert all(name.startswith("col-") for name in raw.columns)
    assert raw.height == len(ROWS)


def test_column_mapped_table_delta_rs_datafusion_agrees(tmp_path: Path) -> None:
    table = tmp_path / "population"
    write_column_mapped_table(table, ROWS)
    result = (
        QueryBuilder()
        .register("t", DeltaTable(str(table)))
        .execute("SELECT district, persons FROM t ORDER BY district")
        .read_all()
    )
    assert pl.DataFrame(result).to_dicts() == by_district(ROWS)


# --- deletion vectors --------------------------------------------------------------------------


@pytest.mark.parametrize("storage", ["u", "p", "i"], ids=["uuid-path", "absolute-path", "inline"])
def test_deletion_vector_hides_deleted_rows(tmp_path: Path, storage: str) -> None:
    table = tmp_path / "population"
    descriptor = write_table_with_deletion_vector(table, ROWS, DELETED, storage=storage)

    assert scan(table) == by_district(KEPT)

    # The fixture discriminates: the data file still holds every row, and the table's
    # current file carries the deletion vector.
    [data_file] = data_files(table)
    assert pl.read_parquet(data_file).to_dicts() == ROWS
    commit = (table / "_delta_log" / f"{1:020d}.json").read_text(encoding="utf-8")
    actions = [json.loads(line) for line in commit.splitlines()]
    adds = [action["add"] for action in actions if "add" in action]
    assert adds[0]["deletionVector"] == descriptor
    assert descriptor["cardinality"] == len(DELETED)
    assert len(list(table.glob("deletion_vector_*.bin"))) == (0 if storage == "i" else 1)


def test_deletion_vector_spanning_several_roaring_containers(tmp_path: Path) -> None:
    # Row indexes on both sides of 65536 land in two 16-bit containers, exercising the
    # portable format's descriptive and offset headers with more than one entry.
    n = 70_000
    deleted = [0, 5, 65_535, 65_536, 69_999]
    rows = [{"row": i} for i in range(n)]
    write_table_with_deletion_vector(tmp_path / "big", rows, deleted)

    source = f"delta_scan({sql_string(str(tmp_path / 'big'))})"
    probe = ", ".join(map(str, [*deleted, 1, 65_537]))
    con = duck_connect()
    try:
        count, total = con.sql(f'SELECT count(*), sum("row") FROM {source}').fetchone()
        present = con.sql(f'SELECT "row" FROM {source} WHERE "row" IN ({probe}) ORDER BY 1')
        present = [r for (r,) in present.fetchall()]
    finally:
        con.close()
    assert count == n - len(deleted)
    assert total == n * (n - 1) // 2 - sum(deleted)
    assert present == [1, 65_537]


def test_deletion_vector_delta_rs_datafusion_agrees(tmp_path: Path) -> None:
    table = tmp_path / "population"
    write_table_with_deletion_vector(table, ROWS, DELETED)
    result = (
        QueryBuilder()
        .register("t", DeltaTable(str(table)))
        .execute("SELECT district, persons FROM t ORDER BY district")
        .read_all()
    )
    assert pl.DataFrame(result).to_dicts() == by_district(KEPT)


# --- through the serving layer ---------------------------------------------------------------


def test_serving_views_apply_column_mapping_and_deletion_vectors(tmp_path: Path) -> None:
    home = Home(tmp_path)
    write_column_mapped_table(Path(home.table_uri("silver", "mapped_population")), ROWS)
    write_table_with_deletion_vector(
        Path(home.table_uri("silver", "deleted_population")), ROWS, DELETED
    )

    report = build_serving(home, catalog={})
    assert {"silver.mapped_population", "silver.deleted_population"} <= set(report.views)

    con = lake.connect(tmp_path)
    try:
        mapped = con.sql("SELECT * FROM silver.mapped_population ORDER BY district").pl()
        deleted = con.sql("SELECT * FROM silver.deleted_population ORDER BY district").pl()
    finally:
        con.close()
    assert mapped.columns == ["district", "persons"]
    assert mapped.to_dicts() == by_district(ROWS)
    assert deleted.to_dicts() == by_district(KEPT)
