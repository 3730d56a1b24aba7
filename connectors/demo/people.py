"""The synthetic population: households of 1–5 persons living at Demo Kommune addresses.

Households are built by type (singles, couples, families) rather than by drawing ages
independently, so that children live with parents of a plausible age, elderly singles are
mostly widowed women, and about a fifth of the population ends up aged 65 or more.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from datetime import date, timedelta

from .cpr import unique_cpr
from .dates import EXTRACT_DATE, age_on, birth_date_for_age, random_date, years_before
from .names import first_name, last_name
from .places import Address, build_addresses

UNMARRIED, MARRIED, DIVORCED, WIDOWED, PARTNERSHIP = "U", "G", "F", "E", "P"

_HOUSEHOLD_SIZES = (1, 2, 3, 4, 5)
_HOUSEHOLD_WEIGHTS = (38, 33, 12, 12, 5)  # about 2.1 persons per occupied address
_EMPTY_SHARE = 0.05

# (youngest, oldest, weight) age bands for the adults of one- and two-person households.
_SINGLE_AGES = ((18, 29, 20), (30, 49, 18), (50, 64, 17), (65, 79, 25), (80, 100, 20))
_COUPLE_AGES = ((20, 34, 22), (35, 54, 12), (55, 64, 20), (65, 79, 34), (80, 95, 12))

# (below this age, civil statuses, weights) for adults living alone.
_SINGLE_STATUS = (
    (25, (UNMARRIED,), (1,)),
    (45, (UNMARRIED, DIVORCED, MARRIED), (80, 17, 3)),
    (65, (UNMARRIED, DIVORCED, WIDOWED, MARRIED), (45, 40, 5, 10)),
    (80, (UNMARRIED, DIVORCED, WIDOWED, MARRIED), (15, 30, 45, 10)),
    (999, (UNMARRIED, DIVORCED, WIDOWED, MARRIED), (8, 15, 72, 5)),
)


@dataclass(slots=True)
class Person:
    cpr: str
    first_name: str
    last_name: str
    birth: date
    female: bool
    civil_status: str
    address: Address
    moved_in: date
    previous_address: Address | None = None

    @property
    def age(self) -> int:
        return age_on(self.birth)

    @property
    def name(self) -> str:
        return f"{self.first_name} {self.last_name}"


@dataclass(frozen=True)
class Population:
    persons: tuple[Person, ...]
    addresses: tuple[Address, ...]  # every DAR address, occupied or not
    cprs: frozenset[str]
    address_ids: frozenset[str]


@dataclass(slots=True)
class _Member:
    age: int
    female: bool
    status: str
    adult: bool = True


def _age_from(rng: random.Random, bands: tuple[tuple[int, int, int], ...]) -> int:
    lo, hi, _ = rng.choices(bands, [w for _, _, w in bands])[0]
    if lo >= 80:
        # Few people reach 100: skew the oldest band towards its lower end.
        return min(hi, int(rng.triangular(lo, hi + 1, lo)))
    return rng.randint(lo, hi)


def _single_status(rng: random.Random, age: int) -> str:
    for below, statuses, weights in _SINGLE_STATUS:
        if age < below:
            return rng.choices(statuses, weights)[0]
    raise AssertionError("the last band is open-ended")


def _household(rng: random.Random, size: int) -> list[_Member]:
    if size == 1:
        age = _age_from(rng, _SINGLE_AGES)
        # Women outlive men, so old people living alone are mostly women.
        female = rng.random() < (0.68 if age >= 80 else 0.58 if age >= 65 else 0.48)
        return [_Member(age, female, _single_status(rng, age))]

    couple = rng.random() < (0.8 if size == 2 else 0.85)
    if size == 2 and couple:
        head_age = _age_from(rng, _COUPLE_AGES)
    else:
        head_age = rng.randint(22, 58) if size == 2 else rng.randint(25, 56)
    members: list[_Member] = []
    if couple:
        partner_age = max(18, min(100, head_age + round(rng.gauss(0, 3.5))))
        head_female = rng.random() < 0.5
        same_sex = rng.random() < 0.015
        if same_sex and min(head_age, partner_age) >= 32 and rng.random() < 0.5:
            status = PARTNERSHIP  # registered before the 2012 marriage reform
        else:
            married = 0.3 if head_age < 30 else 0.6 if head_age < 45 else 0.85
            status = MARRIED if rng.random() < married else UNMARRIED
        members.append(_Member(head_age, head_female, status))
        members.append(_Member(partner_age, head_female if same_sex else not head_female, status))
    else:
        status = rng.choices((UNMARRIED, DIVORCED, WIDOWED), (55, 40, 5))[0]
        members.append(_Member(head_age, rng.random() < 0.75, status))

    youngest_parent = min(m.age for m in members)
    for _ in range(size - len(members)):
        oldest_child = max(0, min(youngest_parent - 20, 24))
        age = rng.randint(max(0, min(oldest_child, youngest_parent - 42)), oldest_child)
        members.append(_Member(age, rng.random() < 0.49, UNMARRIED, adult=False))
    return members


def _moved_in(rng: random.Random, earliest: date) -> date:
    # Most households moved in recently, some decades ago: an exponential tail.
    years = rng.expovariate(1 / 8)
    moved = EXTRACT_DATE - timedelta(days=int(years * 365.25) + 1)
    if moved < earliest:
        moved = random_date(rng, earliest, EXTRACT_DATE - timedelta(days=1))
    return moved


def build_population(rng: random.Random, persons: int) -> Population:
    sizes: list[int] = []
    remaining = persons
    while remaining > 0:
        size = min(rng.choices(_HOUSEHOLD_SIZES, _HOUSEHOLD_WEIGHTS)[0], remaining)
        sizes.append(size)
        remaining -= size
    addresses = build_addresses(rng, math.ceil(len(sizes) / (1 - _EMPTY_SHARE)))
    homes = rng.sample(addresses, len(sizes))
    taken: set[str] = set()
    people: list[Person] = []
    for size, home in zip(sizes, homes, strict=True):
        members = _household(rng, size)
        births = [birth_date_for_age(rng, m.age) for m in members]
        adult_births = [b for b, m in zip(births, members, strict=True) if m.adult]
        moved = _moved_in(rng, years_before(max(adult_births), 18))
        previous = None
        if members[0].age >= 75 and size <= 2 and rng.random() < 0.15:
            # Elderly people often move to a smaller home late in life.
            moved = random_date(rng, years_before(EXTRACT_DATE, 3), EXTRACT_DATE)
            previous = rng.choice(addresses)
            if previous is home:
                previous = None
        family_name = last_name(rng)
        for index, (member, birth) in enumerate(zip(members, births, strict=True)):
            own_name = index == 1 and rng.random() < 0.5  # partners often keep their name
            people.append(
                Person(
                    cpr=unique_cpr(birth, member.female, rng, taken),
                    first_name=first_name(rng, birth.year, member.female),
                    last_name=last_name(rng) if own_name else family_name,
                    birth=birth,
                    female=member.female,
                    civil_status=member.status,
                    address=home,
                    moved_in=max(moved, birth),
                    previous_address=previous,
                )
            )
    return Population(
        persons=tuple(people),
        addresses=tuple(addresses),
        cprs=frozenset(taken),
        address_ids=frozenset(a.id for a in addresses),
    )
