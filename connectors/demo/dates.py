"""Calendar helpers for the demo generator.

Everything is anchored on ``EXTRACT_DATE`` instead of ``date.today()`` so that the output
depends on nothing but the arguments of ``generate``.
"""

from __future__ import annotations

import random
from datetime import date, timedelta

EXTRACT_DATE = date(2026, 11, 1)


def random_date(rng: random.Random, first: date, last: date) -> date:
    """A uniformly drawn date in ``[first, last]`` (both inclusive)."""
    if last <= first:
        return first
    return first + timedelta(days=rng.randint(0, (last - first).days))


def years_before(day: date, years: int) -> date:
    """The same calendar day ``years`` earlier; 29 February falls back to the 28th."""
    try:
        return day.replace(year=day.year - years)
    except ValueError:
        return day.replace(year=day.year - years, day=28)


def birth_date_for_age(rng: random.Random, age: int, today: date = EXTRACT_DATE) -> date:
    """A birth date that makes someone exactly ``age`` years old on ``today``."""
    latest = years_before(today, age)
    earliest = years_before(today, age + 1) + timedelta(days=1)
    # Nobody in the extract is born on the extract date itself.
    latest = min(latest, today - timedelta(days=1))
    return random_date(rng, earliest, latest)


def age_on(birth: date, today: date = EXTRACT_DATE) -> int:
    return today.year - birth.year - ((today.month, today.day) < (birth.month, birth.day))


def is_workday(day: date) -> bool:
    return day.weekday() < 5


def add_workdays(start: date, workdays: int) -> date:
    """The date of the ``workdays``-th working day counting ``start`` as the first."""
    day = start
    counted = 1 if is_workday(day) else 0
    while counted < workdays:
        day += timedelta(days=1)
        if is_workday(day):
            counted += 1
    return day


def workdays_between(first: date, last: date) -> int:
    """Mon–Fri days in ``[first, last]``; public holidays are ignored on purpose (demo data)."""
    days = (last - first).days + 1
    if days <= 0:
        return 0
    full_weeks, rest = divmod(days, 7)
    count = full_weeks * 5
    weekday = first.weekday()
    for offset in range(rest):
        if (weekday + offset) % 7 < 5:
            count += 1
    return count


def dmy(day: date) -> str:
    """Danish day-first notation used by fagsystemer and HR exports."""
    return f"{day.day:02d}-{day.month:02d}-{day.year:04d}"
