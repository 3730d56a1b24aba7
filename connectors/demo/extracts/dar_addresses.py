"""``dar_addresses/dar_adresser.csv``: the DAR address extract for the kommune."""

from __future__ import annotations

import random

from .. import defects as d
from ..output import csv_bytes
from ..people import Population
from ..places import KOMMUNEKODE, Address
from ..summary import CSV_LINE, BuiltExtract, DatasetSummary

NAME = "dar_addresses"
PATH = f"{NAME}/dar_adresser.csv"
HEADER = (
    "id",
    "vejnavn",
    "husnr",
    "etage",
    "doer",
    "postnr",
    "postnrnavn",
    "kommunekode",
    "distrikt",
)
KINDS = (d.DUPLICATE_KEY, d.MISSING_MANDATORY)
VEJNAVN, HUSNR, DOER = 1, 2, 4


def _row(a: Address) -> list[str]:
    s = a.street
    return [a.id, s.name, a.husnr, a.etage, a.doer, s.postnr, s.postnrnavn, KOMMUNEKODE, s.district]


def _variant(rng: random.Random, row: list[str]) -> list[str]:
    """The same id on a neighbouring unit, like a stale DAR version that was never retired."""
    copy = list(row)
    if copy[DOER]:
        copy[DOER] = rng.choice([door for door in ("tv", "th", "mf") if door != copy[DOER]])
    elif copy[HUSNR][-1].isalpha():
        copy[HUSNR] = copy[HUSNR][:-1]
    else:
        copy[HUSNR] += rng.choice("AB")
    return copy


def build(rng: random.Random, population: Population, rate: float) -> BuiltExtract:
    plan = d.RowPlan([_row(a) for a in population.addresses], KINDS)
    count = d.defect_count(len(plan.records), rate)
    for i in plan.mark(rng, d.MISSING_MANDATORY, count):
        plan.records[i][VEJNAVN] = ""
    plan.duplicate(rng, count, lambda row: _variant(rng, row))
    rows, defects, _ = plan.finish(first_row=2)
    content = csv_bytes(HEADER, rows, delimiter=",", line_end="\n", encoding="utf-8")
    return BuiltExtract(NAME, content, DatasetSummary(PATH, len(rows), CSV_LINE, defects))
