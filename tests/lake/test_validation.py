from __future__ import annotations

import json
from typing import Annotated

import pandera.polars as pa
import polars as pl
import pytest

from connectors.formats import read_table
from lake.errors import SchemaBreak
from lake.validation import ParseOptions, conform
from schemas.sick_leave import SickLeave

ALIASES = {
    "Fravær-ID": "absence_id",
    "Medarbejdernr": "employee_no",
    "CPR": "cpr",
    "Afdeling": "department",
    "Fraværstype": "absence_type",
    "Startdato": "start_date",
    "Slutdato": "end_date",
    "Fraværsdage": "days",
    "Timer": "hours",
}
PARSE = ParseOptions(date_formats=("%d-%m-%Y",), decimal_comma=True)


def _raw(*rows: tuple) -> pl.DataFrame:
    columns = [*ALIASES, "_source_row"]
    return pl.DataFrame(
        [dict(zip(columns, (*row, i + 2), strict=True)) for i, row in enumerate(rows)],
        schema={**dict.fromkeys(ALIASES, pl.String), "_source_row": pl.Int64},
    )


GOOD = (
    "F1",
    "17",
    "0101901234",
    "Ældre og Sundhed",
    "Egen sygdom",
    "02-03-2026",
    "04-03-2026",
    "2,5",
    "18,75",
)


def _with(**changes) -> tuple:
    row = dict(zip(ALIASES, GOOD, strict=True))
    row.update(changes)
    return tuple(row.values())


def test_types_are_parsed_with_the_dataset_formats() -> None:
    result = conform(_raw(GOOD), SickLeave, aliases=ALIASES, parse=PARSE, keys=["absence_id"])
    row = result.valid.row(0, named=True)
    assert (row["days"], row["hours"], str(row["start_date"])) == (2.5, 18.75, "2026-03-02")
    assert result.rows_in == result.rows_valid == 1


def test_every_row_is_valid_or_quarantined_with_a_reason() -> None:
    raw = _raw(
        GOOD,
        _with(**{"Fravær-ID": "F2", "Startdato": "30-02-2026"}),  # impossible date
        _with(**{"Fravær-ID": "F3", "CPR": "3202901234"}),  # CPR with day 32
        _with(**{"Fravær-ID": "F4", "Fraværstype": "Ferie"}),  # not an absence type
        _with(**{"Fravær-ID": "F1"}),  # duplicate key: first one wins
        _with(**{"Fravær-ID": "F6", "Slutdato": "01-03-2026"}),  # ends before it starts
        _with(**{"Fravær-ID": "F7", "Afdeling": None}),  # missing mandatory
    )
    result = conform(raw, SickLeave, aliases=ALIASES, parse=PARSE, keys=["absence_id"])
    assert result.rows_in == 7
    assert result.rows_valid == 1 and result.valid["_source_row"].to_list() == [2]
    assert result.rows_valid + result.rows_quarantined == result.rows_in
    reasons = {
        (r, c, k.split("(")[0])
        for r, c, k in result.failures.select("_source_row", "column", "check").iter_rows()
    }
    assert reasons == {
        (3, "start_date", "type:Date"),
        (4, "cpr", "cpr_valid"),
        (5, "absence_type", "isin"),
        (6, "absence_id", "duplicate_key"),
        (7, "(row)", "end_not_before_start"),
        (8, "department", "not_nullable"),
    }


def test_a_spreadsheet_error_value_in_a_text_column_quarantines_its_row() -> None:
    # A VLOOKUP that failed in the sender's workbook: `#N/A` loaded as a department's name.
    raw = _raw(
        GOOD,
        _with(**{"Fravær-ID": "F2", "Afdeling": "#N/A"}),
        _with(**{"Fravær-ID": "F3", "Afdeling": "Err:502"}),  # LibreOffice's
        _with(**{"Fravær-ID": "F4", "Afdeling": "#2 Sundhed"}),  # a name that starts with #
        _with(**{"Fravær-ID": "#REF!"}),
    )
    result = conform(raw, SickLeave, aliases=ALIASES, parse=PARSE, keys=["absence_id"])
    assert result.valid["_source_row"].to_list() == [2, 5]
    assert result.failures.select("_source_row", "column", "check", "value").rows() == [
        (3, "department", "excel_error", "#N/A"),
        (4, "department", "excel_error", "Err:502"),
        (6, "absence_id", "excel_error", "#REF!"),
    ]
    # Listed under `parse: null_values`, it loads as empty instead (a required field fails).
    empty = ParseOptions(date_formats=("%d-%m-%Y",), decimal_comma=True, null_values=("#N/A",))
    result = conform(raw, SickLeave, aliases=ALIASES, parse=empty, keys=["absence_id"])
    assert ("department", "not_nullable") in result.failures.select("column", "check").rows()


def test_quarantine_never_holds_clear_personal_values() -> None:
    raw = _raw(
        GOOD,
        _with(**{"Fravær-ID": "F3", "CPR": "3202901234"}),
        _with(**{"Fravær-ID": "F6", "Slutdato": "01-03-2026"}),
    )
    result = conform(raw, SickLeave, aliases=ALIASES, parse=PARSE, keys=["absence_id"])
    values = [v for v in result.failures["value"].to_list() if v is not None]
    assert values == ["NNNNNNNNNN"]
    assert not any("0101901234" in str(v) or "3202901234" in str(v) for v in values)


def test_missing_column_rejects_the_batch_and_says_how_to_fix_it() -> None:
    raw = _raw(GOOD).rename({"CPR": "Personnummer"})
    with pytest.raises(SchemaBreak, match=r"missing required column\(s\) cpr.*Personnummer"):
        conform(raw, SickLeave, aliases=ALIASES, parse=PARSE, where="fravaer.csv")


def test_missing_nullable_fields_of_a_record_format_are_nulls() -> None:
    # JSON and XML writers leave out null keys: Slutdato (end_date) is nullable.
    raw = _raw(GOOD).drop("Slutdato")
    result = conform(raw, SickLeave, aliases=ALIASES, parse=PARSE, absent_is_null=True)
    assert result.valid["end_date"].to_list() == [None] and result.rows_valid == 1
    with pytest.raises(SchemaBreak, match=r"missing required column\(s\) end_date"):
        conform(raw, SickLeave, aliases=ALIASES, parse=PARSE)  # a table format's layout
    with pytest.raises(SchemaBreak, match=r"missing required column\(s\) cpr"):
        conform(_raw(GOOD).drop("CPR"), SickLeave, aliases=ALIASES, absent_is_null=True)


def test_a_missing_column_message_names_what_the_file_has() -> None:
    raw = _raw(GOOD).drop("CPR")  # every other header maps to a contract column
    with pytest.raises(SchemaBreak) as caught:
        conform(raw, SickLeave, aliases=ALIASES, parse=PARSE)
    headers = ", ".join(c for c in raw.columns if c != "_source_row")
    assert f"the file has only the headers {headers}, each mapped to another column" in str(
        caught.value
    )
    assert "(none left)" not in str(caught.value)


def test_a_batch_without_rows_is_empty_not_rejected() -> None:
    # An empty JSON array or XML document has no keys at all; nothing can be lost.
    empty = pl.DataFrame(schema={"_source_row": pl.Int64})
    result = conform(empty, SickLeave, aliases=ALIASES, parse=PARSE, absent_is_null=True)
    assert (result.rows_in, result.rows_valid, result.rows_quarantined) == (0, 0, 0)
    assert set(result.valid.columns) >= {"absence_id", "cpr", "end_date"}


@pytest.mark.parametrize("record_format", [False, True])
def test_headers_without_rows_are_checked_like_any_file(record_format) -> None:
    # A header-only export of the wrong layout passed `check` with exit 0 ("0 rows") and
    # loaded as an empty delivery: the headers say what the layout is, rows or not.
    wrong = pl.DataFrame(schema={"Foo": pl.String, "Bar": pl.String, "_source_row": pl.Int64})
    with pytest.raises(SchemaBreak, match=r"missing required column\(s\) absence_id.*Foo, Bar"):
        conform(wrong, SickLeave, aliases=ALIASES, parse=PARSE, absent_is_null=record_format)
    right = _raw(GOOD).clear()
    result = conform(right, SickLeave, aliases=ALIASES, parse=PARSE)
    assert (result.rows_in, result.rows_valid) == (0, 0)


def test_a_date_among_real_headers_is_listed_masked_not_taken_for_a_data_row() -> None:
    raw = _raw(GOOD).rename({"CPR": "Personnummer", "Afdeling": "2024-01-01"})
    with pytest.raises(SchemaBreak, match=r"the headers Personnummer, NNNN-NN-NN\. Map") as caught:
        conform(raw, SickLeave, aliases=ALIASES, parse=PARSE)
    assert "looks like data" not in str(caught.value)
    data_row = _raw(GOOD).rename(dict(zip(ALIASES, GOOD, strict=True)))  # no header row
    with pytest.raises(SchemaBreak, match="a first row that looks like data") as caught:
        conform(data_row, SickLeave, aliases=ALIASES, parse=PARSE)
    assert "0101901234" not in str(caught.value)


def test_extra_columns_are_reported_not_loaded() -> None:
    raw = _raw(GOOD).with_columns(pl.lit("x").alias("Ny kolonne"))
    result = conform(raw, SickLeave, aliases=ALIASES, parse=PARSE)
    assert result.extra_columns == ("Ny kolonne",)
    assert "Ny kolonne" not in result.valid.columns


def test_drift_policies_ignore_evolve_freeze() -> None:
    raw = _raw(GOOD).with_columns(pl.lit("Øst-2").alias("Afdelings-kode (ny)"))
    ignored = conform(raw, SickLeave, aliases=ALIASES, parse=PARSE)
    assert ignored.drift_decision == "ignored: Afdelings-kode (ny)"
    evolved = conform(raw, SickLeave, aliases=ALIASES, parse=PARSE, drift="evolve")
    assert evolved.added_columns == ("afdelings_kode_ny",)
    assert evolved.valid["afdelings_kode_ny"].to_list() == ["Øst-2"]
    assert evolved.drift_decision == "added: afdelings_kode_ny"
    with pytest.raises(SchemaBreak, match="schema_drift is freeze"):
        conform(raw, SickLeave, aliases=ALIASES, parse=PARSE, drift="freeze")


def test_evolve_refuses_a_new_column_holding_cpr_numbers() -> None:
    raw = _raw(GOOD).with_columns(pl.lit("010190-1234").alias("Pårørende"))
    with pytest.raises(SchemaBreak, match="Pårørende hold CPR-shaped values") as caught:
        conform(raw, SickLeave, aliases=ALIASES, parse=PARSE, drift="evolve")
    assert "010190-1234" not in str(caught.value)


@pytest.mark.parametrize(
    ("column", "values", "decision"),
    [
        ("Pårørende", "010190-1234", "rejected: Pårørende"),  # CPR-shaped values
        ("0101901234", "x", "rejected: NNNNNNNNNN"),  # a header that is a CPR number
        ("Hours", "x", "rejected: Hours"),  # its silver name, hours, is taken
    ],
)
def test_evolve_records_a_refused_new_column_as_a_rejection(column, values, decision) -> None:
    # quality.runs.drift_decision is where each drift decision is recorded; these refusals
    # said `none`, as if the file had had no new column at all.
    raw = _raw(GOOD).with_columns(pl.lit(values).alias(column))
    with pytest.raises(SchemaBreak) as caught:
        conform(raw, SickLeave, aliases=ALIASES, parse=PARSE, drift="evolve")
    assert caught.value.drift_decision == decision


def test_reader_lineage_columns_pass_through_and_are_not_drift() -> None:
    raw = _raw(GOOD).with_columns(pl.lit("Januar").alias("_sheet"))
    result = conform(raw, SickLeave, aliases=ALIASES, parse=PARSE, drift="freeze")
    assert result.extra_columns == () and result.valid["_sheet"].to_list() == ["Januar"]


def test_a_source_header_starting_with_underscore_is_data_not_lineage() -> None:
    # CKAN dumps carry `_id`; only the readers' own columns are lineage.
    raw = _raw(GOOD).with_columns(pl.lit("010203-1234").alias("_cpr"))
    with pytest.raises(SchemaBreak, match="_cpr not in the contract"):
        conform(raw, SickLeave, aliases=ALIASES, parse=PARSE, drift="freeze")
    with pytest.raises(SchemaBreak, match="_cpr hold CPR-shaped values"):
        conform(raw, SickLeave, aliases=ALIASES, parse=PARSE, drift="evolve")
    ignored = conform(raw, SickLeave, aliases=ALIASES, parse=PARSE)
    assert ignored.extra_columns == ("_cpr",) and "_cpr" not in ignored.valid.columns


def test_two_headers_mapping_to_one_field_reject_the_batch() -> None:
    raw = _raw(GOOD).with_columns(pl.lit("F9").alias("absence_id"))  # and Fravær-ID → it
    with pytest.raises(SchemaBreak, match="Fravær-ID and absence_id both map to 'absence_id'"):
        conform(raw, SickLeave, aliases=ALIASES, parse=PARSE, where="fravaer.csv")


def test_a_year_needs_four_digits_unless_the_format_says_two() -> None:
    # polars reads `%Y` from two digits: 01-02-24 would be the year 24 (or, under the ISO
    # fallback, 24 February of the year 1).
    raw = _raw(
        _with(**{"Startdato": "01-02-24", "Slutdato": None}),
        _with(**{"Fravær-ID": "F2", "Startdato": "01-02-2024", "Slutdato": None}),
    )
    result = conform(raw, SickLeave, aliases=ALIASES, parse=PARSE, keys=["absence_id"])
    assert [str(d) for d in result.valid["start_date"]] == ["2024-02-01"]
    assert result.failures.select("_source_row", "column", "check").rows() == [
        (2, "start_date", "type:Date")
    ]
    two_digits = ParseOptions(date_formats=("%d-%m-%Y", "%d-%m-%y"), decimal_comma=True)
    both = conform(raw, SickLeave, aliases=ALIASES, parse=two_digits, keys=["absence_id"])
    assert [str(d) for d in both.valid["start_date"]] == ["2024-02-01", "2024-02-01"]


@pytest.mark.parametrize(
    ("parse", "texts", "numbers"),
    [
        (  # Danish: `.` groups thousands, `,` marks decimals
            ParseOptions(decimal_comma=True, thousands_separator="."),
            ["1.234,56", "1.234.567,8", "-12,5", "7", "1,234.56", "1.5", "12.34,5"],
            [1234.56, 1234567.8, -12.5, 7.0, None, None, None],
        ),
        (  # decimal comma, no thousands separator: a `.` is ambiguous (1.234 = 1234?)
            ParseOptions(decimal_comma=True),
            ["1234,5", "1.234", "1,5"],
            [1234.5, None, 1.5],
        ),
        (  # English: `,` groups thousands
            ParseOptions(thousands_separator=","),
            ["1,234.56", "1.5", "12,34"],
            [1234.56, 1.5, None],
        ),
        (  # NaN and infinity parse as floats but are no quantity
            ParseOptions(),
            ["NaN", "inf", "-Infinity", "1e400", "1e3"],
            [None, None, None, None, 1000.0],
        ),
        (  # a space groups thousands, and so do the no-break, narrow and thin spaces that
            # Excel and Windows write in Nordic locales; grouped in threes all the same
            ParseOptions(decimal_comma=True, thousands_separator=" "),
            ["1 234,5", "1\u00a0234,5", "1\u202f234\u2009567", "12\u00a034,5", "1\u00a0234.5"],
            [1234.5, 1234.5, 1234567.0, None, None],
        ),
        (  # a YAML naming the no-break space takes a plain space too
            ParseOptions(decimal_comma=True, thousands_separator="\u00a0"),
            ["1 234,5", "1\u00a0234,5"],
            [1234.5, 1234.5],
        ),
        (  # where `.` groups thousands, a space does not
            ParseOptions(decimal_comma=True, thousands_separator="."),
            ["1\u00a0234,5"],
            [None],
        ),
    ],
)
def test_separators_only_count_where_the_yaml_puts_them(parse, texts, numbers) -> None:
    class Amounts(pa.DataFrameModel):
        amount: float = pa.Field(nullable=True)

    raw = pl.DataFrame({"amount": texts}).with_columns(
        pl.int_range(2, len(texts) + 2, dtype=pl.Int64).alias("_source_row")
    )
    result = conform(raw, Amounts, parse=parse)
    typed = dict(zip(result.valid["_source_row"], result.valid["amount"], strict=True))
    assert [typed.get(row) for row in range(2, len(texts) + 2)] == numbers
    assert set(result.failures["check"]) <= {"type:Float64"}
    assert result.rows_valid + result.rows_quarantined == len(texts)


def test_rows_of_several_sheets_are_told_apart_by_their_sheet() -> None:
    # A workbook read with `sheets:` numbers rows per sheet: row 2 of Januar is not row 2 of
    # Februar, and a failure in one must not remove (or count) the other.
    januar = _raw(GOOD, _with(**{"Fravær-ID": "F2"})).with_columns(pl.lit("Januar").alias("_sheet"))
    februar = _raw(
        _with(**{"Fravær-ID": "F3", "Timer": "mange"}), _with(**{"Fravær-ID": "F1"})
    ).with_columns(pl.lit("Februar").alias("_sheet"))
    result = conform(
        pl.concat([januar, februar]), SickLeave, aliases=ALIASES, parse=PARSE, keys=["absence_id"]
    )
    assert result.valid.select("_sheet", "_source_row").rows() == [("Januar", 2), ("Januar", 3)]
    assert result.failures.select("_source_row", "_sheet", "column", "check").rows() == [
        (2, "Februar", "hours", "type:Float64"),
        (3, "Februar", "absence_id", "duplicate_key"),
    ]
    assert (result.rows_in, result.rows_valid, result.rows_quarantined) == (4, 2, 2)


def test_a_column_mixing_date_formats_parses_every_known_one() -> None:
    # The first format is tried on every row, the others only where it failed: both kinds
    # of rows, and a value no format reads, must come out as with one pass over all formats.
    raw = _raw(
        GOOD,
        _with(**{"Fravær-ID": "F2", "Startdato": "2026-03-01"}),  # ISO, not the first format
        _with(**{"Fravær-ID": "F3", "Startdato": "1/3/2026"}),  # no format reads this
    )
    result = conform(raw, SickLeave, aliases=ALIASES, parse=PARSE, keys=["absence_id"])
    starts = dict(zip(result.valid["absence_id"], result.valid["start_date"], strict=True))
    assert {k: str(v) for k, v in starts.items()} == {"F1": "2026-03-02", "F2": "2026-03-01"}
    assert result.failures.select("_source_row", "column").rows() == [(4, "start_date")]


def test_boolean_fields_are_typed_under_their_own_name() -> None:
    class Flags(pa.DataFrameModel):
        id: str = pa.Field()
        protected: bool = pa.Field(nullable=True)

    raw = pl.DataFrame(
        {"id": ["a", "b", "c", "d"], "protected": ["true", "Nej", None, "maybe"]}
    ).with_columns(pl.int_range(2, 6, dtype=pl.Int64).alias("_source_row"))
    result = conform(raw, Flags)
    assert result.valid.columns == ["id", "protected", "_source_row"]
    assert result.valid["protected"].to_list() == [True, False, None]
    assert result.failures.select("_source_row", "column").rows() == [(5, "protected")]


def test_typing_dates_in_two_passes_equals_one_pass_over_every_format() -> None:
    """Dates and instants: a column of every kind of value, typed the way conform types it
    (first format everywhere, all formats on what it missed), equals all formats at once."""
    import random

    from lake.validation import _type_columns, _typed

    class Stamps(pa.DataFrameModel):
        day: pl.Date = pa.Field(nullable=True)
        at: pl.Datetime = pa.Field(nullable=True)

    rng = random.Random(7)
    days = [
        "02-03-2026",
        "2026-03-02",
        "2026-03-02 10:15:00",
        "31-02-2026",
        "1/3/2026",
        "02-03-26",  # a two-digit year: no format here reads it (not as the year 26)
        "",
        None,
    ]
    instants = [
        "2026-03-02T10:15:00Z",
        "2026-03-02T10:15:00.5+01:00",
        "2026-03-02 10:15:00.1",
        "2026-03-02T10:15:00",
        "02-03-2026",
        "2026-03-02",  # a bare date is midnight
        None,
    ]
    frame = pl.DataFrame(
        {
            "day": [rng.choice(days) for _ in range(3000)],
            "at": [rng.choice(instants) for _ in range(3000)],
        }
    )
    fields = dict(Stamps.to_schema().columns)
    parse = ParseOptions(date_formats=("%d-%m-%Y",))
    once = frame.select(_typed(pl.col(n), c.dtype.type, parse).alias(n) for n, c in fields.items())
    typed = _type_columns(frame, fields, parse)
    assert typed.equals(once)
    assert typed["day"].null_count() > frame["day"].null_count()  # some values no format reads


def test_a_bare_date_in_a_datetime_field_is_midnight() -> None:
    # A workbook renders a date-time column whose cells are all at 00:00 as dates.
    class Visits(pa.DataFrameModel):
        at: pl.Datetime = pa.Field(nullable=True)

    raw = pl.DataFrame({"at": ["2026-03-02", "2026-03-02 08:30:00", "02-03-26"]})
    result = conform(raw.with_columns(pl.int_range(2, 5).alias("_source_row")), Visits)
    assert [str(v) for v in result.valid["at"]] == ["2026-03-02 00:00:00", "2026-03-02 08:30:00"]
    assert result.failures.select("_source_row", "check").rows() == [
        (4, "type:Datetime(time_unit='us', time_zone=None)")
    ]


def test_a_cpr_key_with_and_without_its_dash_is_one_key() -> None:
    # Both spellings get one pseudonym in silver: a second row is a repeated key, not a row
    # that breaks unique_keys (or a merge) after the commit.
    class People(pa.DataFrameModel):
        cpr: str = pa.Field(metadata={"identifier": "cpr", "classification": "personal"})
        navn: str = pa.Field()

    raw = pl.DataFrame(
        {"cpr": ["010150-0000", "0101500000", "0202500000"], "navn": ["A", "B", "C"]}
    ).with_columns(pl.int_range(2, 5).alias("_source_row"))
    result = conform(raw, People, keys=["cpr"])
    assert result.valid["navn"].to_list() == ["A", "C"]
    assert result.failures.select("_source_row", "check", "value").rows() == [
        (3, "duplicate_key", "NNNNNNNNNN")
    ]


def test_a_date_field_takes_a_date_time_only_at_midnight() -> None:
    # A workbook renders date cells of a column with times as `YYYY-MM-DD 00:00:00`; a
    # later time is an instant, and its date alone would be a silent change.
    class Days(pa.DataFrameModel):
        day: pl.Date = pa.Field(nullable=True)

    raw = pl.DataFrame({"day": ["2024-03-01 00:00:00", "2024-03-01 13:30:00", "2024-03-02"]})
    result = conform(raw.with_columns(pl.int_range(2, 5).alias("_source_row")), Days)
    assert [str(d) for d in result.valid["day"]] == ["2024-03-01", "2024-03-02"]
    assert result.failures.select("_source_row", "check").rows() == [(3, "type:Date")]


def test_a_cpr_number_in_a_column_not_classified_personal_is_masked_in_quarantine() -> None:
    # An internal id or a free-text field can hold a CPR number all the same (a visit id that
    # is the citizen's number, a time field holding one): quarantine keeps the value for the
    # operator, with CPR-shaped numbers masked and the rest as it was.
    class Visits(pa.DataFrameModel):
        # Public: not masked in silver, yet no clear CPR number in quarantine either.
        visit_id: str = pa.Field(metadata={"classification": "public"})
        start: str = pa.Field(str_matches=r"^\d\d:\d\d$", metadata={"classification": "internal"})

    raw = pl.DataFrame(
        {
            "visit_id": ["0101901234", "0101901234", "B-3", "B-4", "B-5"],
            "start": ["08:00", "08:00", "ring 010190-1234", "0101901234 0202901234", "8.00"],
        }
    ).with_columns(pl.int_range(2, 7).alias("_source_row"))
    result = conform(raw, Visits, keys=["visit_id"])
    assert result.failures.select("_source_row", "check", "value").rows() == [
        (3, "duplicate_key", "NNNNNNNNNN"),
        (4, "str_matches('^\\d\\d:\\d\\d$')", "ring NNNNNN-NNNN"),
        (5, "str_matches('^\\d\\d:\\d\\d$')", "NNNNNNNNNN NNNNNNNNNN"),
        (6, "str_matches('^\\d\\d:\\d\\d$')", "8.00"),  # nothing CPR-shaped: as it was
    ]


def test_a_new_header_holding_a_cpr_number_is_reported_masked_and_never_added() -> None:
    # A wide export with a column per citizen, or a note typed into the header row: the
    # header names reach quality.runs, the schema_drift check's metadata and `check` output.
    raw = _raw(GOOD).with_columns(pl.lit("x").alias("0101901234"), pl.lit("y").alias("Ny"))
    ignored = conform(raw, SickLeave, aliases=ALIASES, parse=PARSE)
    assert ignored.extra_columns == ("NNNNNNNNNN", "Ny")
    assert ignored.drift_decision == "ignored: NNNNNNNNNN, Ny"
    with pytest.raises(SchemaBreak) as frozen:
        conform(raw, SickLeave, aliases=ALIASES, parse=PARSE, drift="freeze")
    assert frozen.value.drift_decision == "rejected: NNNNNNNNNN, Ny"
    # Added, it would be a silver column named after the number (c_0101901234).
    dashed = _raw(GOOD).with_columns(pl.lit("x").alias("Pårørende 010190-1234"))
    with pytest.raises(SchemaBreak, match="named like a CPR number") as evolved:
        conform(dashed, SickLeave, aliases=ALIASES, parse=PARSE, drift="evolve")
    assert "010190-1234" not in str(evolved.value)


def test_a_cpr_number_in_a_text_column_not_declared_an_identifier_never_reaches_silver() -> None:
    # A staff remark ("ring til datter 150285-1234"), an internal field that happens to hold
    # one: masked in the valid rows, the rest of the text kept. A key holding one is no mask
    # matter (two numbers would become one key): its row is quarantined until the contract
    # declares the column an identifier. Public columns are public data, left as they are.
    class Notes(pa.DataFrameModel):
        case_id: str = pa.Field(metadata={"classification": "internal"})
        note: str = pa.Field(nullable=True, metadata={"classification": "sensitive"})
        unit: str = pa.Field(metadata={"classification": "internal"})
        p_number: str = pa.Field(metadata={"classification": "public"})

    raw = pl.DataFrame(
        {
            "case_id": ["S-1", "S-2", "0101901234", "S-4 010190-1234", "2024000123"],
            "note": [
                "ring til datter 150285-1234, tlf 12345678",
                None,
                "x",
                "y",
                "konto 9912345678",
            ],
            "unit": ["1502851234", "Øst", "Øst", "Øst", "Øst"],
            "p_number": ["1012345678"] * 5,
        }
    ).with_columns(pl.int_range(2, 7).alias("_source_row"))
    result = conform(raw, Notes, keys=["case_id"])
    assert result.valid.select("case_id", "note", "unit", "p_number").rows() == [
        ("S-1", "ring til datter NNNNNN-NNNN, tlf 12345678", "NNNNNNNNNN", "1012345678"),
        ("S-2", None, "Øst", "1012345678"),
        # ten digits that cannot be a CPR number (no day 20 of month 24, no day 99) are data
        ("2024000123", "konto 9912345678", "Øst", "1012345678"),
    ]
    assert result.failures.select("_source_row", "column", "check", "value").rows() == [
        (4, "case_id", "cpr_shaped", "NNNNNNNNNN"),
        (5, "case_id", "cpr_shaped", "S-4 NNNNNN-NNNN"),
    ]


def test_a_cpr_number_written_with_a_space_is_masked_and_keeps_a_new_column_out() -> None:
    # "150285 1234", as typed by hand: it reached silver in the clear, and a new column of
    # such numbers evolved into silver unclassified.
    class Notes(pa.DataFrameModel):
        case_id: str = pa.Field(metadata={"classification": "internal"})
        note: str = pa.Field(metadata={"classification": "sensitive"})

    raw = pl.DataFrame(
        {"case_id": ["S-1", "S-2"], "note": ["ring til datter 150285 1234", "12 stk. 150285"]}
    ).with_columns(pl.int_range(2, 4).alias("_source_row"))
    result = conform(raw, Notes, keys=["case_id"])
    assert result.valid["note"].to_list() == ["ring til datter NNNNNN NNNN", "12 stk. 150285"]

    pårørende = raw.with_columns(pl.lit("010190\u00a01234").alias("pårørende"))
    with pytest.raises(SchemaBreak, match="hold CPR-shaped values"):
        conform(pårørende, Notes, keys=["case_id"], drift="evolve")


def test_null_value_markers_read_as_null_where_a_field_may_be_null() -> None:
    # Statistics exports write `..` or `:` for "no value": without null_values every marker
    # failed as a wrong number or date.
    parse = ParseOptions(("%d-%m-%Y",), True, None, null_values=("..", ":"))
    raw = _raw(_with(Slutdato=".."), _with(Timer=":"), _with(**{"Fravær-ID": "F2"}))
    result = conform(raw, SickLeave, aliases=ALIASES, parse=parse)
    assert result.rows_in == 3 and result.rows_valid + result.rows_quarantined == 3
    assert result.valid.filter(pl.col("end_date").is_null()).height == 1  # end_date nullable
    failed = result.failures.filter(pl.col("column") == "hours")
    assert failed.height == 1 and "type" not in failed["check"][0]  # hours must not be null
    without = conform(raw, SickLeave, aliases=ALIASES, parse=PARSE)
    assert set(without.failures["check"]) >= {"type:Date", "type:Float64"}


def test_date_formats_read_date_time_fields_a_utc_field_only_with_an_offset() -> None:
    # A fagsystem writes `01.02.2026 13:45`; listing its format under `date_formats` read
    # date fields only, so every date-time failed its type whatever the YAML said.
    class Visits(pa.DataFrameModel):
        at: pl.Datetime = pa.Field(nullable=True)
        utc: Annotated[pl.Datetime, "us", "UTC"] = pa.Field(nullable=True)

    values = ["01.02.2026 13:45", "1.2.2026 08:05", "01.02.2026 13:45 +0100", "2026-02-01"]
    raw = pl.DataFrame({"at": values, "utc": values, "_source_row": [1, 2, 3, 4]})
    parse = ParseOptions(date_formats=("%d.%m.%Y %H:%M", "%d.%m.%Y %H:%M %z"))
    result = conform(raw, Visits, parse=parse)
    assert [str(v) for v in result.valid["at"]] == ["2026-02-01 12:45:00", "2026-02-01 00:00:00"]
    # A time without an offset is the sender's local time, no UTC instant: a UTC field
    # fails on it rather than load it an hour off; with its offset it is the instant.
    assert [str(v) for v in result.valid["utc"]] == [
        "2026-02-01 12:45:00+00:00",
        "2026-02-01 00:00:00+00:00",
    ]
    assert result.failures.select("_source_row", "column").rows() == [(1, "utc"), (2, "utc")]
    typed = conform(raw.slice(0, 2).with_columns(utc=pl.lit(None, pl.String)), Visits, parse=parse)
    assert [str(v) for v in typed.valid["at"]] == ["2026-02-01 13:45:00", "2026-02-01 08:05:00"]


def test_danish_and_norwegian_month_names_read_as_english_ones_do() -> None:
    # `%b` and `%B` read English names only: `3. jan. 2024` passed and `3. maj 2024` failed,
    # so a January sample checked clean and May's delivery quarantined its rows.
    class Visits(pa.DataFrameModel):
        day: pl.Date = pa.Field(nullable=True)

    texts = ["3. jan. 2024", "3. maj 2024", "3. okt. 2024", "3. des. 2024", "3. Mai 2024"]
    raw = pl.DataFrame({"day": texts, "_source_row": range(1, 6)})
    parse = ParseOptions(date_formats=("%d. %b. %Y", "%d. %b %Y"))
    result = conform(raw, Visits, parse=parse)
    assert [str(d) for d in result.valid["day"]] == [
        "2024-01-03",
        "2024-05-03",
        "2024-10-03",
        "2024-12-03",
        "2024-05-03",
    ]
    full = pl.DataFrame(
        {"day": ["1. marts 2024", "1. mars 2024", "1. juni 2024", "1. oktober 2024"]}
    )
    typed = conform(full.with_row_index("_source_row"), Visits, parse=ParseOptions(("%d. %B %Y",)))
    assert [str(d) for d in typed.valid["day"]] == [
        "2024-03-01",
        "2024-03-01",
        "2024-06-01",
        "2024-10-01",
    ]


def test_a_zoned_parquet_timestamp_is_typed_as_its_instant() -> None:
    # The Parquet reader writes a zoned timestamp as `2026-03-29 03:30:00.5+02:00` (pandas'
    # and Spark's UTC timestamps are zoned); no instant format read an offset after a
    # space, so every row of such a column failed its type. PostgreSQL writes `+02`.
    import datetime as dt
    import io

    import pyarrow as pa_arrow
    import pyarrow.parquet as pq

    from connectors.formats import read_table

    class Readings(pa.DataFrameModel):
        at: pl.Datetime

    moments = [dt.datetime(2026, 3, 29, 1, 30, 0, 500000), dt.datetime(2026, 1, 1, 23, 0)]
    buffer = io.BytesIO()
    for zone in ("UTC", "Europe/Copenhagen"):
        instants = pa_arrow.array(moments, pa_arrow.timestamp("us", tz="UTC")).cast(
            pa_arrow.timestamp("us", tz=zone)
        )
        buffer = io.BytesIO()
        pq.write_table(pa_arrow.table({"at": instants}), buffer)
        raw = read_table(buffer.getvalue(), {"type": "parquet"}, source_name="maalinger.parquet")
        result = conform(raw, Readings)
        assert result.rows_quarantined == 0, result.failures
        assert result.valid["at"].to_list() == moments
    raw = pl.DataFrame({"at": ["2026-03-29 03:30:00.5+02"], "_source_row": [1]})
    assert conform(raw, Readings).valid["at"].to_list() == moments[:1]


def test_a_field_inside_a_json_object_points_at_flatten() -> None:
    record = dict(zip(ALIASES, GOOD, strict=True))
    cpr = record.pop("CPR")
    data = json.dumps([{**record, "Borger": {"CPR": cpr, "Navn": "Bo"}}]).encode()
    nested = read_table(data, {"type": "json"}, source_name="fravaer.json")
    with pytest.raises(SchemaBreak) as caught:
        conform(nested, SickLeave, aliases=ALIASES, parse=PARSE, where="fravaer.json")
    assert "`CPR` is inside the JSON object in column `Borger`: set `flatten: true`" in str(
        caught.value
    )
    assert cpr not in str(caught.value)

    flat = read_table(data, {"type": "json", "flatten": True}, source_name="fravaer.json")
    result = conform(
        flat, SickLeave, aliases={**ALIASES, "Borger.CPR": "cpr"}, parse=PARSE, where="x"
    )
    assert result.rows_valid == 1 and result.valid["cpr"].to_list() == [cpr]
