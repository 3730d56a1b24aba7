"""Behaviour of the synthetic Demo Kommune generator (connectors.demo)."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import zipfile
from datetime import date, datetime
from pathlib import Path

import polars as pl
import pytest

from connectors.demo import DatasetSummary, DemoSummary, generate

SMALL = 2000
BIG = 20_000
FILES = {
    "cpr_persons": "cpr_persons/cpr_personer.csv",
    "dar_addresses": "dar_addresses/dar_adresser.csv",
    "bbr_dwellings": "bbr_dwellings/bbr_enheder.json",
    "cvr_companies": "cvr_companies/cvr_virksomheder.json",
    "home_care_visits": "home_care_visits/hjemmepleje_besoeg_2026-10.xlsx",
    "sick_leave": "sick_leave/sygefravaer_2026.csv",
    "meal_delivery_list": "meal_delivery_list/madudbringning.xlsx",
}
HOME_CARE_HEADER = [
    "Besøgs-ID", "CPR-nummer", "Besøgsdato", "Starttid", "Varighed (min)", "Ydelse",
    "Medarbejder-ID", "Distrikt",
]  # fmt: skip
MEAL_HEADER = ["Navn", "CPR", "Adresse", "Postnr", "By", "Kost", "Startdato", "Bemærkning"]
DISTRICTS = {"Midtbyen", "Nørrebro Øst", "Søndermark", "Vesterlund", "Havnekvarteret", "Ålykke"}


# --- helpers that re-derive the rules independently of the generator ------------------------


def century(yy: int, seventh: int) -> int:
    """The CPR Office's table, written out again so the test does not trust the generator."""
    if seventh <= 3:
        return 1900
    if seventh in (4, 9):
        return 2000 if yy <= 36 else 1900
    return 2000 if yy <= 57 else 1800


def cpr_birth(pnr: str) -> date | None:
    yy = int(pnr[4:6])
    try:
        return date(century(yy, int(pnr[6])) + yy, int(pnr[2:4]), int(pnr[:2]))
    except ValueError:
        return None


def cvr_valid(number: int) -> bool:
    text = str(number)
    weights = (2, 7, 6, 5, 4, 3, 2, 1)
    return len(text) == 8 and sum(int(c) * w for c, w in zip(text, weights, strict=True)) % 11 == 0


def is_date(text: str, fmt: str = "%Y-%m-%d") -> bool:
    try:
        datetime.strptime(text, fmt)
    except ValueError:
        return False
    return True


def csv_lines(path: Path, delimiter: str, encoding: str = "utf-8") -> dict[int, list[str]]:
    """Data records keyed by their line number (header = line 1)."""
    with path.open(encoding=encoding, newline="") as handle:
        rows = list(csv.reader(handle, delimiter=delimiter))
    return {number: row for number, row in enumerate(rows[1:], start=2)}


def read_visits(path: Path, **options: object) -> pl.DataFrame:
    return pl.read_excel(path, engine="calamine", read_options={"header_row": 3, **options})  # type: ignore[arg-type]


def defect_rows(summary: DemoSummary, dataset: str, kind: str) -> tuple[int, ...]:
    return summary.datasets[dataset].defects[kind]


def digest(drop: Path) -> dict[str, str]:
    return {
        str(p.relative_to(drop)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(drop.rglob("*"))
        if p.is_file()
    }


# --- fixtures ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, DemoSummary]:
    home = tmp_path_factory.mktemp("small")
    return home / "drop", generate(home, persons=SMALL)


@pytest.fixture(scope="module")
def big(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, DemoSummary]:
    home = tmp_path_factory.mktemp("big")
    return home / "drop", generate(home, persons=BIG)


@pytest.fixture(scope="module")
def cpr_by_line(small: tuple[Path, DemoSummary]) -> dict[int, list[str]]:
    return csv_lines(small[0] / FILES["cpr_persons"], ";")


@pytest.fixture(scope="module")
def dar_ids(small: tuple[Path, DemoSummary]) -> set[str]:
    return {row[0] for row in csv_lines(small[0] / FILES["dar_addresses"], ",").values()}


# --- determinism ------------------------------------------------------------------------------


def test_same_arguments_give_byte_identical_files(tmp_path: Path) -> None:
    first = generate(tmp_path / "a", persons=SMALL, seed=7)
    second = generate(tmp_path / "b", persons=SMALL, seed=7)
    assert first == second
    a, b = digest(tmp_path / "a" / "drop"), digest(tmp_path / "b" / "drop")
    assert a == b
    assert set(a) == {*FILES.values(), "_demo_manifest.json"}


def test_xlsx_has_no_clock_readings(small: tuple[Path, DemoSummary]) -> None:
    for name in ("home_care_visits", "meal_delivery_list"):
        with zipfile.ZipFile(small[0] / FILES[name]) as archive:
            assert {info.date_time for info in archive.infolist()} == {(1980, 1, 1, 0, 0, 0)}
            core = archive.read("docProps/core.xml").decode()
        assert "<dcterms:created" in core and "2026-11-01T" in core


def test_other_seed_gives_other_bytes(tmp_path: Path, small: tuple[Path, DemoSummary]) -> None:
    generate(tmp_path, persons=SMALL, seed=2027)
    ours, theirs = digest(small[0]), digest(tmp_path / "drop")
    for path in FILES.values():
        assert ours[path] != theirs[path], path


def test_unchanged_files_are_not_rewritten(tmp_path: Path) -> None:
    generate(tmp_path, persons=300)
    before = {p: p.stat() for p in (tmp_path / "drop").rglob("*") if p.is_file()}
    generate(tmp_path, persons=300)
    after = {p: p.stat() for p in (tmp_path / "drop").rglob("*") if p.is_file()}
    assert before.keys() == after.keys()  # no temp files left behind either
    for path, stat in before.items():
        assert (after[path].st_ino, after[path].st_mtime_ns) == (stat.st_ino, stat.st_mtime_ns)
    generate(tmp_path, persons=301)
    changed = (tmp_path / "drop" / FILES["cpr_persons"]).stat()
    assert changed.st_ino != before[tmp_path / "drop" / FILES["cpr_persons"]].st_ino


def test_rejects_nonsense_arguments(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        generate(tmp_path, persons=0)
    with pytest.raises(ValueError):
        generate(tmp_path, persons=10, defect_rate=0.9)


# --- manifest ---------------------------------------------------------------------------------


def test_manifest_matches_summary_and_files(small: tuple[Path, DemoSummary]) -> None:
    drop, summary = small
    manifest = json.loads((drop / "_demo_manifest.json").read_text(encoding="utf-8"))
    assert manifest["seed"] == summary.seed == 2026
    assert manifest["persons"] == summary.persons == SMALL
    assert set(manifest["datasets"]) == set(FILES)
    for name, path in FILES.items():
        entry, ds = manifest["datasets"][name], summary.datasets[name]
        assert isinstance(ds, DatasetSummary)
        assert entry["path"] == ds.path == path
        assert entry["file"] == Path(path).name
        assert entry["rows"] == ds.rows > 0
        for kind, detail in entry["defects"].items():
            assert detail["count"] == len(detail["rows"]) == len(ds.defects[kind])
            assert detail["rows"] == sorted(detail["rows"])
    counted = {
        "cpr_persons": len(csv_lines(drop / FILES["cpr_persons"], ";")),
        "dar_addresses": len(csv_lines(drop / FILES["dar_addresses"], ",")),
        "sick_leave": len(csv_lines(drop / FILES["sick_leave"], ";", "cp1252")),
        "bbr_dwellings": len(json.loads((drop / FILES["bbr_dwellings"]).read_text())["enheder"]),
        "cvr_companies": len((drop / FILES["cvr_companies"]).read_text().splitlines()),
        "home_care_visits": read_visits(drop / FILES["home_care_visits"]).height,
    }
    for name, rows in counted.items():
        assert summary.datasets[name].rows == rows, name


def test_defects_are_at_the_documented_rate(small: tuple[Path, DemoSummary]) -> None:
    for name, ds in small[1].datasets.items():
        duplicates = len(ds.defects.get("duplicate_key", ()))
        clean_rows = ds.rows - duplicates  # duplicates are inserted rows
        all_rows = [row for rows in ds.defects.values() for row in rows]
        assert len(all_rows) == len(set(all_rows)), f"{name}: a row has two defects"
        for kind, rows in ds.defects.items():
            expected = round(0.01 * clean_rows)
            if clean_rows >= 100:
                assert len(rows) == max(1, expected), (name, kind)
            else:
                assert len(rows) == expected, (name, kind)


def test_zero_defect_rate_gives_clean_files(tmp_path: Path) -> None:
    summary = generate(tmp_path, persons=500, defect_rate=0)
    for ds in summary.datasets.values():
        assert all(not rows for rows in ds.defects.values())
    lines = csv_lines(tmp_path / "drop" / FILES["cpr_persons"], ";")
    pnrs = [row[0] for row in lines.values()]
    assert len(set(pnrs)) == len(pnrs) == summary.datasets["cpr_persons"].rows


def test_rows_scale_with_persons(
    small: tuple[Path, DemoSummary], big: tuple[Path, DemoSummary]
) -> None:
    for name in ("cpr_persons", "dar_addresses", "bbr_dwellings", "cvr_companies"):
        ratio = big[1].datasets[name].rows / small[1].datasets[name].rows
        assert 8 < ratio < 12, name
    for name in ("home_care_visits", "sick_leave", "meal_delivery_list"):
        assert big[1].datasets[name].rows > 4 * small[1].datasets[name].rows, name


# --- CPR --------------------------------------------------------------------------------------


def test_cpr_extract_layout(small: tuple[Path, DemoSummary]) -> None:
    raw = (small[0] / FILES["cpr_persons"]).read_bytes()
    assert not raw.startswith(b"\xef\xbb\xbf") and b"\r\n" not in raw
    assert raw.split(b"\n", 1)[0] == (
        b"PNR;FORNAVN;EFTERNAVN;FOEDSELSDATO;KOEN;CIVILSTAND;ADRESSE_ID;TILFLYTNINGSDATO"
    )


def test_cpr_numbers_are_unique_and_carry_the_birth_date(
    small: tuple[Path, DemoSummary], cpr_by_line: dict[int, list[str]]
) -> None:
    summary = small[1]
    defect = summary.datasets["cpr_persons"].defect_rows()
    seen: set[str] = set()
    for line, (pnr, first, last, born, sex, status, address, moved) in cpr_by_line.items():
        if line in defect:
            continue
        assert len(pnr) == 10 and pnr.isdigit()
        assert pnr not in seen
        seen.add(pnr)
        assert cpr_birth(pnr) == date.fromisoformat(born), line
        assert (int(pnr[-1]) % 2 == 1) == (sex == "M") and sex in "MK"
        assert status in {"U", "G", "F", "E", "P"}
        assert date.fromisoformat(born) <= date.fromisoformat(moved) <= date(2026, 11, 1)
        assert first and last and address
    ages = [2026 - int(row[3][:4]) for n, row in cpr_by_line.items() if n not in defect]
    assert 0.15 < sum(a >= 65 for a in ages) / len(ages) < 0.25
    assert min(ages) <= 1 and 90 <= max(ages) <= 101


def test_cpr_defects_sit_where_the_manifest_says(
    small: tuple[Path, DemoSummary], cpr_by_line: dict[int, list[str]]
) -> None:
    summary = small[1]
    for line in defect_rows(summary, "cpr_persons", "impossible_date"):
        pnr, born = cpr_by_line[line][0], cpr_by_line[line][3]
        assert len(pnr) == 10 and cpr_birth(pnr) is None
        assert not is_date(born) and born[:4].isdigit()
    for line in defect_rows(summary, "cpr_persons", "duplicate_key"):
        earlier = {row[0] for n, row in cpr_by_line.items() if n < line}
        assert cpr_by_line[line][0] in earlier
    for line in defect_rows(summary, "cpr_persons", "missing_mandatory"):
        assert "" in (cpr_by_line[line][0], cpr_by_line[line][2])


def test_civil_status_depends_on_age(cpr_by_line: dict[int, list[str]]) -> None:
    children = [row[5] for row in cpr_by_line.values() if row[3] > "2010"]
    elderly = [row[5] for row in cpr_by_line.values() if "1900" < row[3] < "1940"]
    assert set(children) == {"U"}
    assert elderly.count("E") > len(elderly) / 5


# --- addresses --------------------------------------------------------------------------------


def test_dar_extract(small: tuple[Path, DemoSummary]) -> None:
    drop, summary = small
    lines = csv_lines(drop / FILES["dar_addresses"], ",")
    header = (drop / FILES["dar_addresses"]).read_text(encoding="utf-8").split("\n", 1)[0]
    assert header == "id,vejnavn,husnr,etage,doer,postnr,postnrnavn,kommunekode,distrikt"
    assert {row[7] for row in lines.values()} == {"0350"}
    assert {row[8] for row in lines.values()} == DISTRICTS
    postcodes: dict[str, set[str]] = {}
    for row in lines.values():
        assert 4000 <= int(row[5]) <= 4999 and row[6]
        assert (row[3] == "") == (row[4] == "")  # floor and door come together
        assert row[3] in {"", "st", "1", "2", "3", "4"} and row[4] in {"", "th", "tv", "mf"}
        postcodes.setdefault(row[8], set()).add(row[5])
    assert all(1 <= len(codes) <= 2 for codes in postcodes.values())
    for line in defect_rows(summary, "dar_addresses", "missing_mandatory"):
        assert lines[line][1] == ""
    for line in defect_rows(summary, "dar_addresses", "duplicate_key"):
        assert lines[line][0] in {row[0] for n, row in lines.items() if n < line}


def test_households_and_empty_addresses(
    cpr_by_line: dict[int, list[str]], dar_ids: set[str]
) -> None:
    occupied = {row[6] for row in cpr_by_line.values()} & dar_ids
    persons = sum(1 for row in cpr_by_line.values() if row[6] in occupied)
    assert 1.8 < persons / len(occupied) < 2.5
    assert len(dar_ids - occupied) > 0


def test_address_references_resolve_except_injected(
    small: tuple[Path, DemoSummary], cpr_by_line: dict[int, list[str]], dar_ids: set[str]
) -> None:
    drop, summary = small
    unknown = set(defect_rows(summary, "cpr_persons", "unknown_address_id"))
    for line, row in cpr_by_line.items():
        assert (row[6] in dar_ids) != (line in unknown), line

    units = json.loads((drop / FILES["bbr_dwellings"]).read_text(encoding="utf-8"))["enheder"]
    unknown = set(defect_rows(summary, "bbr_dwellings", "unknown_address_id"))
    for position, unit in enumerate(units, start=1):
        assert (unit["adresseIdentificerer"] in dar_ids) != (position in unknown), position

    for line in (drop / FILES["cvr_companies"]).read_text(encoding="utf-8").splitlines():
        assert json.loads(line)["adresseId"] in dar_ids


def test_bbr_units(small: tuple[Path, DemoSummary]) -> None:
    drop, summary = small
    document = json.loads((drop / FILES["bbr_dwellings"]).read_text(encoding="utf-8"))
    assert document["kilde"] == "BBR demo" and document["udtraeksdato"] == "2026-11-01"
    units = document["enheder"]
    missing = set(defect_rows(summary, "bbr_dwellings", "missing_mandatory"))
    for position, unit in enumerate(units, start=1):
        if position in missing:
            assert unit["enh020EnhedensAnvendelse"] is None
        else:
            assert unit["enh020EnhedensAnvendelse"] in {"110", "120", "130", "140", "150", "190"}
        assert 1700 <= unit["byg026Opfoerelsesaar"] <= 2025
        assert unit["enh026EnhedensSamledeAreal"] > 0 and unit["enh031AntalVaerelser"] >= 1
    for position in defect_rows(summary, "bbr_dwellings", "duplicate_key"):
        earlier = {u["id_lokalId"] for u in units[: position - 1]}
        assert units[position - 1]["id_lokalId"] in earlier


# --- CVR --------------------------------------------------------------------------------------


def test_cvr_numbers_are_modulus_11_valid_except_injected(small: tuple[Path, DemoSummary]) -> None:
    drop, summary = small
    lines = (drop / FILES["cvr_companies"]).read_text(encoding="utf-8").splitlines()
    companies = [json.loads(line) for line in lines]
    invalid = set(defect_rows(summary, "cvr_companies", "invalid_cvr"))
    assert invalid
    for number, company in enumerate(companies, start=1):
        cvr = company["cvrNummer"]
        assert isinstance(cvr, int) and 10_000_000 <= cvr <= 99_999_999
        assert cvr_valid(cvr) != (number in invalid), number
    impossible = set(defect_rows(summary, "cvr_companies", "impossible_date"))
    for number, company in enumerate(companies, start=1):
        assert is_date(company["startdato"]) != (number in impossible)
        if company["ophoersdato"] is not None and number not in impossible:
            assert company["ophoersdato"] > company["startdato"]
    for number in defect_rows(summary, "cvr_companies", "missing_mandatory"):
        assert companies[number - 1]["navn"] is None
    closed = sum(c["ophoersdato"] is not None for c in companies) / len(companies)
    assert 0 < closed < 0.15


# --- sick leave -------------------------------------------------------------------------------


def test_sick_leave_is_cp1252_with_decimal_commas(
    small: tuple[Path, DemoSummary], cpr_by_line: dict[int, list[str]]
) -> None:
    drop, summary = small
    raw = (drop / FILES["sick_leave"]).read_bytes()
    with pytest.raises(UnicodeDecodeError):
        raw.decode("utf-8")
    text = raw.decode("cp1252")
    assert text.startswith(
        "Fravær-ID;Medarbejdernr;CPR;Afdeling;Fraværstype;Startdato;Slutdato;Fraværsdage;Timer\r\n"
    )
    assert text.count("\r\n") == text.count("\n")
    lines = csv_lines(drop / FILES["sick_leave"], ";", "cp1252")
    known = {row[0] for row in cpr_by_line.values()}
    defect = summary.datasets["sick_leave"].defect_rows()
    assert any("," in row[8] for row in lines.values())
    for line, row in lines.items():
        days, hours = row[7], row[8]
        assert "." not in days + hours
        assert float(days.replace(",", ".")) > 0 and float(hours.replace(",", ".")) > 0
        assert row[2] in known
        if line not in defect:
            assert is_date(row[5], "%d-%m-%Y") and is_date(row[6], "%d-%m-%Y")
    for line in defect_rows(summary, "sick_leave", "impossible_date"):
        assert not (is_date(lines[line][5], "%d-%m-%Y") and is_date(lines[line][6], "%d-%m-%Y"))
    for line in defect_rows(summary, "sick_leave", "missing_mandatory"):
        assert lines[line][5] == ""


# --- home care (xlsx) -------------------------------------------------------------------------


def test_home_care_export_reads_back(
    small: tuple[Path, DemoSummary], cpr_by_line: dict[int, list[str]]
) -> None:
    drop, summary = small
    path = drop / FILES["home_care_visits"]
    visits = read_visits(path)
    assert visits.columns == HOME_CARE_HEADER
    assert visits.height == summary.datasets["home_care_visits"].rows
    top = pl.read_excel(path, engine="calamine", read_options={"header_row": None})
    assert top.item(0, 0) == "Hjemmepleje – besøgsudtræk, Demo Kommune"
    assert top.item(1, 0).startswith("Udtrukket 01-11-2026")

    as_dates = read_visits(path, dtypes={"Besøgsdato": "date", "Varighed (min)": "int"})
    as_text = read_visits(path, dtypes="string")
    known = {f"{row[0][:6]}-{row[0][6:]}" for row in cpr_by_line.values()}
    impossible = set(defect_rows(summary, "home_care_visits", "impossible_date"))
    unknown = set(defect_rows(summary, "home_care_visits", "unknown_person"))
    missing = set(defect_rows(summary, "home_care_visits", "missing_mandatory"))
    for excel_row, (date_cell, text, cpr, minutes) in enumerate(
        zip(
            as_dates["Besøgsdato"],
            as_text["Besøgsdato"],
            as_dates["CPR-nummer"],
            as_dates["Varighed (min)"],
            strict=True,
        ),
        start=5,
    ):
        if excel_row in impossible:
            assert date_cell is None and not is_date(text, "%d-%m-%Y") and text[2] == "-"
        else:
            assert date(2026, 10, 1) <= date_cell <= date(2026, 10, 31)
        if excel_row in missing:
            assert cpr is None
        else:
            assert len(cpr) == 11 and cpr[6] == "-"
            assert (cpr in known) != (excel_row in unknown), excel_row
            assert cpr_birth(cpr.replace("-", "")) is not None
        assert 5 <= minutes <= 120
    ids = as_text["Besøgs-ID"].to_list()
    for excel_row in defect_rows(summary, "home_care_visits", "duplicate_key"):
        assert ids[excel_row - 5] in ids[: excel_row - 5]
    duplicated = set(defect_rows(summary, "home_care_visits", "duplicate_key"))
    clean_ids = [i for n, i in enumerate(ids, start=5) if n not in duplicated]
    assert len(set(clean_ids)) == len(clean_ids)


# --- meal delivery list (xlsx with drift) -----------------------------------------------------


def test_meal_list_drift_and_defects(big: tuple[Path, DemoSummary]) -> None:
    drop, summary = big
    path = drop / FILES["meal_delivery_list"]
    meals = pl.read_excel(path, engine="calamine", read_options={"dtypes": {"CPR": "string"}})
    assert meals.columns == MEAL_HEADER
    assert meals.schema["Postnr"].is_integer()
    text = pl.read_excel(path, engine="calamine", read_options={"dtypes": "string"})
    cpr = csv_lines(drop / FILES["cpr_persons"], ";")
    dar: dict[str, list[str]] = {}
    for row in csv_lines(drop / FILES["dar_addresses"], ",").values():
        dar.setdefault(row[0], row)  # the first row wins; later ones are injected duplicates
    person = {row[0]: row for row in cpr.values()}

    def registered_label(pnr: str) -> str | None:
        _, street, number, floor, door, *_ = dar[person[pnr][6]]
        if not street:
            return None  # the DAR row itself carries a missing_mandatory defect
        return f"{street} {number}, {floor}. {door}" if floor else f"{street} {number}"

    ds = summary.datasets["meal_delivery_list"]
    drifted = {row for rows in ds.drift.values() for row in rows}
    assert 0.08 < len(drifted) / ds.rows < 0.25
    assert set(ds.drift) <= {"old_address", "street_abbreviation", "missing_floor", "typo"}
    defect = ds.defect_rows()
    assert not drifted & defect
    for excel_row, row in enumerate(meals.iter_rows(named=True), start=2):
        if excel_row in defect:
            continue
        assert len(row["CPR"]) == 10 and row["CPR"] in person
        assert row["Navn"] == f"{person[row['CPR']][1]} {person[row['CPR']][2]}"
        registered = registered_label(row["CPR"])
        if registered is not None:
            assert (row["Adresse"] == registered) != (excel_row in drifted), excel_row
    for excel_row in ds.defects["impossible_date"]:
        assert text["Startdato"][excel_row - 2] == "29-02-2026"
    for excel_row in ds.defects["missing_mandatory"]:
        assert meals["CPR"][excel_row - 2] is None
    for excel_row in ds.defects["duplicate_key"]:
        assert meals["CPR"][excel_row - 2] in meals["CPR"][: excel_row - 2].to_list()


def test_a_tiny_municipality_still_keeps_a_meal_list(tmp_path: Path) -> None:
    # 3% of a 300-person town's over-75s is often nobody: a header-only list would load as an
    # empty snapshot and look like a broken export in the demo.
    summary = generate(tmp_path, persons=300)
    meals = pl.read_excel(
        tmp_path / "drop" / FILES["meal_delivery_list"],
        engine="calamine",
        read_options={"dtypes": {"CPR": "string"}},
    )
    assert summary.datasets["meal_delivery_list"].rows == meals.height >= 3
    listed = set(meals["CPR"].drop_nulls())
    persons = csv_lines(tmp_path / "drop" / FILES["cpr_persons"], ";")
    assert listed <= {row[0] for row in persons.values()}


def test_big_run_has_every_person(big: tuple[Path, DemoSummary]) -> None:
    assert big[1].datasets["cpr_persons"].rows >= BIG


def test_csv_parses_with_polars_keeping_leading_zeros(small: tuple[Path, DemoSummary]) -> None:
    dar = pl.read_csv(small[0] / FILES["dar_addresses"], infer_schema=False)
    assert dar["kommunekode"].unique().to_list() == ["0350"]
    sick = pl.read_csv(
        io.BytesIO((small[0] / FILES["sick_leave"]).read_bytes()),
        separator=";",
        encoding="cp1252",
        infer_schema=False,
    )
    assert sick.columns[0] == "Fravær-ID"
