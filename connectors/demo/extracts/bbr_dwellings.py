"""``bbr_dwellings/bbr_enheder.json``: BBR dwelling units, shaped like a register API response."""

from __future__ import annotations

import json
import random
from collections import defaultdict

from .. import defects as d
from ..dates import EXTRACT_DATE
from ..people import Population
from ..places import FARM, FLAT, HOUSE, TERRACED, Address, new_uuid
from ..summary import JSON_POSITION, BuiltExtract, DatasetSummary

NAME = "bbr_dwellings"
PATH = f"{NAME}/bbr_enheder.json"
KINDS = (d.DUPLICATE_KEY, d.UNKNOWN_ADDRESS_ID, d.MISSING_MANDATORY)

FARMHOUSE, DETACHED, TERRACED_HOUSE, APARTMENT, DORM, OTHER = (
    "110",
    "120",
    "130",
    "140",
    "150",
    "190",
)
_AREA = {  # m² range per use code
    FARMHOUSE: (120, 280), DETACHED: (90, 230), TERRACED_HOUSE: (65, 140),
    APARTMENT: (38, 130), DORM: (18, 40), OTHER: (15, 120),
}  # fmt: skip
_USE_BY_KIND = {FARM: FARMHOUSE, HOUSE: DETACHED, TERRACED: TERRACED_HOUSE, FLAT: APARTMENT}


def _unit(rng: random.Random, address: Address, use: str) -> dict[str, object]:
    low, high = _AREA[use]
    area = rng.randint(low, high)
    rooms = 1 if use == DORM else max(1, min(9, round(area / rng.uniform(22, 32))))
    return {
        "id_lokalId": new_uuid(rng),
        "adresseIdentificerer": address.id,
        "enh020EnhedensAnvendelse": use,
        "enh026EnhedensSamledeAreal": area,
        "enh031AntalVaerelser": rooms,
        "byg026Opfoerelsesaar": address.built,
    }


def _use(rng: random.Random, address: Address, ages: list[int]) -> str:
    # A flat with one young adult is sometimes a youth/college unit.
    if address.kind == FLAT and len(ages) == 1 and 18 <= ages[0] <= 27 and rng.random() < 0.3:
        return DORM
    if not ages and rng.random() < 0.1:
        return OTHER
    return _USE_BY_KIND[address.kind]


def clean_units(rng: random.Random, population: Population) -> list[dict[str, object]]:
    """Every unit before defects are injected, drawing from ``rng`` as ``build`` does: the
    demo services replay it with the extract's own stream to serve the same units."""
    ages: dict[str, list[int]] = defaultdict(list)
    for person in population.persons:
        ages[person.address.id].append(person.age)
    units: list[dict[str, object]] = []
    for address in population.addresses:
        units.append(_unit(rng, address, _use(rng, address, ages[address.id])))
        if address.kind != FLAT and rng.random() < 0.02:
            # A granny flat or a shop unit at the same address.
            units.append(_unit(rng, address, rng.choice((APARTMENT, OTHER))))
    return units


def build(rng: random.Random, population: Population, rate: float) -> BuiltExtract:
    units = clean_units(rng, population)
    plan = d.RowPlan(units, KINDS)
    count = d.defect_count(len(units), rate)
    for i in plan.mark(rng, d.UNKNOWN_ADDRESS_ID, count):
        unknown = new_uuid(rng)
        while unknown in population.address_ids:
            unknown = new_uuid(rng)
        plan.records[i]["adresseIdentificerer"] = unknown
    for i in plan.mark(rng, d.MISSING_MANDATORY, count):
        plan.records[i]["enh020EnhedensAnvendelse"] = None

    def duplicate(unit: dict[str, object]) -> dict[str, object]:
        address = rng.choice(population.addresses)
        return {**_unit(rng, address, _use(rng, address, [])), "id_lokalId": unit["id_lokalId"]}

    plan.duplicate(rng, count, duplicate)
    rows, defects, _ = plan.finish(first_row=1)
    document = {"kilde": "BBR demo", "udtraeksdato": EXTRACT_DATE.isoformat(), "enheder": rows}
    content = (json.dumps(document, ensure_ascii=False, indent=2) + "\n").encode("utf-8")
    return BuiltExtract(NAME, content, DatasetSummary(PATH, len(rows), JSON_POSITION, defects))
