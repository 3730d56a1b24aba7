"""``cpr_persons/cpr_personer.csv``: the CPR register extract of everyone living in the kommune."""

from __future__ import annotations

import calendar
import random
from datetime import date, timedelta

from .. import defects as d
from ..cpr import date_part, serial_for
from ..dates import EXTRACT_DATE, age_on, random_date, years_before
from ..names import first_name, last_name
from ..output import csv_bytes
from ..people import Person, Population
from ..places import new_uuid
from ..summary import CSV_LINE, BuiltExtract, DatasetSummary

NAME = "cpr_persons"
PATH = f"{NAME}/cpr_personer.csv"
HEADER = (
    "PNR", "FORNAVN", "EFTERNAVN", "FOEDSELSDATO", "KOEN", "CIVILSTAND", "ADRESSE_ID",
    "TILFLYTNINGSDATO",
)  # fmt: skip
KINDS = (d.IMPOSSIBLE_DATE, d.DUPLICATE_KEY, d.UNKNOWN_ADDRESS_ID, d.MISSING_MANDATORY)
PNR, EFTERNAVN, FOEDSELSDATO, KOEN, ADRESSE_ID = 0, 2, 3, 4, 6


def _row(p: Person) -> list[str]:
    return [
        p.cpr, p.first_name, p.last_name, p.birth.isoformat(), "K" if p.female else "M",
        p.civil_status, p.address.id, p.moved_in.isoformat(),
    ]  # fmt: skip


def _impossible_day(rng: random.Random, year: int, month: int) -> tuple[int, int]:
    options = [(32, month), (30, 2), (31, 2), *((31, m) for m in (4, 6, 9, 11))]
    if not calendar.isleap(year):
        options.append((29, 2))
    return rng.choice(options)


def _stray(rng: random.Random, row: list[str], population: Population) -> list[str]:
    """Another person registered under an existing PNR: same birth date and sex, own name."""
    birth = date.fromisoformat(row[FOEDSELSDATO])
    female = row[KOEN] == "K"
    age = age_on(birth)
    home = rng.choice(population.addresses)
    earliest = years_before(birth, -18) if age >= 18 else birth
    moved = random_date(rng, earliest, EXTRACT_DATE - timedelta(days=1))
    status = "U" if age < 25 else rng.choice(("U", "G", "F"))
    return [
        row[PNR], first_name(rng, birth.year, female), last_name(rng), row[FOEDSELSDATO],
        row[KOEN], status, home.id, max(moved, birth).isoformat(),
    ]  # fmt: skip


def build(
    rng: random.Random, population: Population, referenced: set[str], rate: float
) -> BuiltExtract:
    """``referenced`` are CPR numbers other extracts use; their rows keep a valid PNR and
    address so that the other extracts stay consistent with this one."""
    persons = population.persons
    plan = d.RowPlan([_row(p) for p in persons], KINDS)
    count = d.defect_count(len(persons), rate)
    safe = [i for i, p in enumerate(persons) if p.cpr not in referenced]
    taken = set(population.cprs)

    for i in plan.mark(rng, d.IMPOSSIBLE_DATE, count, safe):
        row, person = plan.records[i], persons[i]
        day, month = _impossible_day(rng, person.birth.year, person.birth.month)
        pnr = serial_for(
            date_part(day, month, person.birth.year), person.birth.year, person.female, rng
        )
        while pnr in taken:
            pnr = serial_for(
                date_part(day, month, person.birth.year), person.birth.year, person.female, rng
            )
        taken.add(pnr)
        row[PNR] = pnr
        row[FOEDSELSDATO] = f"{person.birth.year:04d}-{month:02d}-{day:02d}"

    for i in plan.mark(rng, d.UNKNOWN_ADDRESS_ID, count, safe):
        unknown = new_uuid(rng)
        while unknown in population.address_ids:
            unknown = new_uuid(rng)
        plan.records[i][ADRESSE_ID] = unknown

    for i in plan.mark(rng, d.MISSING_MANDATORY, count, safe):
        plan.records[i][rng.choice((PNR, EFTERNAVN))] = ""

    plan.duplicate(rng, count, lambda row: _stray(rng, row, population))
    rows, defects, _ = plan.finish(first_row=2)
    content = csv_bytes(HEADER, rows, delimiter=";", line_end="\n", encoding="utf-8")
    return BuiltExtract(NAME, content, DatasetSummary(PATH, len(rows), CSV_LINE, defects))
