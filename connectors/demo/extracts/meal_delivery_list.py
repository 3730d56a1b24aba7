"""``meal_delivery_list/madudbringning.xlsx``: a staff-kept Excel list of meal recipients.

Unlike a fagsystem export this list is typed by hand, so addresses drift from the registers:
a move nobody updated, abbreviated street names, a forgotten floor, typos. Drift is reality,
not a defect; the manifest lists it separately so that matching code can be scored.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from datetime import date, timedelta

from xlsxwriter.workbook import Workbook

from .. import defects as d
from ..dates import EXTRACT_DATE, random_date, years_before
from ..output import write_rows, xlsx_bytes
from ..people import Person, Population
from ..places import Address
from ..summary import EXCEL_ROW, BuiltExtract, DatasetSummary

NAME = "meal_delivery_list"
PATH = f"{NAME}/madudbringning.xlsx"
SHEET = "Modtagere"
HEADER = ("Navn", "CPR", "Adresse", "Postnr", "By", "Kost", "Startdato", "Bemærkning")
KINDS = (d.IMPOSSIBLE_DATE, d.MISSING_MANDATORY, d.DUPLICATE_KEY)
OLD_ADDRESS, ABBREVIATION, MISSING_FLOOR, TYPO = (
    "old_address", "street_abbreviation", "missing_floor", "typo",
)  # fmt: skip
DRIFT_KINDS = (OLD_ADDRESS, ABBREVIATION, MISSING_FLOOR, TYPO)
DRIFT_SHARE = 0.15
RECIPIENT_SHARE = 0.03
# A small demo municipality (`--persons 300`) has so few persons over 75 that 3% of them is
# often nobody, and a header-only list would look like a broken export.
MIN_RECIPIENTS = 3
NAVN, CPR, ADRESSE, POSTNR, BY, KOST, START, NOTE = range(8)

_DIETS = ("Normal", "Diabetes", "Glutenfri", "Energitæt")
_DIET_WEIGHTS = (60, 20, 5, 15)
_NOTES = (
    "Nøgle i nøgleboks", "Ring på to gange", "Allergi: nødder", "Hund i huset",
    "Leveres ved bagdøren", "Pårørende: datter", "Hørehæmmet – bank hårdt", "Ingen fisk",
)  # fmt: skip
_ASCII = str.maketrans({"æ": "ae", "ø": "oe", "å": "aa", "Æ": "Ae", "Ø": "Oe", "Å": "Aa"})


def choose_recipients(rng: random.Random, population: Population) -> list[Person]:
    chosen = [p for p in population.persons if p.age >= 75 and rng.random() < RECIPIENT_SHARE]
    if len(chosen) >= MIN_RECIPIENTS:
        return chosen
    oldest = sorted(population.persons, key=lambda person: (-person.age, person.cpr))
    return oldest[:MIN_RECIPIENTS]


def _entry(rng: random.Random, person: Person, start: date) -> list[object]:
    address = person.address
    note = rng.choice(_NOTES) if rng.random() < 0.3 else ""
    diet = rng.choices(_DIETS, _DIET_WEIGHTS)[0]
    return [person.name, person.cpr, address.label(), int(address.street.postnr),
            address.street.postnrnavn, diet, start, note]  # fmt: skip


def _typo(rng: random.Random, street: str) -> str:
    if any(ch in street for ch in "æøåÆØÅ") and rng.random() < 0.5:
        return street.translate(_ASCII)  # typed on a keyboard without Danish letters
    i = rng.randint(1, len(street) - 2)
    if rng.random() < 0.5 and street[i] != street[i + 1]:
        return street[:i] + street[i + 1] + street[i] + street[i + 2 :]
    return street[:i] + street[i + 1 :]


def _drift(rng: random.Random, row: list[object], person: Person) -> str:
    address: Address = person.address
    kinds = [ABBREVIATION, TYPO]
    start = row[START]
    if person.previous_address is not None and isinstance(start, date) and start < person.moved_in:
        kinds.append(OLD_ADDRESS)  # meals started before the move and nobody updated the list
    if address.etage:
        kinds.append(MISSING_FLOOR)
    kind = rng.choice(kinds)
    rest = str(row[ADRESSE]).removeprefix(address.vejnavn)  # " 12, 1. th"
    if kind == OLD_ADDRESS:
        old = person.previous_address
        assert old is not None
        row[ADRESSE], row[POSTNR], row[BY] = (
            old.label(),
            int(old.street.postnr),
            old.street.postnrnavn,
        )
    elif kind == ABBREVIATION:
        row[ADRESSE] = f"{address.street.prefix}{address.street.suffix[0]}.{rest}"
    elif kind == MISSING_FLOOR:
        row[ADRESSE] = f"{address.vejnavn} {address.husnr}"
    else:
        row[ADRESSE] = _typo(rng, address.vejnavn) + rest
    return kind


def _write(rows: list[list[object]]) -> Callable[[Workbook], None]:
    def fill(workbook: Workbook) -> None:
        sheet = workbook.add_worksheet(SHEET)
        bold = workbook.add_format({"bold": True})
        day = workbook.add_format({"num_format": "dd-mm-yyyy"})
        for col, title in enumerate(HEADER):
            sheet.write_string(0, col, title, bold)
        for col, width in enumerate((24, 12, 28, 8, 14, 11, 11, 26)):
            sheet.set_column(col, col, width)
        write_rows(sheet, rows, 1, day)

    return fill


def _start(rng: random.Random, person: Person) -> date:
    if person.previous_address is not None and rng.random() < 0.6:
        # Signed up while still living at the old address.
        return random_date(
            rng, years_before(person.moved_in, 3), person.moved_in - timedelta(days=30)
        )
    return random_date(rng, date(2019, 1, 1), EXTRACT_DATE - timedelta(days=7))


def build(rng: random.Random, recipients: list[Person], rate: float) -> BuiltExtract:
    starts = [_start(rng, person) for person in recipients]
    # The list grows at the bottom as people are signed up.
    ordered = sorted(zip(starts, recipients, strict=True), key=lambda item: (item[0], item[1].cpr))
    people = [person for _, person in ordered]
    plan = d.RowPlan([_entry(rng, p, start) for start, p in ordered], KINDS, DRIFT_KINDS)
    count = d.defect_count(len(people), rate)
    for i in plan.mark(rng, d.IMPOSSIBLE_DATE, count):
        plan.records[i][START] = "29-02-2026"
    for i in plan.mark(rng, d.MISSING_MANDATORY, count):
        plan.records[i][CPR] = ""
    free = plan.free()
    for i in sorted(rng.sample(free, min(len(free), round(DRIFT_SHARE * len(people))))):
        plan.mark_drift(i, _drift(rng, plan.records[i], people[i]))

    def duplicate(row: list[object]) -> list[object]:
        # Signed up twice by two colleagues: same person, another start date and diet.
        start = random_date(rng, date(2019, 1, 1), EXTRACT_DATE - timedelta(days=7))
        diet = rng.choices(_DIETS, _DIET_WEIGHTS)[0]
        return [*row[:KOST], diet, start, ""]

    plan.duplicate(rng, count, duplicate)
    rows, defects, drift = plan.finish(first_row=2)
    content = xlsx_bytes(_write(rows))
    summary = DatasetSummary(PATH, len(rows), EXCEL_ROW, defects, drift)
    return BuiltExtract(NAME, content, summary)
