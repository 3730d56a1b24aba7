"""catalog.columns describes what silver holds: contract fields, lineage, columns loads
added; and gold's columns. catalog.glossary lists the columns that carry each concept."""

from __future__ import annotations

import dataclasses
import datetime as dt

import polars as pl

from lake import connect
from lake.quality import RunRecord, record_run
from lake.serving import build_serving
from lake.tables import write_batch
from pipelines.catalog import catalog_tables
from pipelines.columns import LINEAGE_DOCS
from pipelines.gold.models import MODELS
from pipelines.ingest import LINEAGE
from pipelines.specs import spec_by_name
from pipelines.themes import theme_error
from schemas.glossary import load_glossary


def _evolved_sick_leave(home) -> None:
    """silver.sick_leave as a load under `schema_drift: evolve` leaves it: the contract's
    columns plus `afdelingskode`, added from the header `Afdelingskode`."""
    frame = pl.DataFrame(
        {"absence_id": ["F1"], "hours": [7.4], "_batch_id": ["b2"], "afdelingskode": ["ØK1"]}
    )
    write_batch(home.table_uri("silver", "sick_leave"), frame, mode="snapshot", app_id="b2")
    at = dt.datetime(2026, 11, 1, tzinfo=dt.UTC)
    record_run(
        home,
        RunRecord(
            "sick_leave", "b2", "v2.csv", "loaded", 1, 1, 0, "[]", '["Afdelingskode"]', 1,
            at, at, "", drift_decision="added: afdelingskode",
        ),
    )  # fmt: skip


def test_columns_lists_a_column_added_by_schema_drift_evolve(home) -> None:
    _evolved_sick_leave(home)
    spec = dataclasses.replace(spec_by_name("sick_leave"), schema_drift="evolve")
    columns = catalog_tables([spec], home)["columns"].filter(pl.col("layer") == "silver")
    documented = columns.filter(pl.col("column") != "afdelingskode")
    assert documented.height == 9 + len(LINEAGE) and documented["pseudonymised"].any()
    [added] = columns.filter(pl.col("column") == "afdelingskode").to_dicts()
    assert added["position"] == documented.height + 1 and added["dtype"] == "String"
    assert added["source_header"] == "Afdelingskode" and added["classification"] is None
    assert added["nullable"] and not added["pseudonymised"]
    assert "schema_drift: evolve" in added["description"]


def test_an_added_column_is_listed_only_for_the_dataset_whose_load_added_it(home) -> None:
    # quality.runs is read once for all datasets: one dataset's drift decision must not make
    # another's column of that name (which no load of its own added) an evolved column.
    _evolved_sick_leave(home)
    other = pl.DataFrame({"cpr": ["x"], "_batch_id": ["c1"], "afdelingskode": ["ØK1"]})
    write_batch(home.table_uri("silver", "cpr_persons"), other, mode="snapshot", app_id="c1")
    specs = [
        dataclasses.replace(spec_by_name(name), schema_drift="evolve")
        for name in ("cpr_persons", "sick_leave")
    ]
    added = catalog_tables(specs, home)["columns"].filter(pl.col("column") == "afdelingskode")
    assert added["dataset"].to_list() == ["sick_leave"]


def test_columns_without_a_home_or_an_evolved_column_list_the_contract(home) -> None:
    spec = spec_by_name("sick_leave")
    contract = list(spec.contract.to_schema().columns)
    for columns in (catalog_tables([spec])["columns"], catalog_tables([spec], home)["columns"]):
        silver = columns.filter(pl.col("layer") == "silver")  # home: no silver table yet
        assert silver["column"].to_list() == [*contract, *(c.name for c in LINEAGE_DOCS)]
        assert silver["position"].to_list() == list(range(1, silver.height + 1))


def test_an_scd2_dataset_lists_its_history_columns_after_the_lineage() -> None:
    spec = dataclasses.replace(spec_by_name("cpr_persons"), load_mode="scd2")
    silver = catalog_tables([spec])["columns"].filter(pl.col("layer") == "silver")
    assert silver["column"].to_list()[-3:] == ["valid_from", "valid_to", "is_current"]
    assert silver.filter(pl.col("column") == "valid_to")["nullable"].item()


def test_gold_columns_are_listed_with_their_table_and_concepts() -> None:
    gold = catalog_tables([])["columns"].filter(pl.col("layer") == "gold")
    assert set(gold["dataset"]) == {m.name for m in MODELS}
    [token] = gold.filter(
        pl.col("dataset") == "meal_delivery_reconciliation", pl.col("column") == "cpr"
    ).to_dicts()
    assert token["pseudonymised"] and token["classification"] == "personal"
    assert token["concept"] == "person"


def test_the_glossary_lists_the_columns_that_carry_each_concept() -> None:
    tables = catalog_tables([spec_by_name("sick_leave"), spec_by_name("cpr_persons")])
    glossary = {row["concept"]: row for row in tables["glossary"].iter_rows(named=True)}
    person = glossary["person"]
    assert "silver.sick_leave.cpr" in person["used_in"]
    assert "silver.cpr_persons.birth_date" in person["used_in"]
    assert "gold.meal_delivery_reconciliation.cpr" in person["used_in"]
    # sick_leave, cpr_persons, three gold tables and two published views
    assert person["datasets"] == 7
    assert "published.population_by_district.persons" in person["used_in"]
    assert glossary["sick_leave_days"]["used_in"] == ["silver.sick_leave.days"]
    assert glossary["sick_leave_days"]["unit"] == "working days"
    # Defined, carried by no dataset given here: listed all the same, with no columns.
    assert glossary["company"]["used_in"] == [] and glossary["company"]["datasets"] == 0
    assert set(glossary) == set(load_glossary())


def test_source_header_names_every_header_mapped_to_a_field() -> None:
    # A renamed header is mapped beside the old one (`Afd: department`): both still load.
    spec = spec_by_name("sick_leave")
    aliased = dataclasses.replace(spec, columns={**spec.columns, "Afd": "department"})
    columns = catalog_tables([aliased])["columns"].filter(pl.col("dataset") == "sick_leave")
    headers = dict(columns.select("column", "source_header").iter_rows())
    assert headers["department"] == "Afdeling, Afd" and headers["hours"] == "Timer"


def test_an_api_endpoint_with_a_cpr_number_in_it_is_listed_masked() -> None:
    # The catalog is read by everyone; a configured lookup URL may name a citizen.
    from pipelines.catalog import endpoint

    spec = spec_by_name("road_work_orders")
    shown = endpoint(spec, {"SOURCES__WORK_ORDERS__URL": "http://h/borger/010190-1234/x"})
    assert "1234" not in shown and shown.startswith("http://h/borger/")


def test_catalog_tables_are_served_with_their_types_when_every_value_is_empty(home) -> None:
    # No dataset from an open-data portal: publisher, license and upstream_title are null in
    # every row. Inferred from the rows, polars made them Null and DuckDB INTEGER; with no
    # silver dataset at all, contact and the quality limits were empty too.
    for specs in ([spec_by_name("sick_leave")], []):
        build_serving(home, catalog_tables(specs, home))
        con = connect(home.root)
        types = dict(
            con.sql("""select column_name, data_type from information_schema.columns
                       where table_schema = 'catalog' and table_name = 'dataset_specs'
                    """).fetchall()
        )
        integers = con.sql("""select table_name, column_name from information_schema.columns
                              join information_schema.tables using (table_schema, table_name)
                              where table_schema = 'catalog' and table_type = 'BASE TABLE'
                                and data_type = 'INTEGER'""").fetchall()
        con.close()
        assert types["publisher"] == types["license"] == types["upstream_title"] == "VARCHAR"
        assert types["contact"] == "VARCHAR" and types["quarantine_error"] == "DOUBLE"
        assert integers == []  # no catalog table declares an INTEGER: one is a Null column


def test_every_gold_model_has_themes_from_the_eu_vocabulary() -> None:
    for model in MODELS:
        assert model.themes and theme_error(model.themes) is None, model.name
