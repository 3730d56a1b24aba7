"""`kommunelake catalog`: the real CLI on a home loaded by a real materialization (four
datasets, one gold table, the serving layer), on a home never loaded, and on no home."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dagster as dg
import polars as pl
import pytest

from connectors.demo import generate
from lake.home import Home
from lake.serving import build_serving
from lake.tables import write_batch
from pipelines.catalog import catalog_tables
from pipelines.catalog_export import ACCESS_RIGHTS, catalog_document, readable_type
from pipelines.cli import main
from pipelines.definitions import build_assets
from pipelines.resources import lake_resource
from pipelines.serving_asset import SERVING_KEY
from pipelines.specs import spec_by_name
from schemas.fields import CLASSIFICATIONS
from tests.conftest import TEST_KEY

LOADED = ("dar_addresses", "cpr_persons", "sick_leave")  # public, personal, sensitive
GOLD = "population_by_district"  # internal
ACCESS = "http://publications.europa.eu/resource/authority/access-right/"
EU_THEME = "http://publications.europa.eu/resource/authority/data-theme/"


@pytest.fixture(scope="module")
def loaded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Home]:
    """A home whose three file datasets, one gold table and serving layer were materialized;
    bbr_dwellings and the API datasets never were."""
    home = Home(tmp_path_factory.mktemp("catalog") / "home")
    generate(home.root, persons=300)
    selection = [
        *(dg.AssetKey(["silver", name]) for name in LOADED),
        dg.AssetKey(["gold", GOLD]),
        SERVING_KEY,
    ]
    with pytest.MonkeyPatch.context() as patch:
        _materialize(patch, home, selection)
        yield home


@pytest.fixture(autouse=True)
def _publisher(monkeypatch: pytest.MonkeyPatch) -> None:
    """The municipality DCAT output names as publisher (required for --format dcat)."""
    monkeypatch.setenv("KOMMUNELAKE_PUBLISHER_NAME", "Demo Kommune")


def _materialize(env: pytest.MonkeyPatch, home: Home, selection: list[dg.AssetKey]) -> None:
    env.setenv("KOMMUNELAKE_HOME", str(home.root))
    env.setenv("KOMMUNELAKE_PSEUDONYM_KEY", TEST_KEY.decode())
    with dg.DagsterInstance.ephemeral() as instance:
        result = dg.materialize(
            build_assets(),
            selection=selection,
            resources={"lake": lake_resource()},
            instance=instance,
            raise_on_error=False,
        )
    assert result.success


def _catalog(capsys, home: Home | Path, *args: str) -> tuple[int, str, str]:
    root = home.root if isinstance(home, Home) else home
    code = main(["catalog", "--home", str(root), *args])
    out, err = capsys.readouterr()
    return code, out, err


def _json(capsys, home: Home | Path, *args: str) -> dict[str, Any]:
    code, out, err = _catalog(capsys, home, *args)
    assert (code, err) == (0, "")
    return json.loads(out)


def test_json_lists_each_dataset_with_its_load_columns_and_score(loaded, capsys) -> None:
    document = _json(capsys, loaded, "--format", "json")
    datasets = {d["name"]: d for d in document["datasets"] if d["layer"] != "published"}
    assert document["served"] and document["built_at"].endswith("Z")
    cpr = datasets["cpr_persons"]
    assert (cpr["layer"], cpr["table"], cpr["classification"]) == (
        "silver",
        "silver.cpr_persons",
        "personal",
    )
    assert cpr["owner"] == "team:borgerservice" and cpr["load_mode"] == "snapshot"
    assert cpr["themes"] == ["SOCI"]  # its YAML's `theme:`
    assert cpr["loaded"] and cpr["last_loaded_at"].endswith("Z")
    assert cpr["rows"] == cpr["last_load"]["rows_valid"] > 250  # a snapshot holds its load
    assert 0 < cpr["quality_score"] <= 100
    column = next(c for c in cpr["columns"] if c["name"] == "cpr")
    assert column["classification"] == "personal" and column["pseudonymised"]
    assert column["concept"] == "person" and column["type"] == "String"
    [ingested] = [c for c in cpr["columns"] if c["name"] == "_ingested_at"]
    assert ingested["type"] == "Datetime(time_unit='us', time_zone='UTC')"
    gold = datasets[GOLD]
    assert gold["loaded"] and gold["rows"] > 0 and gold["last_loaded_at"] is not None
    assert gold["quality_score"] is None  # scored are silver loads only
    # Defined, never materialized here: listed, with no load and no score (not 0).
    never = datasets["bbr_dwellings"]
    assert not never["loaded"] and never["last_loaded_at"] is None and never["rows"] is None
    assert never["quality_score"] is None
    layers = [d["layer"] for d in document["datasets"]]
    assert layers[-5:] == ["gold"] * 3 + ["published"] * 2
    person = next(c for c in document["glossary"] if c["concept"] == "person")
    assert {"cpr_persons", "sick_leave", GOLD} <= set(person["datasets"])
    assert "silver.cpr_persons.cpr" in person["used_in"] and person["steward"]


def test_published_views_are_listed_with_the_rule_that_hides_small_cells(loaded, capsys):
    document = _json(capsys, loaded, "--format", "json")
    published = {d["name"]: d for d in document["datasets"] if d["layer"] == "published"}
    # meal_delivery_reconciliation has a row per person: never published
    assert set(published) == {GOLD, "home_care_hours_per_resident_65plus"}
    view = published[GOLD]
    gold = next(d for d in document["datasets"] if d["table"] == f"gold.{GOLD}")
    assert (view["table"], view["classification"], view["source"]) == (
        f"published.{GOLD}",
        "public",  # internal in gold; public once small cells are hidden
        f"gold.{GOLD}",
    )
    assert "KOMMUNELAKE_MIN_CELL = 5" in view["description"]
    assert "1 to 4 persons" in view["description"] and "`suppressed`" in view["description"]
    assert view["loaded"] and view["rows"] == gold["rows"]
    assert view["themes"] == gold["themes"] == ["SOCI", "REGI"]
    assert view["last_loaded_at"] == gold["last_loaded_at"]  # the view reads gold as it is
    assert not published["home_care_hours_per_resident_65plus"]["loaded"]  # no gold table yet
    columns = {c["name"]: c for c in view["columns"]}
    assert [c["name"] for c in view["columns"]] == [
        *(c["name"] for c in gold["columns"]),
        "suppressed",
    ]
    assert {c["classification"] for c in view["columns"]} == {"public"}
    assert (
        columns["persons_0_17"]["nullable"]
        and "fewer than 5" in columns["persons_0_17"]["description"]
    )
    assert "within 4 of `persons_65_plus`" in columns["persons_80_plus"]["description"]
    assert "within" not in columns["persons_65_plus"]["description"]
    assert not columns["district"]["nullable"] and columns["persons"]["concept"] == "person"
    # --dataset with a gold model's name: its gold table and what of it may leave the house
    one = _json(capsys, loaded, "--format", "json", "--dataset", GOLD)
    assert [d["table"] for d in one["datasets"]] == [f"gold.{GOLD}", f"published.{GOLD}"]


def test_markdown_and_dcat_show_a_published_view_by_its_own_name(loaded, capsys, monkeypatch):
    code, out, err = _catalog(capsys, loaded)
    assert (code, err) == (0, "")
    section = out.split(f"### published.{GOLD}\n", 1)[1].split("\n### ", 1)[0]
    assert "| Classification | public |" in section and "KOMMUNELAKE_MIN_CELL = 5" in section
    assert "| `suppressed` |" in section
    monkeypatch.setenv("KOMMUNELAKE_CATALOG_BASE_URI", "https://data.demo-kommune.example/")
    document = _json(capsys, loaded, "--format", "dcat")
    nodes = {node["@id"]: node for node in document["@graph"]}
    base = "https://data.demo-kommune.example/dataset/"
    view = nodes[f"{base}published.{GOLD}"]
    assert view["dct:identifier"] == f"published.{GOLD}"
    assert view["dct:accessRights"] == {"@id": ACCESS + "PUBLIC"}
    assert nodes[base + GOLD]["dct:accessRights"] == {"@id": ACCESS + "RESTRICTED"}


def test_a_home_never_loaded_describes_published_views_with_the_threshold_set_now(
    home, capsys, monkeypatch
) -> None:
    home.root.mkdir(parents=True)
    monkeypatch.setenv("KOMMUNELAKE_MIN_CELL", "3")
    document = _json(capsys, home, "--format", "json", "--dataset", GOLD)
    [view] = [d for d in document["datasets"] if d["layer"] == "published"]
    assert "KOMMUNELAKE_MIN_CELL = 3" in view["description"] and not view["loaded"]
    assert "1 to 2 persons" in view["description"]


def test_dcat_maps_each_classification_to_an_eu_access_right(loaded, capsys, monkeypatch):
    monkeypatch.setenv("KOMMUNELAKE_CATALOG_BASE_URI", "https://data.demo-kommune.example/")
    document = _json(capsys, loaded, "--format", "dcat")
    assert {"dcat", "dct", "foaf", "vcard", "skos"} <= set(document["@context"])
    nodes = {node["@id"]: node for node in document["@graph"]}
    base = "https://data.demo-kommune.example/dataset/"
    rights = {
        name: nodes[base + name]["dct:accessRights"]["@id"].removeprefix(ACCESS)
        for name in (*LOADED, GOLD)
    }
    assert rights == {
        "dar_addresses": "PUBLIC",  # public
        "cpr_persons": "NON_PUBLIC",  # personal
        "sick_leave": "NON_PUBLIC",  # sensitive
        GOLD: "RESTRICTED",  # internal
    }
    leave = nodes[base + "sick_leave"]
    assert leave["@type"] == "dcat:Dataset" and leave["dct:identifier"] == "sick_leave"
    assert leave["dcat:contactPoint"]["vcard:hasEmail"] == {"@id": "mailto:hr@demo-kommune.example"}
    # the municipality publishes; the owning team is whom to ask
    [catalog] = [n for n in document["@graph"] if n["@type"] == "dcat:Catalog"]
    assert leave["dct:publisher"] == catalog["dct:publisher"]
    assert catalog["dct:publisher"]["foaf:name"] == "Demo Kommune"
    assert leave["dcat:contactPoint"]["vcard:fn"] == "team:hr-loen"
    assert leave["dct:modified"]["@type"] == "xsd:dateTime"
    assert "hr" in leave["dcat:keyword"]
    assert "dct:modified" not in nodes[base + "bbr_dwellings"]  # never loaded
    assert {"@id": base + "sick_leave"} in catalog["dcat:dataset"]
    # The glossary: concepts in a scheme, each the theme of the datasets carrying it.
    person = nodes["https://data.demo-kommune.example/concept/person"]
    assert person["@type"] == "skos:Concept"
    assert person["skos:inScheme"] == {"@id": "https://data.demo-kommune.example/glossary"}
    assert {label["@language"] for label in person["skos:prefLabel"]} == {"en", "da", "nb"}
    themed = {
        n["dct:identifier"]
        for n in nodes.values()
        if {"@id": person["@id"]} in n.get("dcat:theme", [])
    }
    assert {"cpr_persons", "sick_leave", GOLD} <= themed
    glossary, eu_themes = catalog["dcat:themeTaxonomy"]
    assert nodes[glossary["@id"]]["@type"] == "skos:ConceptScheme"
    assert eu_themes == {"@id": "http://publications.europa.eu/resource/authority/data-theme"}
    # A dataset's EU data theme (its YAML `theme:`) beside the concepts it carries.
    assert {"@id": EU_THEME + "GOVE"} in leave["dcat:theme"]
    assert {"@id": EU_THEME + "SOCI"} in nodes[base + f"published.{GOLD}"]["dcat:theme"]


@pytest.mark.parametrize(
    ("exact", "shown"),
    [
        (pl.Decimal(18, 2), "decimal(18,2)"),
        (pl.Datetime("us"), "timestamp (no time zone)"),
        (pl.Datetime("us", "Europe/Copenhagen"), "timestamp (Europe/Copenhagen)"),
        (pl.List(pl.String), "list of text"),
        (pl.Float64, "number"),
        (pl.UInt32, "integer"),
        (pl.Boolean, "boolean"),
    ],
)
def test_markdown_types_are_short_and_readable(exact: pl.DataType, shown: str) -> None:
    assert readable_type(str(exact)) == shown


def test_a_type_not_recognised_is_shown_as_it_is() -> None:
    assert readable_type("Object") == "Object"


def test_dcat_names_the_publisher_and_where_each_served_dataset_is_queried(
    loaded, capsys, monkeypatch
) -> None:
    monkeypatch.setenv("KOMMUNELAKE_PUBLISHER_NAME", "  Demo  Kommune ")
    monkeypatch.setenv("KOMMUNELAKE_PUBLISHER_URI", "https://www.demo-kommune.example/")
    document = _json(capsys, loaded, "--format", "dcat")
    [catalog] = [n for n in document["@graph"] if n["@type"] == "dcat:Catalog"]
    assert catalog["dct:publisher"] == {
        "@id": "https://www.demo-kommune.example/",
        "@type": "foaf:Agent",
        "foaf:name": "Demo Kommune",
        "dct:type": {"@id": "http://purl.org/adms/publishertype/LocalAuthority"},
    }
    datasets = {n["dct:identifier"]: n for n in document["@graph"] if n["@type"] == "dcat:Dataset"}
    serving = loaded.serving_db.resolve().as_uri()
    view = datasets[f"published.{GOLD}"]["dcat:distribution"]
    assert view["@type"] == "dcat:Distribution" and view["dcat:accessURL"] == {"@id": serving}
    assert f"published.{GOLD}" in view["dct:title"]["@value"]
    assert view["dct:format"]["rdfs:label"] == "DuckDB" and "rdfs" in document["@context"]
    assert datasets["cpr_persons"]["dcat:distribution"]["dcat:accessURL"] == {"@id": serving}
    # Not served: nowhere to query it, so no distribution is claimed.
    assert "dcat:distribution" not in datasets["bbr_dwellings"]
    assert "dcat:distribution" not in datasets["published.home_care_hours_per_resident_65plus"]


def test_dcat_without_a_publisher_is_one_line_saying_what_to_set(home, capsys, monkeypatch):
    home.root.mkdir(parents=True)
    monkeypatch.delenv("KOMMUNELAKE_PUBLISHER_NAME")
    code, out, err = _catalog(capsys, home, "--format", "dcat")
    assert code == 1 and out == ""
    [line] = err.splitlines()
    assert "KOMMUNELAKE_PUBLISHER_NAME is not set" in line and "municipality" in line
    assert _catalog(capsys, home, "--format", "json")[0] == 0  # only DCAT needs it


def test_a_cpr_number_in_the_publisher_setting_is_masked(home, capsys, monkeypatch) -> None:
    home.root.mkdir(parents=True)
    monkeypatch.setenv("KOMMUNELAKE_PUBLISHER_NAME", "Kommune 010190-1234")
    code, out, err = _catalog(capsys, home, "--format", "dcat")
    assert (code, err) == (0, "") and "010190-1234" not in out and "NNNNNN-NNNN" in out


def test_a_bad_publisher_uri_is_one_line(home, capsys, monkeypatch) -> None:
    home.root.mkdir(parents=True)
    monkeypatch.setenv("KOMMUNELAKE_PUBLISHER_URI", "Demo Kommune")
    code, out, err = _catalog(capsys, home, "--format", "dcat")
    assert code == 1 and out == ""
    [line] = err.splitlines()
    assert "KOMMUNELAKE_PUBLISHER_URI" in line and "absolute IRI" in line


def test_every_classification_has_an_access_right() -> None:
    assert set(ACCESS_RIGHTS) == set(CLASSIFICATIONS)


def test_markdown_shows_datasets_columns_and_the_glossary(loaded, capsys) -> None:
    code, out, err = _catalog(capsys, loaded)  # md is the default
    assert (code, err) == (0, "")
    section = out.split("### cpr_persons\n", 1)[1].split("\n### ", 1)[0]
    assert "| Owner | team:borgerservice (borgerservice@demo-kommune.example) |" in section
    assert "| Classification | personal |" in section and "/ 100 |" in section
    assert "| Themes | SOCI (Population and society) |" in section
    # Types as a reader says them; json keeps polars' exact text
    assert "| `cpr` | text | personal, pseudonymised | person |" in section
    assert "| `birth_date` | date |" in section and "| `_source_row` | integer |" in section
    assert "| `_ingested_at` | timestamp (UTC) |" in section and "Datetime(" not in out
    bbr = out.split("### bbr_dwellings\n", 1)[1].split("\n### ", 1)[0]
    assert "| Last load | never loaded |" in bbr and "| Quality score | unknown |" in bbr
    glossary = out.split("## Glossary\n", 1)[1]
    assert "### Person (`person`)" in glossary and "cpr_persons" in glossary


def test_dataset_restricts_to_one_dataset_and_the_concepts_it_carries(loaded, capsys):
    document = _json(capsys, loaded, "--format", "json", "--dataset", "sick_leave")
    assert [d["name"] for d in document["datasets"]] == ["sick_leave"]
    concepts = {c["concept"] for c in document["glossary"]}
    carried = {c["concept"] for c in document["datasets"][0]["columns"] if c["concept"]}
    assert concepts == carried and "sick_leave_days" in concepts
    assert all("sick_leave" in c["datasets"] for c in document["glossary"])


def test_an_unknown_dataset_is_one_line_naming_the_known_ones(loaded, capsys) -> None:
    code, out, err = _catalog(capsys, loaded, "--dataset", "sickleave")
    assert code == 1 and out == ""
    [line] = err.splitlines()
    assert line.startswith("kommunelake catalog: --dataset 'sickleave': no such dataset")
    assert "sick_leave" in line and GOLD in line


def test_a_home_never_loaded_lists_the_defined_datasets_as_never_loaded(home, capsys) -> None:
    home.root.mkdir(parents=True)
    document = _json(capsys, home, "--format", "json")
    assert not document["served"] and document["built_at"] is None
    names = {d["name"] for d in document["datasets"]}
    assert {*LOADED, "bbr_dwellings", GOLD} <= names
    assert not any(d["loaded"] or d["rows"] is not None for d in document["datasets"])
    assert all(d["quality_score"] is None for d in document["datasets"])
    assert not home.serving_db.exists()  # reading the catalog built nothing
    dcat = _json(capsys, home, "--format", "dcat")
    ids = {node["@id"] for node in dcat["@graph"]}
    assert "urn:kommunelake:dataset/cpr_persons" in ids  # the default base
    assert not any("dcat:distribution" in node for node in dcat["@graph"])  # nothing served


def test_a_home_that_does_not_exist_is_one_line(tmp_path, capsys) -> None:
    code, out, err = _catalog(capsys, tmp_path / "nowhere")
    assert code == 1 and out == ""
    [line] = err.splitlines()
    assert "nowhere does not exist" in line and "--home" in line


def test_a_bad_base_uri_is_one_line(home, capsys, monkeypatch) -> None:
    home.root.mkdir(parents=True)
    monkeypatch.setenv("KOMMUNELAKE_CATALOG_BASE_URI", "data catalog")
    code, out, err = _catalog(capsys, home, "--format", "dcat")
    assert code == 1 and out == ""
    [line] = err.splitlines()
    assert "KOMMUNELAKE_CATALOG_BASE_URI" in line and "absolute IRI" in line


def test_a_cpr_number_in_catalog_text_is_masked() -> None:
    # The catalog is read by everyone: a YAML's description or a portal's text quoting a
    # (synthetic) CPR number must not carry it out.
    tables = catalog_tables([spec_by_name("sick_leave")])
    datasets = tables["dataset_specs"].with_columns(
        pl.lit("Sent by 010190-1234 by mistake").alias("description")
    )
    document = catalog_document(datasets, tables["columns"], tables["glossary"], tables["sources"])
    text = json.dumps(document)
    assert "010190-1234" not in text and "NNNNNN-NNNN" in text


def test_an_open_data_dataset_names_its_portal_dataset_as_dct_source(
    home, demo_apis, monkeypatch, capsys
) -> None:
    # daycare_institutions is loaded from the demo's CKAN portal, whose package_show answer
    # lands beside it: the catalog says which portal dataset it is, by whom, under what licence.
    _materialize(monkeypatch, home, [dg.AssetKey(["silver", "daycare_institutions"]), SERVING_KEY])
    capsys.readouterr()  # Dagster's own log lines
    document = _json(capsys, home, "--format", "json", "--dataset", "daycare_institutions")
    upstream = document["datasets"][0]["upstream"]
    assert upstream["title"] and upstream["publisher"] and upstream["license"]
    assert upstream["landing_page"].endswith("/dataset/daginstitutioner")  # the portal page
    graph = _json(capsys, home, "--format", "dcat", "--dataset", "daycare_institutions")
    [node] = [n for n in graph["@graph"] if n["@type"] == "dcat:Dataset"]
    source = node["dct:source"]
    assert source["@id"] == upstream["landing_page"]
    assert source["dct:title"] == upstream["title"]
    assert source["dct:publisher"]["foaf:name"] == upstream["publisher"]
    assert source["dct:license"]["dct:title"] == upstream["license"]
    assert set(upstream["tags"]) <= set(node["dcat:keyword"])


def test_a_serving_file_without_the_catalog_tables_says_how_to_rebuild_it(home, capsys):
    # Built without a catalog (an older version, or by hand): DuckDB's "Table with name
    # datasets does not exist" alone names no remedy.
    write_batch(
        home.table_uri("silver", "t"), pl.DataFrame({"x": [1]}), mode="snapshot", app_id="b1"
    )
    build_serving(home, {})
    code, out, err = _catalog(capsys, home)
    assert code == 1 and out == ""
    [line] = err.splitlines()
    assert "has no complete catalog" in line
    assert "kommunelake load --select 'key:serving/lake_duckdb'" in line
