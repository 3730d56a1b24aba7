"""Synthetic CPR numbers (generation side only).

A CPR number is ``DDMMYYSSSS``. The century of the birth year is not in the date part; it is
carried by the first serial digit (the 7th digit) following the CPR Office's table, so the
generator only draws 7th digits that point back at the right century. The last digit is odd for
men and even for women. The modulus-11 check is deliberately not applied: numbers without it have
been issued since 2007, so a validator must not rely on it.
"""

from __future__ import annotations

import random
from datetime import date

_WOMEN_LAST = (0, 2, 4, 6, 8)
_MEN_LAST = (1, 3, 5, 7, 9)


def _century(yy: int, seventh_digit: int) -> int:
    # The CPR Office's table: which century a two-digit year belongs to, per 7th digit.
    if seventh_digit <= 3:
        return 1900
    if seventh_digit in (4, 9):
        return 2000 if yy <= 36 else 1900
    return 2000 if yy <= 57 else 1800


def seventh_digits(year: int) -> tuple[int, ...]:
    """The 7th digits that make ``year`` recoverable from a CPR number (may be empty)."""
    yy = year % 100
    return tuple(d for d in range(10) if _century(yy, d) + yy == year)


def date_part(day: int, month: int, year: int) -> str:
    return f"{day:02d}{month:02d}{year % 100:02d}"


def make_cpr(birth: date, female: bool, rng: random.Random) -> str:
    """A syntactically valid CPR number for ``birth``; uniqueness is the caller's job."""
    return serial_for(date_part(birth.day, birth.month, birth.year), birth.year, female, rng)


def serial_for(date_digits: str, year: int, female: bool, rng: random.Random) -> str:
    """``date_digits`` plus a serial whose 7th digit encodes ``year``'s century.

    Split out from ``make_cpr`` so that defects can build numbers for impossible dates.
    """
    digits = seventh_digits(year)
    if not digits:
        raise ValueError(f"no CPR serial encodes the year {year}")
    last = rng.choice(_WOMEN_LAST if female else _MEN_LAST)
    return f"{date_digits}{rng.choice(digits)}{rng.randint(0, 99):02d}{last}"


def unique_cpr(birth: date, female: bool, rng: random.Random, taken: set[str]) -> str:
    """``make_cpr`` retried until unseen; adds the result to ``taken``."""
    while True:
        cpr = make_cpr(birth, female, rng)
        if cpr not in taken:
            taken.add(cpr)
            return cpr


def with_dash(cpr: str) -> str:
    """``DDMMYY-SSSS``, the way fagsystemer display the number."""
    return f"{cpr[:6]}-{cpr[6:]}"
