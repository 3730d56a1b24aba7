"""Parquet reading: every type rendered as text the way the other readers render it."""

from __future__ import annotations

import datetime as dt
import decimal
import io

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from connectors.formats import FormatError, iter_table, read_table
from tests.formats.builders import assert_contract


def parquet(frame: pl.DataFrame | pa.Table) -> bytes:
    buffer = io.BytesIO()
    if isinstance(frame, pl.DataFrame):
        frame.write_parquet(buffer)
    else:
        pq.write_table(frame, buffer)
    return buffer.getvalue()


def read(data: bytes) -> pl.DataFrame:
    frame = read_table(data, {"type": "parquet"}, source_name="cvr.parquet")
    assert_contract(frame)
    return frame


def read_error(data: bytes, **options: object) -> FormatError:
    with pytest.raises(FormatError) as caught:
        read_table(data, {"type": "parquet", **options}, source_name="cvr.parquet")
    assert "\n" not in str(caught.value)
    return caught.value


def every_type() -> pl.DataFrame:
    return pl.DataFrame(
        {
            "int": [12345678, None, -3],
            "float": [18.75, 4000.0, 1e-07],
            "float32": pl.Series([0.1, 2.0, None], dtype=pl.Float32),
            "special": [float("nan"), float("inf"), 2.0**70],
            "decimal": pl.Series(
                [decimal.Decimal("18.750"), None, decimal.Decimal("-0.001")],
                dtype=pl.Decimal(10, 3),
            ),
            "bool": [True, False, None],
            "date": [dt.date(2026, 1, 15), None, dt.date(1899, 12, 31)],
            "datetime": [
                dt.datetime(2026, 2, 1, 13, 30),
                dt.datetime(2026, 2, 1, 13, 30, 0, 500),
                None,
            ],
            "time": [dt.time(13, 30), dt.time(0, 0, 1, 250_000), None],
            "text": ["  Søren Ærø ", "", None],
            "binary": [b"\x00\xff", None, b""],
            "list": [[1, 2], None, []],
            "struct": [{"vej": "Østergade", "nr": 1}, None, {"vej": None, "nr": 2}],
            "category": pl.Series(["a", None, "b"], dtype=pl.Categorical),
        }
    ).with_columns(
        zoned=pl.Series([dt.datetime(2026, 6, 1, 12)] * 3).dt.replace_time_zone("Europe/Copenhagen")
    )


def test_every_type_becomes_text() -> None:
    frame = every_type()
    result = read(parquet(frame))

    assert result.columns == [*frame.columns, "_source_row"]
    assert result.rows() == [
        (
            "12345678",
            "18.75",
            "0.1",
            "nan",
            "18.750",
            "true",
            "2026-01-15",
            "2026-02-01 13:30:00",
            "13:30:00",
            "Søren Ærø",
            "AP8=",
            "[1,2]",
            '{"vej":"Østergade","nr":1}',
            "a",
            "2026-06-01 12:00:00+02:00",
            1,
        ),
        (
            None,
            "4000",
            "2",
            "inf",
            None,
            "false",
            None,
            "2026-02-01 13:30:00.000500",
            "00:00:01.250",
            None,
            None,
            None,
            None,
            None,
            "2026-06-01 12:00:00+02:00",
            2,
        ),
        (
            "-3",
            "1e-07",
            None,
            "1180591620717411303424",  # whole: digits, as the JSON and Excel readers
            "-0.001",
            None,
            "1899-12-31",
            None,
            None,
            None,
            None,
            "[]",
            '{"vej":null,"nr":2}',
            "b",
            "2026-06-01 12:00:00+02:00",
            3,
        ),
    ]


def test_empty_rows_are_dropped_and_row_numbers_kept() -> None:
    frame = pl.DataFrame({"a": ["x", None, " ", "y"], "b": [None, None, "", "2"]})
    assert read(parquet(frame)).rows() == [("x", None, 1), ("y", "2", 4)]


def test_a_file_with_no_rows() -> None:
    result = read(parquet(pl.DataFrame(schema={"cvr": pl.Int64, "navn": pl.String})))
    assert result.columns == ["cvr", "navn", "_source_row"] and result.height == 0


def test_nested_values_with_dates_are_json_text() -> None:
    table = pa.table({"l": [[dt.date(2026, 1, 2)], None], "k": ["x", "y"]})
    assert read(parquet(table)).rows() == [('["2026-01-02"]', "x", 1), (None, "y", 2)]


def test_column_names_that_break_the_contract() -> None:
    with pytest.raises(FormatError, match="column named '_source_row'"):
        read(parquet(pl.DataFrame({"_source_row": [1]})))


@pytest.mark.parametrize(
    "data",
    [b"", b"PAR1", b"id;navn\n1;x\n", b"PAR1" + bytes(64) + b"PAR1"],
    ids=["empty", "magic-only", "csv", "zeros"],
)
def test_corrupt_files_are_format_errors(data: bytes) -> None:
    assert "not a readable Parquet file" in str(read_error(data))


def test_truncated_and_damaged_files_are_format_errors() -> None:
    good = parquet(pl.DataFrame({"a": list(range(1000)), "b": ["x" * 10] * 1000}))
    assert "not a readable Parquet file" in str(read_error(good[: len(good) // 2]))
    damaged = bytearray(good)
    damaged[len(good) // 3 : len(good) // 3 + 64] = bytes(64)
    try:
        assert_contract(read(bytes(damaged)))  # the damage may hit only padding
    except FormatError as error:
        assert "\n" not in str(error)


def test_options_are_refused() -> None:
    assert "type parquet takes no `format:` options, got `sheet`" in str(read_error(b"", sheet=1))


def test_durations_are_iso_8601_text() -> None:
    table = pa.table(
        {
            "s": pa.array([90, None, -86397], pa.duration("s")),
            "us": pa.array([400 * 86_400_000_000 + 5, 0, 1_500_000], pa.duration("us")),
        }
    )
    assert read(parquet(table)).rows() == [
        ("PT1M30S", "P400DT0.000005S", 1),
        (None, "PT0S", 2),
        ("-PT23H59M57S", "PT1.5S", 3),
    ]


def test_decimals_wider_than_38_digits_are_their_digits() -> None:
    digits = "-1234567890123456789012345678901234567.125"  # 40 digits: over polars' 38
    wide = pa.array([decimal.Decimal("1.5"), None, decimal.Decimal(digits)], pa.decimal256(40, 3))
    table = pa.table({"id": [1, 2, 3], "big": wide})
    assert read(parquet(table)).rows() == [
        ("1", "1.500", 1),
        ("2", None, 2),
        ("3", digits, 3),
    ]


def test_decimals_wider_than_38_digits_get_the_decimal_comma_asked_for(tmp_path) -> None:
    # Rendered as text before the comma was applied, 18.750 stayed 18.750 under
    # `decimal_comma`, and a `.` thousands separator then typed it as 18750.
    wide = pa.array([decimal.Decimal("18.750"), None], pa.decimal256(40, 3))
    table = pa.table({"id": [1, 2], "big": wide})
    options = {"type": "parquet", "decimal_comma": True}
    whole = read_table(parquet(table), options, source_name="cvr.parquet")
    assert whole["big"].to_list() == ["18,750", None]
    path = tmp_path / "wide.parquet"
    pq.write_table(pa.concat_tables([table] * 2_000), path, row_group_size=100)
    pieces = list(iter_table(path, options, source_name="wide.parquet", chunk_bytes=2048))
    assert len(pieces) > 1
    assert pl.concat(pieces)["big"].to_list() == ["18,750", None] * 2_000


def test_duplicate_column_names_are_named() -> None:
    arrays = [pa.array([1]), pa.array(["a"]), pa.array(["b"])]
    table = pa.Table.from_arrays(arrays, names=["id", "navn", "navn"])
    error = read_error(parquet(table))
    assert error.cause == "duplicate column names 'navn'"
    assert "not a readable Parquet file" not in str(error)


def test_a_column_that_cannot_be_rendered_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    from connectors.formats import parquet as reader

    render = reader._text

    def refuse_durations(column: pl.Series) -> pl.Series:
        if column.dtype == pl.Duration:
            raise pl.exceptions.InvalidOperationError("casting from Duration to String")
        return render(column)

    monkeypatch.setattr(reader, "_text", refuse_durations)
    table = pa.table({"id": [1], "ventetid": pa.array([90], pa.duration("s"))})
    assert "cannot render the column 'ventetid' (Duration(time_unit='ms'))" in str(
        read_error(parquet(table))
    )


def test_a_big_file_is_read_in_row_batches_exactly_as_whole(tmp_path) -> None:
    frame = pl.concat([every_type()] * 1_000)
    path = tmp_path / "big.parquet"
    frame.write_parquet(path, row_group_size=250)
    whole = read(path.read_bytes())
    pieces = list(
        iter_table(path, {"type": "parquet"}, source_name="cvr.parquet", chunk_bytes=8192)
    )
    assert len(pieces) > 5
    for piece in pieces:
        assert_contract(piece)
    assert pl.concat(pieces).equals(whole)
    assert whole["_source_row"].to_list() == list(range(1, 3_001))


def test_wide_decimals_duplicates_and_damage_in_a_big_file(tmp_path) -> None:
    digits = ["1" * 35 + f"{i:05d}.5" for i in range(5_000)]  # 41 digits: polars refuses
    wide = pa.table(
        {"amount": pa.array([decimal.Decimal(d) for d in digits], pa.decimal256(45, 1))}
    )
    path = tmp_path / "wide.parquet"
    pq.write_table(wide, path, row_group_size=500)
    pieces = list(iter_table(path, {"type": "parquet"}, source_name="w", chunk_bytes=4096))
    assert len(pieces) > 3 and pl.concat(pieces)["amount"].to_list() == digits

    doubled = pa.Table.from_arrays([pa.array(range(5_000))] * 2, names=["id", "id"])
    pq.write_table(doubled, path, row_group_size=500)
    with pytest.raises(FormatError, match="duplicate column names 'id'"):
        list(iter_table(path, {"type": "parquet"}, source_name="w", chunk_bytes=4096))

    pq.write_table(pa.table({"id": pa.array(range(50_000))}), path, row_group_size=5_000)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2] + bytes(64) + data[len(data) // 2 + 64 :])
    with pytest.raises(FormatError, match="not a readable Parquet file"):
        list(iter_table(path, {"type": "parquet"}, source_name="w", chunk_bytes=4096))


def _pieces(tmp_path, data: bytes) -> list[dict]:
    path = tmp_path / "x.parquet"
    path.write_bytes(data)
    frames = iter_table(path, {"type": "parquet"}, source_name="x.parquet", chunk_bytes=16)
    return [row for frame in frames for row in frame.to_dicts()]


def test_an_arrow_date64_reads_as_a_date_whole_and_in_pieces(tmp_path) -> None:
    # polars made it a datetime (2024-01-01 00:00:00) while batches through pyarrow gave
    # the date: the value depended on the file's size.
    data = parquet(pa.table({"d": pa.array([dt.date(2024, 1, 1)], pa.date64())}))
    assert read(data)["d"].to_list() == ["2024-01-01"]
    assert _pieces(tmp_path, data) == [{"d": "2024-01-01", "_source_row": 1}]


def test_a_column_without_a_name_is_refused_whole_and_in_pieces(tmp_path) -> None:
    # In pieces it loaded as `column_0`; whole, the message spoke of `header_row`.
    data = parquet(pa.table({"id": [1, 2], "": ["a", "b"]}))
    assert read_error(data).cause == "column 2 has no name"
    with pytest.raises(FormatError, match="column 2 has no name"):
        _pieces(tmp_path, data)


def test_int96_timestamps_beyond_nanoseconds_keep_their_dates(tmp_path) -> None:
    # Hive, Impala and old Spark write timestamps as INT96, and SCD tables end open rows at
    # 9999-12-31. pyarrow reads INT96 as nanoseconds, which end in 2262: read in pieces
    # (or with a column only pyarrow reads) 9999-12-31 came out as 1816-03-29, silently.
    moments = [dt.datetime(9999, 12, 31), dt.datetime(1, 1, 1), dt.datetime(2026, 1, 31, 13, 30)]
    expected = ["9999-12-31 00:00:00", "0001-01-01 00:00:00", "2026-01-31 13:30:00"]
    table = pa.table({"valid_to": pa.array(moments, pa.timestamp("us"))})
    buffer = io.BytesIO()
    pq.write_table(table, buffer, use_deprecated_int96_timestamps=True)
    data = buffer.getvalue()
    assert read(data)["valid_to"].to_list() == expected
    assert [row["valid_to"] for row in _pieces(tmp_path, data)] == expected
    # A decimal over 38 digits sends the whole file through pyarrow as well.
    wide = pa.array([decimal.Decimal(1)] * 3, pa.decimal256(40, 0))
    buffer = io.BytesIO()
    pq.write_table(table.append_column("big", wide), buffer, use_deprecated_int96_timestamps=True)
    assert read(buffer.getvalue())["valid_to"].to_list() == expected


def test_a_file_without_columns_says_so_whole_and_in_pieces(tmp_path) -> None:
    # It was "the header row is empty. Set `header_row`", an option type parquet refuses.
    data = parquet(pa.table({}))
    assert read_error(data).cause == "the Parquet file has no columns"
    with pytest.raises(FormatError, match="the Parquet file has no columns"):
        _pieces(tmp_path, data)
