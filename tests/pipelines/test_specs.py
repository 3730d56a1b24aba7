"""A dataset YAML's mistakes are refused when it is read, naming the file and the key."""

from __future__ import annotations

import sys
import unicodedata
from pathlib import Path
from typing import Any

import polars as pl
import pytest
import yaml

import schemas
from lake import erasure
from lake.validation import SOURCE_ROW
from pipelines.specs import DATASETS_DIR, SpecError, load_spec


def _with_parse(tmp_path: Path, parse: Any) -> Path:
    raw = yaml.safe_load((DATASETS_DIR / "sick_leave.yaml").read_text(encoding="utf-8"))
    raw["parse"] = parse
    path = tmp_path / "sick_leave.yaml"
    path.write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
    return path


def test_the_parse_block_is_read(tmp_path: Path) -> None:
    parse = {"date_formats": ["%d.%m.%Y", "%Y-%m-%d"], "decimal_comma": True}
    spec = load_spec(
        _with_parse(tmp_path, {**parse, "thousands_separator": "\u00a0", "null_values": [".."]})
    )
    assert spec.parse.date_formats == ("%d.%m.%Y", "%Y-%m-%d")
    assert spec.parse.decimal_comma and spec.parse.thousands_separator == "\u00a0"
    assert spec.parse.null_values == ("..",)


@pytest.mark.parametrize(
    ("parse", "message"),
    [
        # A string is not a list: it used to become one format per character.
        ({"date_formats": "%d-%m-%Y"}, r"parse\.date_formats must be a list"),
        ({"date_format": ["%d-%m-%Y"]}, r"unknown parse keys \['date_format'\]"),
        ({"thousand_separator": "."}, r"unknown parse keys \['thousand_separator'\]"),
        # A quoted "false" used to count as true.
        ({"decimal_comma": "false"}, r"parse\.decimal_comma must be true or false"),
        ({"thousands_separator": ".."}, r"parse\.thousands_separator must be one"),
        # The decimal mark as the thousands separator read `1,234` as 1234, not 1.234.
        (
            {"decimal_comma": True, "thousands_separator": ","},
            r"parse\.thousands_separator is ',', the decimal mark under decimal_comma: true",
        ),
        ({"null_values": ".."}, r"parse\.null_values must be a list"),
        ({"null_values": [""]}, r"parse\.null_values must be a list"),
        (["%d-%m-%Y"], r"`parse:` must be a mapping"),
    ],
)
def test_a_wrong_parse_block_names_the_file_and_key(
    tmp_path: Path, parse: Any, message: str
) -> None:
    with pytest.raises(SpecError, match=message) as error:
        load_spec(_with_parse(tmp_path, parse))
    assert "sick_leave.yaml" in str(error.value)


def _with(tmp_path: Path, **changes: Any) -> Path:
    raw = yaml.safe_load((DATASETS_DIR / "sick_leave.yaml").read_text(encoding="utf-8"))
    for dotted, value in changes.items():
        *parents, key = dotted.split("__")
        target = raw
        for parent in parents:
            target = target[parent]
        target[key] = value
    path = tmp_path / "sick_leave.yaml"
    path.write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        # Each of these raised TypeError/ValueError (or loaded wrong), and a raw error in one
        # YAML used to take the whole code location down.
        ({"keys": "absence_id"}, r"keys must be a list of column names"),
        ({"keys": 5}, r"keys must be a list of column names"),
        ({"source": "files"}, r"`source:` must be a mapping with a `type:`"),
        ({"format": "csv"}, r"`format:` must be a mapping with a `type:`"),
        ({"format__type": "xlsx"}, r"format\.type 'xlsx' is not one we read; one of csv, "),
        ({"source__pattern": 5}, r"source\.pattern must be a file pattern"),
        # Taken for a drop folder: nothing loaded, and nothing said why.
        ({"source__type": "filez"}, r"source\.type 'filez' is not a source we know; one of "),
        ({"quality__freshness_hours": "soon"}, r"quality\.freshness_hours must be a number"),
        ({"quality__quarantine_error": True}, r"quality\.quarantine_error must be a number"),
        # Accepted, then every load was stale (or every volume check failed) for ever.
        ({"quality__freshness_hours": -24}, r"quality\.freshness_hours must be above 0"),
        ({"quality__freshness_hours": 0}, r"quality\.freshness_hours must be above 0"),
        ({"quality__freshness_hours": float("nan")}, r"quality\.freshness_hours must be above"),
        ({"quality__volume_tolerance": -0.2}, r"quality\.volume_tolerance must be 0 or more"),
        ({"quality__volume_tolerance": float("inf")}, r"quality\.volume_tolerance must be 0 or"),
        # Accepted, then the load failed on polars' DuplicateError about a projection.
        ({"keys": ["absence_id", "absence_id"]}, r"keys name `absence_id` twice"),
        ({"contact": ["a@kommune.example", "b@kommune.example"]}, r"contact must be one e-mail"),
        ({"contact": "HR-afdelingen"}, r"contact must be one e-mail address"),
        # Dagster refuses these when the asset is made: the whole code location used to go
        # down with a DagsterInvalidDefinitionError instead of this dataset alone.
        ({"sector": "ældrepleje"}, r"sector 'ældrepleje' must be letters a-z, digits and _"),
        ({"sector": "human resources"}, r"sector 'human resources' must be letters a-z"),
        ({"sector": 12}, r"sector 12 must be letters a-z, digits and _"),
        ({"owner": "hr@kommune"}, r"owner must be an e-mail address or 'team:<name>'"),
        ({"owner": "team:"}, r"owner must be an e-mail address or 'team:<name>'"),
        # An int used to raise AttributeError from `ref.partition`.
        ({"contract": 5}, r"contract must look like 'module:Class'"),
        # The reader's own option checks, at read time these moved the vendor's file to
        # rejected/ for a mistake in the YAML.
        ({"format__delimeter": ";"}, r"unknown `format:` option `delimeter` for type csv"),
        ({"format__encoding": "cp-1252"}, r"unknown encoding `cp-1252`"),
        ({"format__header_row": -1}, r"`header_row`"),
        ({"format__skip_rows_matching": "(I alt"}, r"skip_rows_matching"),
        ({"format__container": "rar"}, r"`container` must be one of zip, gzip, auto"),
        ({"format__member": "*.csv"}, r"`member` set but no `container`"),
        ({"format": {"type": "xml"}}, r"`record_path` is required for type xml"),
        ({"format": {"type": "xml", "record_path": "a[1]"}}, r"record_path"),
        ({"format": {"type": "excel", "sheet": "A", "sheets": ["B"]}}, r"both `sheet` and"),
        ({"format": {"type": "fixed_width"}}, r"`encoding` is required for type fixed_width"),
        ({"format": {"type": "parquet", "encoding": "utf-8"}}, r"parquet takes no `format:`"),
        ({"format": {"type": "ndjson", "record_path": "x"}}, r"option `record_path` for type"),
    ],
)
def test_a_wrong_value_names_the_file_and_key(
    tmp_path: Path, changes: dict[str, Any], message: str
) -> None:
    with pytest.raises(SpecError, match=message) as error:
        load_spec(_with(tmp_path, **changes))
    assert "sick_leave.yaml" in str(error.value)


def test_a_theme_is_read_as_one_code_or_a_list(tmp_path: Path) -> None:
    assert load_spec(_with(tmp_path, theme="GOVE")).themes == ("GOVE",)
    assert load_spec(_with(tmp_path, theme=["HEAL", "SOCI", "HEAL"])).themes == ("HEAL", "SOCI")
    assert load_spec(DATASETS_DIR / "sick_leave.yaml").themes == ("GOVE",)


@pytest.mark.parametrize(
    ("theme", "message"),
    [
        ("health", r"theme 'health' is not in the EU data-theme vocabulary \(did you mean HEAL"),
        ("soci", r"did you mean SOCI, Population and society\?"),
        (["GOVE", "TRANS"], r"theme 'TRANS' .* \(did you mean TRAN, Transport\?\)"),
        ("XYZ", r"theme 'XYZ' is not in the EU data-theme vocabulary; use one or more of AGRI"),
        ({"code": "GOVE"}, r"theme must be a code or a list of codes"),
    ],
)
def test_a_theme_outside_the_eu_vocabulary_suggests_the_code_meant(
    tmp_path: Path, theme: Any, message: str
) -> None:
    with pytest.raises(SpecError, match=message) as error:
        load_spec(_with(tmp_path, theme=theme))
    assert "sick_leave.yaml" in str(error.value)


def test_a_file_that_is_not_text_is_a_spec_error(tmp_path: Path) -> None:
    path = tmp_path / "sick_leave.yaml"
    path.write_bytes(b"\xff\xfe name: x")
    with pytest.raises(SpecError, match="not valid YAML"):
        load_spec(path)


def _named(tmp_path: Path, name: str) -> Path:
    """sick_leave's YAML saved as `<name>.yaml` with `name: <name>`."""
    raw = yaml.safe_load((DATASETS_DIR / "sick_leave.yaml").read_text(encoding="utf-8"))
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump({**raw, "name": name}, allow_unicode=True), encoding="utf-8")
    return path


def test_a_dataset_cannot_take_the_name_of_kommunelakes_own_assets(tmp_path: Path) -> None:
    # maintenance/shared_tables exists already: a dataset of that name would stop the code
    # location from loading (two assets with one key)
    with pytest.raises(SpecError, match=r"shared_tables.yaml: the name 'shared_tables' is taken"):
        load_spec(_named(tmp_path, "shared_tables"))


def test_a_name_dagster_cannot_use_is_a_spec_error(tmp_path: Path) -> None:
    # Dagster refuses "silver__sygefravær_schema" as a name: the code location used to go down.
    with pytest.raises(SpecError, match=r"sygefravær.yaml: the name 'sygefravær' must be"):
        load_spec(_named(tmp_path, "sygefravær"))


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("1 / 0\n", r"ZeroDivisionError: division by zero"),
        ("def broken(:\n", r"SyntaxError: invalid syntax"),
        (
            "import pandera.polars as pa\n\nclass Probe(pa.DataFrameModel):\n    a: int = nope\n",
            r"NameError: name 'nope' is not defined",
        ),
    ],
)
def test_a_contract_module_that_fails_to_import_is_a_spec_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, body: str, message: str
) -> None:
    # Any error in a contract module used to escape load_spec and take the code location down.
    (tmp_path / "probe_broken_contract.py").write_text(body, encoding="utf-8")
    monkeypatch.setattr(schemas, "__path__", [*schemas.__path__, str(tmp_path)])
    monkeypatch.delitem(sys.modules, "schemas.probe_broken_contract", raising=False)
    with pytest.raises(SpecError, match=message) as error:
        load_spec(_with(tmp_path, contract="probe_broken_contract:Probe"))
    assert "sick_leave.yaml: contract 'probe_broken_contract:Probe' cannot be loaded" in str(
        error.value
    )
    assert "probe_broken_contract.py" in str(error.value)


def test_a_contract_field_naming_a_concept_the_glossary_lacks_is_a_spec_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Two words for one thing (`kommune` beside `municipality`) is what the glossary prevents.
    (tmp_path / "probe_concept_contract.py").write_text(
        "import pandera.polars as pa\nfrom schemas.fields import field\n\n"
        "class Probe(pa.DataFrameModel):\n"
        "    absence_id: str = field('Id.', 'internal')\n"
        "    kommunekode: str = field('Municipality code.', 'public', concept='kommune')\n",
        encoding="utf-8",
    )
    monkeypatch.setattr(schemas, "__path__", [*schemas.__path__, str(tmp_path)])
    monkeypatch.delitem(sys.modules, "schemas.probe_concept_contract", raising=False)
    path = _with(tmp_path, contract="probe_concept_contract:Probe", columns={}, keys=["absence_id"])
    with pytest.raises(SpecError) as error:
        load_spec(path)
    message = str(error.value)
    assert "sick_leave.yaml: contract probe_concept_contract:Probe" in message
    assert "`kommunekode` names concept 'kommune'" in message
    assert "did you mean 'municipality'?" in message


def test_every_shipped_contract_names_only_concepts_the_glossary_defines() -> None:
    from pipelines.specs import load_specs

    bench = load_spec(Path(__file__).parents[2] / "bench" / "case_extract.yaml")
    assert [spec.name for spec in load_specs()] and bench.name == "case_extract"


def test_columns_keys_are_read_as_the_readers_name_headers(tmp_path: Path) -> None:
    # As written, these keys matched no header: a line break copied from a wrapped Excel
    # header, "æ" saved decomposed by a Mac editor, a zero-width space from a web page.
    columns = {
        "Fravær-ID": "absence_id",
        "Fraværs-\ndage": "days",
        unicodedata.normalize("NFD", "Afdeling på kort"): "department",
        "\u200bTimer": "hours",
        "Startdato ": "start_date",
    }
    spec = load_spec(_with(tmp_path, columns=columns))
    assert spec.columns == {
        "Fravær-ID": "absence_id",
        "Fraværs- dage": "days",
        "Afdeling på kort": "department",
        "Timer": "hours",
        "Startdato": "start_date",
    }


def test_columns_keys_that_read_as_one_header_but_map_apart_are_refused(tmp_path: Path) -> None:
    columns = {"Startdato": "start_date", "Start\u200bdato": "end_date", "Start dato": "start_date"}
    with pytest.raises(SpecError) as error:
        load_spec(_with(tmp_path, columns=columns))
    assert (
        # repr shows the invisible character, so the reader can find it
        "sick_leave.yaml: `columns:` keys 'Startdato' and 'Start\\u200bdato' are the same "
        in str(error.value)
    )
    assert "map to 'start_date' and 'end_date'; keep one of them" in str(error.value)
    # old and new names of one header mapping to the same field are aliases, not a clash
    spec = load_spec(
        _with(tmp_path, columns={"Startdato": "start_date", "Start dato": "start_date"})
    )
    assert spec.columns == {"Startdato": "start_date", "Start dato": "start_date"}


def test_columns_that_is_not_a_mapping_is_refused(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match=r"`columns:` must map source headers to contract fields"):
        load_spec(_with(tmp_path, columns=["Startdato", "start_date"]))


def test_erasure_searches_a_header_mapped_with_a_line_break_as_the_reader_names_it(
    tmp_path: Path,
) -> None:
    # The YAML key copied from a wrapped Excel header ("CPR-\nnummer") matched no header
    # (readers name it "CPR- nummer"), so the subject's rows in a delivery were not found.
    spec = load_spec(_with(tmp_path, columns={"CPR-\nnummer": "cpr"}))
    raw = pl.DataFrame({"CPR- nummer": ["010190-1234", "0202851234"], SOURCE_ROW: [2, 3]})
    headers = erasure.raw_headers(raw.columns, ["cpr"], spec.columns)
    assert headers == ["CPR- nummer"]
    assert erasure.subject_rows(raw, headers, "0101901234")[SOURCE_ROW].to_list() == [2]
