"""Small-cell suppression in the serving layer's `published` views of gold."""

from __future__ import annotations

import datetime as dt

import duckdb
import polars as pl
import pytest

from lake import connect
from lake.errors import ConfigError
from lake.serving import build_serving
from lake.tables import write_batch
from pipelines.gold.models import MODELS, build, published_views
from pipelines.gold.small_cells import DEFAULT_MIN_CELL, MIN_CELL_ENV, min_cell, published_select

MODEL = {m.name: m for m in MODELS}
POPULATION = MODEL["population_by_district"]
BANDS = ("persons_0_17", "persons_18_64", "persons_65_plus")


def _published(
    rows: list[tuple[int, int, int]], k: int = 5, eighty_plus: list[int] | None = None
) -> list[dict]:
    """population_by_district rows made of three age bands (and persons 80+, 0 unless
    given), through its published SELECT."""
    frame = pl.DataFrame(
        [
            {
                "municipality_code": "0350",
                "district": f"d{i}",
                "as_of": dt.date(2026, 11, 1),
                "persons": sum(bands),
                "households": sum(bands),
                **dict(zip(BANDS, bands, strict=True)),
                "persons_80_plus": (eighty_plus or [0] * len(rows))[i],
            }
            for i, bands in enumerate(rows)
        ]
    )
    con = duckdb.connect()
    con.register("gold_table", frame.to_arrow())
    columns = [c.name for c in POPULATION.columns]
    select = published_select("gold_table", columns, POPULATION.small_cells, k)
    return con.sql(f"{select} ORDER BY district").pl().to_dicts()


def _bands(row: dict) -> tuple[int | None, ...]:
    return tuple(row[b] for b in BANDS)


def test_counts_under_the_threshold_are_hidden_zero_and_larger_are_shown() -> None:
    few, zero, plenty = _published([(2, 0, 0), (0, 30, 40), (5, 30, 40)])
    # two persons in all: every figure about them is hidden, the empty bands are shown
    assert (few["persons"], few["households"], _bands(few)) == (None, None, (None, 0, 0))
    assert set(few["suppressed"]) == {"persons", "households", "persons_0_17"}
    assert (zero["persons"], _bands(zero), zero["suppressed"]) == (70, (0, 30, 40), [])
    assert (plenty["persons"], _bands(plenty), plenty["suppressed"]) == (75, (5, 30, 40), [])


def test_a_hidden_band_is_not_left_to_be_computed_from_the_total() -> None:
    one, with_zero, tie, enough = _published([(2, 30, 40), (2, 0, 40), (30, 30, 2), (3, 3, 40)])
    # persons 72 is shown, so 0-17 = 72 - 30 - 40 unless a second band is hidden as well:
    # the smallest other band that is not zero
    assert (one["persons"], _bands(one)) == (72, (None, None, 40))
    assert one["suppressed"] == ["persons_0_17", "persons_18_64"]
    assert _bands(with_zero) == (None, 0, None)  # hiding the 0 would hide nothing
    assert _bands(tie) == (None, 30, None)  # of two equal bands, the first
    # 3 + 3 hidden add up to 6, at least 5: nobody is singled out, no third band is hidden
    assert (_bands(enough), enough["persons"]) == ((None, None, 40), 46)


def test_hidden_bands_adding_up_to_a_small_number_hide_one_more() -> None:
    (row,) = _published([(1, 1, 40)])
    assert _bands(row) == (None, None, None)
    assert row["persons"] == 42


def test_a_figure_is_hidden_where_its_difference_from_a_larger_one_is_small() -> None:
    # 12 residents 65+ of whom 9 are 80+: shown, they told anyone that 3 are 65-79.
    rows = _published([(10, 20, 12)] * 4 + [(10, 20, 3)], eighty_plus=[9, 12, 7, 0, 2])
    shown = [(r["persons_65_plus"], r["persons_80_plus"], r["suppressed"]) for r in rows]
    assert shown == [
        (12, None, ["persons_80_plus"]),  # 12 - 9 = 3 persons aged 65-79
        (12, 12, []),  # nobody is 65-79: no one is singled out
        (12, 7, []),  # 5 are 65-79
        (12, 0, []),  # 0 is shown, and so are the 12 aged 65-79
        # 65+ under 5 hides it, 80+ by its own count, and the smallest other band (0-17)
        (None, None, ["persons_0_17", "persons_65_plus", "persons_80_plus"]),
    ]


def test_home_care_recipients_are_hidden_where_few_residents_go_without() -> None:
    model = MODEL["home_care_hours_per_resident_65plus"]
    frame = pl.DataFrame(
        {
            "municipality_code": ["0350"] * 3,
            "district": ["a", "b", "c"],
            "month": ["2026-10"] * 3,
            "recipients_65_plus": [10, 7, 12],
            "visits": [40, 30, 50],
            "hours": [20.0, 15.0, 25.0],
            "residents_65_plus": [12, 12, 12],
            "hours_per_resident_65_plus": [1.667, 1.25, 2.083],
        }
    )
    con = duckdb.connect()
    con.register("gold_table", frame.to_arrow())
    select = published_select("gold_table", frame.columns, model.small_cells, 5)
    rows = con.sql(f"{select} ORDER BY district").pl()
    # 2 of 12 without care would tell a neighbour who gets it; 5 of 12, or none, would not
    assert rows["recipients_65_plus"].to_list() == [None, 7, 12]
    assert rows["residents_65_plus"].to_list() == [12, 12, 12]


def test_a_threshold_of_one_publishes_every_figure() -> None:
    (row,) = _published([(1, 2, 3)], k=1)
    assert (_bands(row), row["persons"], row["suppressed"]) == ((1, 2, 3), 6, [])


def test_the_threshold_comes_from_the_environment_and_bad_values_say_what_to_set() -> None:
    assert min_cell({}) == DEFAULT_MIN_CELL == 5
    assert min_cell({MIN_CELL_ENV: " 3 "}) == 3
    for bad in ("0", "-2", "five", "2.5"):
        with pytest.raises(ConfigError, match=MIN_CELL_ENV):
            min_cell({MIN_CELL_ENV: bad})


def test_every_aggregate_model_says_which_figures_describe_persons() -> None:
    for model in MODELS:
        if model.classification == "personal":
            assert model.small_cells is None, model.name  # one row per person: never published
            continue
        assert model.small_cells is not None, model.name
        # A published view shows every column of its model: one that describes persons one
        # by one (a pseudonym, a name) would leave the analyst tier however cells are hidden.
        personal = [c.name for c in model.columns if c.classification in ("personal", "sensitive")]
        assert not personal, (model.name, personal)
        figures = dict(model.small_cells.figures)
        columns = {c.name for c in model.columns}
        counted = {c.name for c in model.columns if c.concept == "person"}
        assert counted <= set(figures), model.name
        named = set(figures).union(*figures.values())
        for total, parts in (*model.small_cells.totals, *model.small_cells.within):
            named |= {total, *parts}
        assert named <= columns, model.name
        assert "suppressed" not in columns


def test_serving_publishes_gold_with_small_cells_hidden(home) -> None:
    ingested = dt.datetime(2026, 11, 1, 6, tzinfo=dt.UTC)

    def silver(name: str, rows: list[dict]) -> None:
        frame = pl.DataFrame(rows).with_columns(
            pl.lit(ingested).alias("_ingested_at"), pl.int_range(len(rows)).alias("_source_row")
        )
        write_batch(home.table_uri("silver", name), frame, mode="snapshot", app_id=f"{name}-1")

    silver(
        "dar_addresses",
        [
            {"address_id": f"{d}{i}", "municipality_code": "0350", "district": d}
            for d in ("North", "South")
            for i in range(3)
        ],
    )
    # North: 8 adults and 1 child; South: 12 adults
    born = [("North", dt.date(1980, 1, 1))] * 8 + [("North", dt.date(2015, 1, 1))]
    born += [("South", dt.date(1985, 1, 1))] * 12
    silver(
        "cpr_persons",
        [
            {"cpr": f"p{n}", "birth_date": b, "address_id": f"{d}{n % 3}"}
            for n, (d, b) in enumerate(born)
        ],
    )
    build(home, POPULATION)
    build_serving(home, {}, derived=published_views(5))
    con = connect(home.root)
    published = con.sql(
        "SELECT district, persons, persons_0_17, persons_18_64, suppressed "
        "FROM published.population_by_district ORDER BY district"
    ).fetchall()
    analysts = con.sql(
        "SELECT district, persons_0_17, persons_18_64 FROM gold.population_by_district "
        "ORDER BY district"
    ).fetchall()
    published_tables = {
        name
        for (name,) in con.sql(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'published'"
        ).fetchall()
    }
    assert published == [
        ("North", 9, None, None, ["persons_0_17", "persons_18_64"]),
        ("South", 12, 0, 12, []),
    ]
    assert analysts == [("North", 1, 8), ("South", 0, 12)]  # gold itself is not changed
    # no gold table of the others was built, and the personal one is never published
    assert published_tables == {"population_by_district"}


def test_a_gold_table_older_than_its_model_is_served_but_not_published(home) -> None:
    # The model gained a column and the table was not recomputed yet (its input blocked):
    # serving is still built, gold as it is, and the published view waits for the new table.
    older = pl.DataFrame({"municipality_code": ["0350"], "district": ["North"], "persons": [9]})
    write_batch(home.table_uri("gold", POPULATION.name), older, mode="snapshot", app_id="old")
    report = build_serving(home, {}, derived=published_views(5))
    assert f"gold.{POPULATION.name}" in report.views
    assert f"published.{POPULATION.name}" not in report.views
    con = connect(home.root)
    try:
        assert con.sql(f"SELECT persons FROM gold.{POPULATION.name}").fetchall() == [(9,)]
    finally:
        con.close()
