"""``home_care_visits/hjemmepleje_besoeg_2026-10.xlsx``: a home-care fagsystem's visit export.

Laid out the way vendor exports are: a title and an extraction note above the header (row 4),
CPR numbers with a dash, real date cells for the visit date but text for the start time.
"""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Callable
from datetime import date

from xlsxwriter.workbook import Workbook

from .. import defects as d
from ..cpr import unique_cpr, with_dash
from ..dates import birth_date_for_age
from ..output import write_rows, xlsx_bytes
from ..people import Person, Population
from ..summary import EXCEL_ROW, BuiltExtract, DatasetSummary

NAME = "home_care_visits"
PATH = f"{NAME}/hjemmepleje_besoeg_2026-10.xlsx"
SHEET = "Besøg"
TITLE = "Hjemmepleje – besøgsudtræk, Demo Kommune"
SUBTITLE = "Udtrukket 01-11-2026 fra Demo Omsorg 4.2"
HEADER = (
    "Besøgs-ID", "CPR-nummer", "Besøgsdato", "Starttid", "Varighed (min)", "Ydelse",
    "Medarbejder-ID", "Distrikt",
)  # fmt: skip
HEADER_ROW = 4  # as Excel shows it; data starts on the row below
KINDS = (d.IMPOSSIBLE_DATE, d.DUPLICATE_KEY, d.UNKNOWN_PERSON, d.MISSING_MANDATORY)
ID, CPR, DATE = 0, 1, 2
YEAR, MONTH, DAYS = 2026, 10, 31

# Ydelse -> (weight, (earliest, latest) start in minutes after midnight, (min, max) duration).
# fmt: off
_SERVICES: dict[str, tuple[int, tuple[int, int], tuple[int, int]]] = {
    "Personlig pleje": (40, (7 * 60, 10 * 60), (15, 60)),
    "Praktisk hjælp": (15, (9 * 60, 14 * 60), (30, 120)),
    "Medicingivning": (20, (8 * 60, 21 * 60), (5, 15)),
    "Rehabilitering": (8, (9 * 60, 15 * 60), (30, 90)),
    "Tilsyn": (17, (7 * 60, 22 * 60), (5, 20)),
}
# fmt: on


def choose_recipients(rng: random.Random, population: Population) -> list[Person]:
    """About a quarter of the 65+ (more the older they are) and a few younger people."""
    chosen = []
    for person in population.persons:
        age = person.age
        share = 0.6 if age >= 85 else 0.3 if age >= 75 else 0.1 if age >= 65 else 0.003
        if age >= 18 and rng.random() < share:
            chosen.append(person)
    return chosen


def _staff(rng: random.Random, recipients: list[Person]) -> dict[str, list[str]]:
    per_district: dict[str, int] = defaultdict(int)
    for person in recipients:
        per_district[person.address.street.district] += 1
    numbers = iter(
        rng.sample(range(1000, 10000), sum(max(2, n // 5) for n in per_district.values()))
    )
    return {
        district: [f"M{next(numbers)}" for _ in range(max(2, n // 5))]
        for district, n in sorted(per_district.items())
    }


def _visit(
    rng: random.Random, cpr: str, district: str, staff: list[str], weights: list[float]
) -> list[object]:
    service = rng.choices(list(_SERVICES), weights)[0]
    _, (earliest, latest), (shortest, longest) = _SERVICES[service]
    start = rng.randrange(earliest, latest + 1, 5)
    return [
        "", with_dash(cpr), date(YEAR, MONTH, rng.randint(1, DAYS)),
        f"{start // 60:02d}:{start % 60:02d}", rng.randint(shortest, longest), service,
        rng.choice(staff), district,
    ]  # fmt: skip


def _visits(
    rng: random.Random, recipients: list[Person], staff: dict[str, list[str]]
) -> list[list[object]]:
    visits: list[list[object]] = []
    for person in recipients:
        district = person.address.street.district
        # Each recipient has their own mix of services.
        weights = [w * rng.uniform(0.2, 2.0) for w, _, _ in _SERVICES.values()]
        count = 4 + int(rng.betavariate(1.2, 2.5) * 36)
        visits.extend(
            _visit(rng, person.cpr, district, staff[district], weights) for _ in range(count)
        )
    visits.sort(key=lambda v: (str(v[DATE]), str(v[3]), str(v[CPR])))
    first_id = rng.randint(100_000, 900_000)
    for number, visit in enumerate(visits, start=first_id):
        visit[ID] = f"B-{number:07d}"
    return visits


def _write(rows: list[list[object]]) -> Callable[[Workbook], None]:
    def fill(workbook: Workbook) -> None:
        sheet = workbook.add_worksheet(SHEET)
        bold = workbook.add_format({"bold": True})
        day = workbook.add_format({"num_format": "dd-mm-yyyy"})
        sheet.write_string(0, 0, TITLE, workbook.add_format({"bold": True, "font_size": 14}))
        sheet.write_string(1, 0, SUBTITLE)
        for col, title in enumerate(HEADER):
            sheet.write_string(HEADER_ROW - 1, col, title, bold)
        for col, width in enumerate((11, 13, 11, 9, 14, 16, 15, 16)):
            sheet.set_column(col, col, width)
        write_rows(sheet, rows, HEADER_ROW, day)

    return fill


def build(
    rng: random.Random, population: Population, recipients: list[Person], rate: float
) -> BuiltExtract:
    staff = _staff(rng, recipients)
    visits = _visits(rng, recipients, staff)
    plan = d.RowPlan(visits, KINDS)
    count = d.defect_count(len(visits), rate)
    for i in plan.mark(rng, d.IMPOSSIBLE_DATE, count):
        plan.records[i][DATE] = rng.choice(("31-09-2026", "32-10-2026", "31-11-2026"))
    taken = set(population.cprs)
    for i in plan.mark(rng, d.UNKNOWN_PERSON, count):
        birth = birth_date_for_age(rng, rng.randint(67, 95))
        plan.records[i][CPR] = with_dash(unique_cpr(birth, rng.random() < 0.6, rng, taken))
    for i in plan.mark(rng, d.MISSING_MANDATORY, count):
        plan.records[i][CPR] = ""

    def duplicate(visit: list[object]) -> list[object]:
        person = rng.choice(recipients)
        district = person.address.street.district
        weights = [w for w, _, _ in _SERVICES.values()]
        return [visit[ID], *_visit(rng, person.cpr, district, staff[district], weights)[1:]]

    plan.duplicate(rng, count, duplicate)
    rows, defects, _ = plan.finish(first_row=HEADER_ROW + 1)
    content = xlsx_bytes(_write(rows))
    return BuiltExtract(NAME, content, DatasetSummary(PATH, len(rows), EXCEL_ROW, defects))
