"""``sick_leave/sygefravaer_2026.csv``: an HR system's absence export for kommune staff.

Deliberately old-fashioned like many HR exports: cp1252, ``;``, CRLF, day-first dates and
decimal commas, so that ingestion has to handle encoding and locale properly.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import date, timedelta

from .. import defects as d
from ..dates import add_workdays, dmy, random_date, workdays_between
from ..output import csv_bytes
from ..people import Person, Population
from ..summary import CSV_LINE, BuiltExtract, DatasetSummary

NAME = "sick_leave"
PATH = f"{NAME}/sygefravaer_2026.csv"
HEADER = (
    "Fravær-ID", "Medarbejdernr", "CPR", "Afdeling", "Fraværstype", "Startdato", "Slutdato",
    "Fraværsdage", "Timer",
)  # fmt: skip
KINDS = (d.IMPOSSIBLE_DATE, d.DUPLICATE_KEY, d.MISSING_MANDATORY)
ID, START, END = 0, 5, 6
FIRST_DAY, LAST_DAY = date(2026, 1, 1), date(2026, 10, 31)
STAFF_SHARE = 0.07

_DEPARTMENTS = ("Ældre og Sundhed", "Børn og Unge", "Teknik og Miljø", "Økonomi", "Jobcenter")
_DEPARTMENT_WEIGHTS = (35, 35, 10, 8, 12)
_WEEKLY_HOURS = (37.0, 32.0, 30.0, 25.0)
_WEEKLY_HOURS_WEIGHTS = (60, 20, 10, 10)
_ABSENCES_PER_YEAR = (0, 1, 2, 3, 4, 5, 6)
_ABSENCES_WEIGHTS = (30, 25, 18, 12, 8, 4, 3)
# Fraværstype -> (weight, shortest, longest) in working days.
_TYPES = {
    "Egen sygdom": (75, 1, 5),
    "Barns 1. sygedag": (12, 1, 1),
    "Arbejdsskade": (4, 1, 15),
    "Langtidssygdom": (9, 15, 70),
}


@dataclass(frozen=True, slots=True)
class _Employee:
    number: str
    cpr: str
    department: str
    hours_per_day: float


def choose_staff(rng: random.Random, population: Population) -> list[Person]:
    return [p for p in population.persons if 20 <= p.age <= 67 and rng.random() < STAFF_SHARE]


def decimal_comma(value: float) -> str:
    """``2.5`` -> ``2,5``; whole numbers without decimals, as Danish spreadsheets show them."""
    return f"{value:.2f}".rstrip("0").rstrip(".").replace(".", ",")


def _absence(rng: random.Random, employee: _Employee, start: date) -> tuple[date, date, float, str]:
    kind = rng.choices(list(_TYPES), [w for w, _, _ in _TYPES.values()])[0]
    _, shortest, longest = _TYPES[kind]
    while start.weekday() >= 5:
        start -= timedelta(days=1)  # backwards, so the start never leaves the year's window
    end = min(add_workdays(start, rng.randint(shortest, longest)), LAST_DAY)
    days = float(workdays_between(start, end))
    if days == 1 and kind != "Arbejdsskade" and rng.random() < 0.15:
        days = 0.5  # went home at noon
    return start, end, days, kind


def _row(employee: _Employee, start: date, end: date, days: float, kind: str) -> list[str]:
    hours = days * employee.hours_per_day
    return [
        "", employee.number, employee.cpr, employee.department, kind, dmy(start), dmy(end),
        decimal_comma(days), decimal_comma(hours),
    ]  # fmt: skip


def _absences(rng: random.Random, employees: list[_Employee]) -> list[list[str]]:
    found: list[tuple[date, str, list[str]]] = []
    for employee in employees:
        taken: list[tuple[date, date]] = []
        for _ in range(rng.choices(_ABSENCES_PER_YEAR, _ABSENCES_WEIGHTS)[0]):
            start, end, days, kind = _absence(rng, employee, random_date(rng, FIRST_DAY, LAST_DAY))
            if any(start <= e and s <= end for s, e in taken):
                continue  # one person is not absent twice at once
            taken.append((start, end))
            found.append((start, employee.number, _row(employee, start, end, days, kind)))
    found.sort(key=lambda item: (item[0], item[1]))
    rows = [row for _, _, row in found]
    for number, row in enumerate(rows, start=1):
        row[ID] = f"F2026-{number:05d}"
    return rows


def build(rng: random.Random, staff: list[Person], rate: float) -> BuiltExtract:
    numbers = rng.sample(range(10_000, 100_000), len(staff))
    employees = [
        _Employee(
            number=str(number),
            cpr=person.cpr,
            department=rng.choices(_DEPARTMENTS, _DEPARTMENT_WEIGHTS)[0],
            hours_per_day=rng.choices(_WEEKLY_HOURS, _WEEKLY_HOURS_WEIGHTS)[0] / 5,
        )
        for number, person in zip(numbers, staff, strict=True)
    ]
    plan = d.RowPlan(_absences(rng, employees), KINDS)
    count = d.defect_count(len(plan.records), rate)
    for i in plan.mark(rng, d.IMPOSSIBLE_DATE, count):
        impossible = rng.choice(("30-02-2026", "31-04-2026", "31-06-2026", "29-02-2026"))
        plan.records[i][rng.choice((START, END))] = impossible
    for i in plan.mark(rng, d.MISSING_MANDATORY, count):
        plan.records[i][START] = ""

    def duplicate(row: list[str]) -> list[str]:
        employee = rng.choice(employees)
        start, end, days, kind = _absence(rng, employee, random_date(rng, FIRST_DAY, LAST_DAY))
        return [row[ID], *_row(employee, start, end, days, kind)[1:]]

    plan.duplicate(rng, count, duplicate)
    rows, defects, _ = plan.finish(first_row=2)
    content = csv_bytes(HEADER, rows, delimiter=";", line_end="\r\n", encoding="cp1252")
    return BuiltExtract(NAME, content, DatasetSummary(PATH, len(rows), CSV_LINE, defects))
