"""``cvr_companies/cvr_virksomheder.json``: CVR companies in the kommune, as NDJSON."""

from __future__ import annotations

import json
import random
from collections.abc import Sequence
from datetime import date, timedelta

from .. import defects as d
from ..cvr import make_cvr, make_invalid_cvr
from ..dates import EXTRACT_DATE, random_date
from ..people import Population
from ..places import FARM, Address
from ..summary import NDJSON_LINE, BuiltExtract, DatasetSummary
from ..trades import FORMS, company_name, pick_trade

NAME = "cvr_companies"
PATH = f"{NAME}/cvr_virksomheder.json"
KINDS = (d.INVALID_CVR, d.DUPLICATE_KEY, d.IMPOSSIBLE_DATE, d.MISSING_MANDATORY)
PERSONS_PER_COMPANY = 25
CLOSED_SHARE = 0.05


def _company(
    rng: random.Random, addresses: Sequence[Address], farms: Sequence[Address], cvr: int
) -> dict[str, object]:
    trade = pick_trade(rng)
    form, _, suffix = rng.choices(FORMS, [w for _, w, _ in FORMS])[0]
    address = rng.choice((farms if trade.farm else None) or addresses)
    # Young firms dominate: most companies alive today were started in the last decades.
    year = max(1960, EXTRACT_DATE.year - int(rng.expovariate(1 / 12)))
    start = random_date(rng, date(year, 1, 1), min(date(year, 12, 31), EXTRACT_DATE))
    stop = None
    if rng.random() < CLOSED_SHARE and start < EXTRACT_DATE - timedelta(days=60):
        stop = random_date(rng, start + timedelta(days=30), EXTRACT_DATE - timedelta(days=1))
    return {
        "cvrNummer": cvr,
        "navn": company_name(rng, trade, suffix),
        "branchekode": trade.code,
        "branchetekst": trade.text,
        "virksomhedsform": form,
        "adresseId": address.id,
        "startdato": start.isoformat(),
        "ophoersdato": stop.isoformat() if stop else None,
    }


def _impossible(rng: random.Random, year: int) -> str:
    month = rng.randint(1, 12)
    return rng.choice((f"{year}-13-{rng.randint(1, 28):02d}", f"{year}-02-30",
                       f"{year}-{month:02d}-32", f"{year}-04-31", f"{year}-13-40"))  # fmt: skip


def clean_companies(
    rng: random.Random, population: Population, taken: set[int] | None = None
) -> list[dict[str, object]]:
    """Every company before defects are injected, drawing from ``rng`` as ``build`` does:
    the demo's CVR service replays it with the extract's own stream to serve the same
    companies. ``taken`` collects the CVR numbers handed out."""
    taken = set() if taken is None else taken
    count_companies = max(1, round(len(population.persons) / PERSONS_PER_COMPANY))
    addresses = population.addresses
    farms = [a for a in addresses if a.kind == FARM]
    return [_company(rng, addresses, farms, make_cvr(rng, taken)) for _ in range(count_companies)]


def build(rng: random.Random, population: Population, rate: float) -> BuiltExtract:
    taken: set[int] = set()
    companies = clean_companies(rng, population, taken)
    addresses = population.addresses
    farms = [a for a in addresses if a.kind == FARM]

    plan = d.RowPlan(companies, KINDS)
    count = d.defect_count(len(companies), rate)
    for i in plan.mark(rng, d.INVALID_CVR, count):
        plan.records[i]["cvrNummer"] = make_invalid_cvr(rng, taken)
    for i in plan.mark(rng, d.IMPOSSIBLE_DATE, count):
        year = int(str(plan.records[i]["startdato"])[:4])
        plan.records[i]["startdato"] = _impossible(rng, year)
    for i in plan.mark(rng, d.MISSING_MANDATORY, count):
        plan.records[i]["navn"] = None
    plan.duplicate(
        rng, count, lambda old: _company(rng, addresses, farms, int(str(old["cvrNummer"])))
    )
    rows, defects, _ = plan.finish(first_row=1)
    text = "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows)
    content = text.encode("utf-8")
    return BuiltExtract(NAME, content, DatasetSummary(PATH, len(rows), NDJSON_LINE, defects))
