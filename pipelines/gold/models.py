"""Gold: cross-source tables that break silos, as SQL over the silver views.

Each model is plain SQL run by DuckDB over `delta_scan` views of silver, written as a Delta
snapshot. The commit carries the silver versions it was computed from (as an app
transaction), so recomputing from unchanged inputs adds no version.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, replace

import polars as pl

from lake.duck import duck_connect
from lake.home import Home
from lake.serving import DerivedView, create_views, lake_views
from lake.tables import Commit, has_batch, open_table, table_version, write_batch
from pipelines.columns import ColumnDoc
from pipelines.gold.small_cells import PUBLISHED, SmallCells, published_select, suppression_rule

# Dates taken from the lake's UTC timestamps are calendar days of the municipalities
# (Denmark and Norway keep the same clock): a register loaded at 00:30 on 24 November is
# that day's extract, on any machine. Without a named zone DuckDB would use the session's,
# which follows the machine's, so one load gave a different date per server.
LAKE_TIME_ZONE = "Europe/Copenhagen"

# Age in whole years at the register's load date (the CPR extract's `_ingested_at`), so the
# figures describe the extract rather than the day the model happened to run.
_RESIDENTS = f"""
WITH as_of AS (
    SELECT timezone('{LAKE_TIME_ZONE}', max(_ingested_at))::DATE AS as_of
    FROM silver.cpr_persons
),
residents AS (
    SELECT p.cpr, p.address_id, a.municipality_code, a.district, as_of.as_of,
           year(as_of.as_of) - year(p.birth_date)
             - CASE WHEN strftime(as_of.as_of, '%m%d') < strftime(p.birth_date, '%m%d')
                    THEN 1 ELSE 0 END AS age
    FROM silver.cpr_persons p
    JOIN silver.dar_addresses a USING (address_id)
    CROSS JOIN as_of
)
"""


@dataclass(frozen=True)
class GoldModel:
    name: str
    description: str
    inputs: tuple[str, ...]  # silver datasets
    sql: str
    columns: tuple[ColumnDoc, ...]  # what the SQL returns, in its order (a test holds them)
    classification: str = "internal"  # of the table as a whole, as on a dataset's YAML
    # Figures about persons, hidden where few persons are behind them in `published.<name>`;
    # None: the table is not published (one row per person, `personal`).
    small_cells: SmallCells | None = None
    themes: tuple[str, ...] = ()  # EU data-theme codes, as a dataset's YAML `theme:`


def _counts(*columns: tuple[str, str, str]) -> tuple[ColumnDoc, ...]:
    """Aggregate columns (name, description, concept): counts, and hours as decimals."""
    return tuple(
        ColumnDoc(
            name,
            "Float64" if name.startswith("hours") else "Int64",
            text,
            classification="internal",
            concept=concept,
        )
        for name, text, concept in columns
    )


def _where(municipality: str, district: str) -> tuple[ColumnDoc, ...]:
    """The place columns an aggregate is grouped by."""
    return (
        ColumnDoc(
            "municipality_code",
            "String",
            municipality,
            classification="public",
            concept="municipality",
        ),
        ColumnDoc("district", "String", district, classification="public", concept="district"),
    )


MODELS = (
    GoldModel(
        name="population_by_district",
        description="Residents per district from CPR persons joined to DAR addresses: persons, "
        "households (occupied addresses) and age bands at the CPR extract's load date "
        f"(`as_of`, the day in {LAKE_TIME_ZONE} time). Persons "
        "whose address id is not in DAR are not counted (see quality checks).",
        inputs=("cpr_persons", "dar_addresses"),
        themes=("SOCI", "REGI"),
        columns=(
            *_where(
                "Municipality code (kommunekode) of the residents' DAR address.",
                "District of the residents' DAR address.",
            ),
            ColumnDoc(
                "as_of",
                "Date",
                f"The CPR extract's load date, the day in {LAKE_TIME_ZONE} time: the day the "
                "ages are counted at.",
                classification="public",
            ),
            *_counts(
                ("persons", "Persons in CPR whose registered address is in DAR.", "person"),
                ("households", "Occupied addresses: DAR addresses with a resident.", "address"),
                ("persons_0_17", "Residents aged 0-17 at as_of.", "person"),
                ("persons_18_64", "Residents aged 18-64 at as_of.", "person"),
                ("persons_65_plus", "Residents aged 65 or more at as_of.", "person"),
                ("persons_80_plus", "Residents aged 80 or more at as_of.", "person"),
            ),
        ),
        small_cells=SmallCells(
            figures=(
                ("persons", ("persons",)),
                ("households", ("persons",)),
                ("persons_0_17", ("persons_0_17",)),
                ("persons_18_64", ("persons_18_64",)),
                ("persons_65_plus", ("persons_65_plus",)),
                ("persons_80_plus", ("persons_80_plus",)),
            ),
            totals=(("persons", ("persons_0_17", "persons_18_64", "persons_65_plus")),),
            within=(("persons_65_plus", ("persons_80_plus",)),),
        ),
        sql=_RESIDENTS
        + """
SELECT municipality_code, district, any_value(as_of) AS as_of,
       count(*) AS persons,
       count(DISTINCT address_id) AS households,
       count(*) FILTER (WHERE age < 18) AS persons_0_17,
       count(*) FILTER (WHERE age BETWEEN 18 AND 64) AS persons_18_64,
       count(*) FILTER (WHERE age >= 65) AS persons_65_plus,
       count(*) FILTER (WHERE age >= 80) AS persons_80_plus
FROM residents
GROUP BY ALL
ORDER BY municipality_code, district
""",
    ),
    GoldModel(
        name="home_care_hours_per_resident_65plus",
        description="Delivered home-care hours per resident aged 65+, per district of residence "
        "and month: the care fagsystem's visits joined to CPR (by pseudonym) and DAR. Visits "
        "of citizens not found in CPR are left out.",
        inputs=("home_care_visits", "cpr_persons", "dar_addresses"),
        themes=("HEAL", "SOCI"),
        columns=(
            *_where(
                "Municipality code (kommunekode) of the citizen's registered address.",
                "District of the citizen's registered address (DAR), not the care district "
                "the visit was planned in.",
            ),
            ColumnDoc("month", "String", "Month of the visits, YYYY-MM.", classification="public"),
            *_counts(
                ("recipients_65_plus", "Residents aged 65+ visited in the month.", "person"),
                ("visits", "Visits to residents aged 65+ in the month.", "home_care_visit"),
                (
                    "hours",
                    "Delivered home-care time of those visits, in hours, one decimal.",
                    "home_care_time",
                ),
                ("residents_65_plus", "Residents aged 65+ in the district (CPR).", "person"),
                (
                    "hours_per_resident_65_plus",
                    "hours / residents_65_plus, three decimals.",
                    "home_care_time",
                ),
            ),
        ),
        small_cells=SmallCells(
            figures=(
                ("recipients_65_plus", ("recipients_65_plus",)),
                ("visits", ("recipients_65_plus",)),
                ("hours", ("recipients_65_plus",)),
                ("residents_65_plus", ("residents_65_plus",)),
                # hours = this × residents: hidden with either
                ("hours_per_resident_65_plus", ("recipients_65_plus", "residents_65_plus")),
            ),
            # residents without home care: 2 of 12 tells a neighbour who gets it
            within=(("residents_65_plus", ("recipients_65_plus",)),),
        ),
        sql=_RESIDENTS
        + """,
residents_65 AS (
    SELECT municipality_code, district, count(*) AS residents_65_plus
    FROM residents WHERE age >= 65 GROUP BY ALL
),
visits AS (
    SELECT r.municipality_code, r.district, strftime(v.visit_date, '%Y-%m') AS month,
           v.cpr, v.duration_min
    FROM silver.home_care_visits v
    JOIN residents r ON r.cpr = v.cpr
    WHERE r.age >= 65
)
SELECT v.municipality_code, v.district, v.month,
       count(DISTINCT v.cpr) AS recipients_65_plus,
       count(*) AS visits,
       round(sum(v.duration_min) / 60.0, 1) AS hours,
       r.residents_65_plus,
       round(sum(v.duration_min) / 60.0 / r.residents_65_plus, 3) AS hours_per_resident_65_plus
FROM visits v
JOIN residents_65 r USING (municipality_code, district)
GROUP BY v.municipality_code, v.district, v.month, r.residents_65_plus
ORDER BY v.municipality_code, v.district, v.month
""",
    ),
)


# Normalised address text: lower case, letters and digits only, so "Skovvej 12, 1. th" and
# the register's street/number/floor/door compare equal while "Skovv. 12" does not.
_NORMALISED = "regexp_replace(lower({}), '[^a-z0-9æøå]', '', 'g')"

MODELS = (
    *MODELS,
    GoldModel(
        name="meal_delivery_reconciliation",
        description="The staff-kept meal-delivery list reconciled with the registers: per "
        "entry (by pseudonym), whether the person is in CPR and whether the list's address is "
        "the registered one (DAR). Entries that differ are where the local list has drifted.",
        inputs=("meal_delivery_list", "cpr_persons", "dar_addresses"),
        classification="personal",  # one row per person on the list
        themes=("SOCI",),
        columns=(
            ColumnDoc(
                "cpr",
                "String",
                "The entry's person, as the pseudonym silver holds (never the CPR number).",
                classification="personal",
                concept="person",
                pseudonymised=True,
            ),
            ColumnDoc(
                "list_row",
                "Int64",
                "The entry's row in the delivered list (its `_source_row` in silver).",
                classification="internal",
            ),
            ColumnDoc(
                "district",
                "String",
                "District of the person's registered address (DAR); empty when not found.",
                nullable=True,
                classification="personal",
                concept="district",
            ),
            ColumnDoc(
                "status",
                "String",
                "matches, address_differs (list and register disagree), not_in_cpr, or "
                "registered_address_not_in_dar.",
                classification="personal",
            ),
        ),
        sql=f"""
WITH registered AS (
    SELECT p.cpr, a.address_id IS NOT NULL AS address_known, a.postcode, a.district,
           {
            _NORMALISED.format("concat_ws(' ', a.street, a.house_number, a.floor, a.door)")
        } AS address
    FROM silver.cpr_persons p LEFT JOIN silver.dar_addresses a USING (address_id)
)
SELECT l.cpr, l._source_row AS list_row, r.district,
       CASE WHEN r.cpr IS NULL THEN 'not_in_cpr'
            WHEN NOT r.address_known THEN 'registered_address_not_in_dar'
            WHEN {_NORMALISED.format("l.address_text")} = r.address
                 AND l.postcode = r.postcode THEN 'matches'
            ELSE 'address_differs' END AS status
FROM silver.meal_delivery_list l
LEFT JOIN registered r USING (cpr)
ORDER BY list_row
""",
    ),
)


def published_models() -> tuple[GoldModel, ...]:
    """The models with a `published` view: those with figures about persons (`small_cells`)."""
    return tuple(m for m in MODELS if m.small_cells is not None)


def published_views(min_cell: int) -> dict[str, DerivedView]:
    """`published.<model>` → its SELECT of `gold.<model>` with small cells hidden, for every
    model with figures about persons (`small_cells`)."""
    views = {}
    for m in published_models():
        columns = tuple(c.name for c in m.columns)
        select = published_select(f"gold.{m.name}", columns, m.small_cells, min_cell)
        views[f"{PUBLISHED}.{m.name}"] = DerivedView(f"gold.{m.name}", select, columns)
    return views


_NOT_PUBLIC = ("personal", "sensitive")


def published_description(model: GoldModel, min_cell: int) -> str:
    """What `published.<model>` is: the gold table's description and the rule it applies."""
    return f"{model.description} Published view of gold.{model.name}. {suppression_rule(min_cell)}"


def published_classification(model: GoldModel) -> str:
    """public once small cells are hidden, unless a column describes persons one by one."""
    if any(c.classification in _NOT_PUBLIC for c in model.columns):
        return model.classification
    return "public"


def published_columns(model: GoldModel, min_cell: int) -> tuple[ColumnDoc, ...]:
    """`published.<model>`'s columns: the gold table's, figures nullable where hidden, and
    `suppressed`. A column that is not personal is public once small cells are hidden."""
    figures = dict(model.small_cells.figures) if model.small_cells else {}
    within = {
        inner: outer
        for outer, inners in (model.small_cells.within if model.small_cells else ())
        for inner in inners
    }
    columns = []
    for c in model.columns:
        if c.classification not in _NOT_PUBLIC:
            c = replace(c, classification="public")
        if c.name in figures and min_cell > 1:
            close = f", within {min_cell - 1} of `{within[c.name]}`" if c.name in within else ""
            c = replace(
                c,
                nullable=True,
                description=f"{c.description} NULL where hidden (fewer than {min_cell} "
                f"persons behind it{close}, or computable from a shown total; see "
                "`suppressed`).",
            )
        columns.append(c)
    suppressed = ColumnDoc(
        "suppressed",
        "List(String)",
        "The row's figures hidden by small-cell suppression (names of its NULL columns); "
        "empty when every figure is shown.",
        classification="public",
    )
    return (*columns, suppressed)


def input_versions(home: Home, model: GoldModel) -> dict[str, int | None]:
    return {name: table_version(home.table_uri("silver", name)) for name in model.inputs}


def compute(home: Home, model: GoldModel) -> pl.DataFrame:
    con = duck_connect(lake_uri=home.lake_root)
    try:
        # Any other timestamp a model turns into a date or month follows the same calendar.
        con.execute(f"SET TimeZone = '{LAKE_TIME_ZONE}'")
        views = {k: v for k, v in lake_views(home).items() if k.startswith("silver.")}
        create_views(con, current_versions(home, model, views))
        return con.sql(model.sql).pl()  # keeps the schema when the result is empty
    finally:
        con.close()


def current_versions(home: Home, model: GoldModel, views: dict[str, str]) -> dict[str, str]:
    """The views with each scd2 input cut to its current rows: the models describe the
    registers as they stand, and a dataset's YAML may switch it to `load_mode: scd2`, which
    keeps every closed version beside the current one (a person who moved, twice)."""
    views = dict(views)
    for name in model.inputs:
        table = open_table(home.table_uri("silver", name), home.storage_options())
        if table is not None and "is_current" in {f.name for f in table.schema().fields}:
            views[f"silver.{name}"] = f"SELECT * FROM ({views[f'silver.{name}']}) WHERE is_current"
    return views


def build(home: Home, model: GoldModel) -> tuple[Commit, pl.DataFrame | None]:
    """Recompute and write a gold table unless its inputs are unchanged since the last write."""
    versions = input_versions(home, model)
    missing = [name for name, v in versions.items() if v is None]
    if missing:
        raise RuntimeError(f"gold.{model.name} needs silver {missing}: load those datasets first")
    fingerprint = ",".join(f"{name}@{v}" for name, v in sorted(versions.items()))
    # The SQL is part of the fingerprint: a changed model recomputes on unchanged inputs.
    digest = hashlib.sha256(f"{fingerprint}\n{model.sql}".encode()).hexdigest()[:16]
    app_id = f"gold:{model.name}:{digest}"
    uri = home.table_uri("gold", model.name)
    if has_batch(uri, app_id):
        return Commit(table_version(uri) or 0, committed=False), None
    frame = compute(home, model)
    commit = write_batch(
        uri, frame, mode="snapshot", app_id=app_id, metadata={"kommunelake.inputs": fingerprint}
    )
    return commit, frame
