"""Real municipal open data (Aarhus, Københavns Kommune, Stavanger CSV and XML) via read_table.

Expectations are computed independently with the stdlib csv module, not copied from the
reader's output, so a reader bug cannot agree with itself.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path
from xml.etree import ElementTree

import polars as pl
import pytest

from connectors.formats import FormatError, read_table

OPENDATA = Path(__file__).parents[2].parent / "shared" / "fixtures" / "real" / "opendata"

# file, delimiter, values a person would look for (with æøå where the file has them)
FILES = [
    (
        "stavanger_barnehager_dataset.original.csv",
        ";",
        {"barnehagens_navn": "Ørnestein Gårdsbarnehage", "adresse": "Haugåsstubben 1D"},
    ),
    (
        "stavanger_investeringsbudsjett2016_dataset.original.csv",
        ";",
        {"art_tekst": "PÅKOSTNING/NYBYGG BYGNINGER", "virksomhetsomraade": "Stavanger eiendom"},
    ),
    (
        "aarhus_realtids-trafikdata_metadata_c3097987-c394-4092-ad1d-ad86a81dbf37.csv",
        ",",
        {"POINT_1_STREET": "Åby Ringvej", "POINT_2_NAME": "Paludan Müllers Vej"},
    ),
    (
        "aarhus_realtids-trafikdata_b3eeb0ff-c8a8-4824-99d6-e0a3747c8b0d.csv",
        ",",
        {"TIMESTAMP": "2024-03-22T07:15:00", "status": "OK"},
    ),
    (
        "kk_statistikbank_KKBYG1_before_1850.csv",
        ";",
        {"OMRKK": "København i alt", "OPFØRELSESÅR": "Før 1850"},
    ),
]


def stdlib_records(path: Path, delimiter: str) -> tuple[list[str], list[tuple[int, list[str]]]]:
    """Header and (start line, fields) of each non-empty record, by the stdlib csv module."""
    text = path.read_bytes().decode("utf-8-sig")
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    header = next(reader)
    records = []
    start = reader.line_num + 1
    for row in reader:
        if any(field.strip() for field in row):
            records.append((start, row))
        start = reader.line_num + 1
    return [h.strip() for h in header], records


@pytest.fixture(scope="module", autouse=True)
def _fixtures_present() -> None:
    if not (OPENDATA / "PROVENANCE.md").is_file():
        pytest.fail(f"real fixtures missing at {OPENDATA}: shared/ must sit beside the repo")


@pytest.mark.parametrize(("name", "delimiter", "known"), FILES, ids=[f[0][:30] for f in FILES])
def test_real_csv_matches_stdlib_reading(name: str, delimiter: str, known: dict[str, str]) -> None:
    path = OPENDATA / name
    header, records = stdlib_records(path, delimiter)

    frame = read_table(path.read_bytes(), {"type": "csv"}, source_name=name)

    assert frame.columns == [*header, "_source_row"]
    assert frame.height == len(records)
    assert all(dtype == pl.String for dtype in frame.dtypes[:-1])
    assert frame.schema["_source_row"] == pl.Int64
    assert frame["_source_row"].to_list() == [line for line, _ in records]
    expected = [(*(field.strip() or None for field in row), line) for line, row in records]
    assert frame.rows() == expected
    for column, value in known.items():
        assert value in frame[column].to_list()
    assert not any(frame.select(pl.exclude("_source_row").str.contains("\ufffd").any()).row(0))


def test_kk_statistikbank_bom_and_crlf_do_not_leak_into_names_or_values() -> None:
    name = "kk_statistikbank_KKBYG1_before_1850.csv"
    frame = read_table((OPENDATA / name).read_bytes(), {"type": "csv"}, source_name=name)
    assert frame.columns[0] == "OMRKK"  # not "\ufeffOMRKK"
    assert not any(frame.select(pl.exclude("_source_row").str.contains("\r").any()).row(0))


def test_stavanger_miljostasjoner_has_a_ragged_row_and_it_is_reported_not_dropped() -> None:
    # The published file has `Øvre Sandvikveien:J` (a colon where a `;` belongs) on one line.
    name = "stavanger_miljostasjoner_dataset.original.csv"
    path = OPENDATA / name
    header, records = stdlib_records(path, ";")
    short = [line for line, row in records if len(row) != len(header)]
    assert len(short) == 1

    with pytest.raises(FormatError) as caught:
        read_table(path.read_bytes(), {"type": "csv"}, source_name=name)

    assert caught.value.line == short[0]
    assert f"{name}, line {short[0]}: the row has 5 fields but the header" in str(caught.value)
    assert "\n" not in str(caught.value)


# Datahotellet's XML sidecars: field definitions (repeating <field>) and dataset metadata.
XML_FILES = sorted(p.name for p in OPENDATA.glob("stavanger_*.xml"))


def stdlib_xml_records(path: Path, record_path: str) -> list[dict[str, str | None]]:
    """Each record's child elements as {tag: stripped text or None}, by a whole-tree parse."""
    root = ElementTree.fromstring(path.read_bytes())  # trusted fixture: the stdlib parser is fine
    steps = record_path.split("/")
    records = [root] if steps == [root.tag] else root.findall("/".join(steps[1:]))
    return [{child.tag: (child.text or "").strip() or None for child in r} for r in records]


def test_real_xml_files_are_all_here() -> None:
    assert len(XML_FILES) == 6
    assert sum(name.endswith("_fields.xml") for name in XML_FILES) == 3


@pytest.mark.parametrize("name", XML_FILES)
def test_real_xml_matches_a_whole_tree_parse(name: str) -> None:
    record_path = "metadata" if name.endswith("_meta.xml") else "datasetFields/fields/field"
    path = OPENDATA / name
    expected = stdlib_xml_records(path, record_path)

    frame = read_table(
        path.read_bytes(), {"type": "xml", "record_path": record_path}, source_name=name
    )

    assert frame.columns == [*expected[0], "_source_row"]
    assert frame.rows() == [(*r.values(), i) for i, r in enumerate(expected, start=1)]
    assert all(dtype == pl.String for dtype in frame.dtypes[:-1])
    # The bare-name form finds the same records.
    bare = read_table(
        path.read_bytes(),
        {"type": "xml", "record_path": record_path.rsplit("/", 1)[-1]},
        source_name=name,
    )
    assert bare.equals(frame)


def test_real_xml_field_definitions_keep_æøå_and_match_the_csv_header() -> None:
    name = "stavanger_investeringsbudsjett2016"
    fields = read_table(
        (OPENDATA / f"{name}_fields.xml").read_bytes(),
        {"type": "xml", "record_path": "field"},
        source_name=f"{name}_fields.xml",
    )
    assert "Virksomhetsområde" in fields["name"].to_list()
    assert "Beløp" in fields["name"].to_list()
    data = read_table(
        (OPENDATA / f"{name}_dataset.original.csv").read_bytes(),
        {"type": "csv"},
        source_name=f"{name}_dataset.original.csv",
    )
    assert fields["shortName"].to_list() == data.columns[:-1]


def test_real_xml_with_a_wrong_record_path_suggests_the_right_one() -> None:
    name = "stavanger_barnehager_fields.xml"
    with pytest.raises(FormatError) as caught:
        read_table(
            (OPENDATA / name).read_bytes(),
            {"type": "xml", "record_path": "datasetFields/field"},
            source_name=name,
        )
    assert str(caught.value) == (
        f"{name}: no element matches `record_path` 'datasetFields/field'. Set `record_path` to"
        " the repeating record element; the most repeated element is"
        " `datasetFields/fields/field` (6 times)"
    )
