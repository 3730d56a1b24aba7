"""``generate``: write the whole Demo Kommune drop folder and its manifest."""

from __future__ import annotations

import random
from pathlib import Path

from .dates import EXTRACT_DATE
from .extracts import (
    bbr_dwellings,
    cpr_persons,
    cvr_companies,
    dar_addresses,
    home_care_visits,
    meal_delivery_list,
    sick_leave,
)
from .output import write_if_changed
from .people import build_population
from .summary import MANIFEST_NAME, DemoSummary

MAX_DEFECT_RATE = 0.2  # four kinds at most one per row: beyond this rows run out


def stream(seed: int, name: str) -> random.Random:
    """The random stream of one part of the demo (an extract, the population, a service).

    One independent stream per part, derived from the seed alone: changing how one extract
    draws its numbers does not reshuffle every other extract. (str seeds are hashed with
    SHA-512 by ``random``, so this is stable across processes and platforms.) The services
    replay an extract's draws with the same stream, so the API and the files agree.
    """
    return random.Random(f"kommunelake-demo/{seed}/{name}")


def generate(
    home: Path, persons: int = 20_000, seed: int = 2026, defect_rate: float = 0.01
) -> DemoSummary:
    """Write the Demo Kommune extracts to ``home/drop/<dataset>/<file>``.

    Output depends only on (persons, seed, defect_rate): the same arguments give
    byte-identical files, and files whose bytes would not change are not rewritten.
    """
    if persons < 1:
        raise ValueError("persons must be at least 1")
    if not 0 <= defect_rate <= MAX_DEFECT_RATE:
        raise ValueError(f"defect_rate must be within [0, {MAX_DEFECT_RATE}]")

    population = build_population(stream(seed, "population"), persons)
    care = home_care_visits.choose_recipients(stream(seed, "home_care_recipients"), population)
    staff = sick_leave.choose_staff(stream(seed, "staff"), population)
    meals = meal_delivery_list.choose_recipients(stream(seed, "meal_recipients"), population)
    referenced = {person.cpr for person in (*care, *staff, *meals)}

    built = [
        cpr_persons.build(stream(seed, cpr_persons.NAME), population, referenced, defect_rate),
        dar_addresses.build(stream(seed, dar_addresses.NAME), population, defect_rate),
        bbr_dwellings.build(stream(seed, bbr_dwellings.NAME), population, defect_rate),
        cvr_companies.build(stream(seed, cvr_companies.NAME), population, defect_rate),
        home_care_visits.build(stream(seed, home_care_visits.NAME), population, care, defect_rate),
        sick_leave.build(stream(seed, sick_leave.NAME), staff, defect_rate),
        meal_delivery_list.build(stream(seed, meal_delivery_list.NAME), meals, defect_rate),
    ]
    drop = Path(home) / "drop"
    for extract in built:
        write_if_changed(drop / extract.summary.path, extract.content)
    summary = DemoSummary(
        seed=seed,
        persons=persons,
        defect_rate=defect_rate,
        extract_date=EXTRACT_DATE,
        datasets={extract.name: extract.summary for extract in built},
    )
    write_if_changed(drop / MANIFEST_NAME, summary.manifest_bytes())
    return summary
