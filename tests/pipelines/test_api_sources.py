"""The CVR, CKAN and generic-REST datasets load end to end from the demo services on
127.0.0.1 through landing into silver, and a CKAN dataset's portal metadata reaches the
serving layer's catalog (catalog.sources, catalog.source_resources, catalog.datasets)."""

from __future__ import annotations

import json

import httpx
import polars as pl
import pytest
from deltalake import DeltaTable

from connectors.cvr import COMPANY_SCHEMA
from connectors.demo.services.ckan import SITE_URL
from connectors.http import HttpError
from connectors.rest import RestConfigError
from lake import connect, cursors
from lake.errors import ConfigError
from lake.home import Home
from lake.landing import manifest, read_landed
from lake.quality import runs
from lake.serving import build_serving
from pipelines.api_sources import part_dataset
from pipelines.catalog import RESOURCES_SCHEMA, SOURCES_SCHEMA, catalog_tables
from pipelines.ingest import load_dataset
from pipelines.specs import load_specs, spec_by_name
from tests.conftest import TEST_KEY

BY_KOMMUNE = "Vrvirksomhed.virksomhedMetadata.nyesteBeliggenhedsadresse.kommune.kommuneKode"


def silver(home: Home, name: str) -> pl.DataFrame:
    return pl.read_delta(home.table_uri("silver", name))


def landed(home: Home, dataset: str) -> list:
    return manifest(home.manifest_uri, dataset)


def test_cvr_companies_load_from_the_register_without_participants(home, demo_apis) -> None:
    spec = spec_by_name("cvr_company_register")
    served = httpx.post(
        f"{demo_apis.cvr}/cvr-permanent/virksomhed/_search",
        json={"query": {"term": {BY_KOMMUNE: 350}}, "size": 3000},
        auth=(demo_apis.cvr_username, demo_apis.cvr_password),
        trust_env=False,
    ).json()["hits"]["hits"]
    report = load_dataset(spec, home, TEST_KEY)
    assert [b.status for b in report.batches] == ["loaded"]
    table = silver(home, spec.name)
    cvrs = sorted(str(h["_source"]["Vrvirksomhed"]["cvrNummer"]) for h in served)
    assert sorted(table["cvr"]) == cvrs and table.height > 10
    assert set(table["kommune_code"]) == {"0350"}
    # The answer as received lands beside the dataset; the batch is the company rows only.
    [raw_page, empty_page] = landed(home, part_dataset(spec.name, "raw"))
    assert b'"deltagerRelation"' in read_landed(raw_page)
    [batch] = landed(home, spec.name)
    lines = [json.loads(line) for line in read_landed(batch).splitlines()]
    assert all(list(line) == list(COMPANY_SCHEMA) for line in lines)
    assert json.loads(read_landed(empty_page))["hits"]["hits"] == []
    again = load_dataset(spec, home, TEST_KEY)
    assert again.batches == () and again.new_files == 0


def test_cvr_credentials_come_only_from_the_environment(home, demo_apis, monkeypatch) -> None:
    monkeypatch.delenv("SOURCES__CVR__PASSWORD")
    with pytest.raises(ConfigError, match="SOURCES__CVR__PASSWORD"):
        load_dataset(spec_by_name("cvr_company_register"), home, TEST_KEY)
    monkeypatch.setenv("SOURCES__CVR__PASSWORD", "wrong")
    with pytest.raises(HttpError) as caught:
        load_dataset(spec_by_name("cvr_company_register"), home, TEST_KEY)
    assert caught.value.status == 401 and "wrong" not in str(caught.value)
    assert not DeltaTable.is_deltatable(home.table_uri("silver", "cvr_company_register"))


def test_ckan_dataset_loads_its_file_and_lands_the_portal_metadata(home, demo_apis) -> None:
    spec = spec_by_name("daycare_institutions")
    shown = httpx.get(
        f"{demo_apis.ckan}/api/3/action/package_show",
        params={"id": "daginstitutioner"},
        trust_env=False,
    )
    package = shown.json()["result"]
    [resource] = package["resources"]
    report = load_dataset(spec, home, TEST_KEY)
    assert [(b.status, b.rows_quarantined) for b in report.batches] == [("loaded", 0)]
    local = resource["url"].replace(SITE_URL, demo_apis.ckan)  # the portal's own file
    file = httpx.get(local, trust_env=False).content
    assert silver(home, spec.name).height == file.count(b"\n") - 1
    [metadata] = landed(home, part_dataset(spec.name, "metadata"))
    assert read_landed(metadata) == shown.content  # the portal's answer, byte for byte
    [batch] = landed(home, spec.name)
    assert read_landed(batch) == file and batch.media_type == "text/csv"

    tables = catalog_tables(load_specs(), home)
    [row] = tables["sources"].filter(pl.col("dataset") == spec.name).rows(named=True)
    assert row["source_type"] == "ckan" and row["package_id"] == package["id"]
    assert row["title"] == package["title"] and row["description"] == package["notes"]
    assert row["publisher"] == package["organization"]["title"] == "Demo Kommune"
    assert row["license"] == package["license_title"]
    assert row["license_id"] == package["license_id"]
    assert row["tags"] == [t["name"] for t in package["tags"]]
    assert row["landing_page"] == f"{SITE_URL}/dataset/daginstitutioner"  # public address
    assert row["metadata_modified"].isoformat().startswith(package["metadata_modified"])
    assert row["metadata_sha256"] == metadata.sha256
    [file_row] = tables["source_resources"].rows(named=True)
    assert file_row["url"] == resource["url"] and file_row["loaded"] is True
    assert file_row["format"] == "CSV" and file_row["size_bytes"] == len(file)
    datasets = tables["dataset_specs"].filter(pl.col("dataset") == spec.name)
    assert datasets["publisher"].to_list() == ["Demo Kommune"]
    assert datasets["license"].to_list() == [package["license_title"]]

    build_serving(home, tables)
    con = connect(home.root)
    try:
        found = con.sql(
            "SELECT s.title, s.license, list_contains(s.tags, 'dagtilbud'), d.publisher, "
            "r.url, d.rows_valid FROM catalog.sources s JOIN catalog.datasets d USING (dataset) "
            "JOIN catalog.source_resources r USING (dataset) WHERE dataset = ?",
            params=[spec.name],
        ).fetchall()
    finally:
        con.close()
    rows = silver(home, spec.name).height
    assert found == [
        (package["title"], package["license_title"], True, "Demo Kommune", resource["url"], rows)
    ]


def test_catalog_tables_keep_their_columns_before_anything_is_fetched(home) -> None:
    tables = catalog_tables(load_specs(), home)
    assert dict(tables["sources"].schema) == SOURCES_SCHEMA
    assert dict(tables["source_resources"].schema) == RESOURCES_SCHEMA
    assert tables["source_resources"].height == 0
    sources = tables["sources"]
    assert sources.height == len(load_specs()) and sources["title"].null_count() == sources.height
    kinds = dict(sources.select("dataset", "source_type").iter_rows())
    assert kinds["daycare_institutions"] == "ckan" and kinds["cpr_persons"] == "files"
    assert kinds["road_work_orders"] == "rest" and kinds["cvr_company_register"] == "cvr"


def test_rest_dataset_from_yaml_alone_loads_every_page(home, demo_apis) -> None:
    spec = spec_by_name("road_work_orders")
    meta = httpx.get(
        demo_apis.vendor,
        params={"page": 1, "page_size": 1},
        headers={"Authorization": f"Bearer {demo_apis.vendor_token}"},
        trust_env=False,
    ).json()["meta"]
    report = load_dataset(spec, home, TEST_KEY)
    assert all(b.status == "loaded" for b in report.batches)
    table = silver(home, spec.name)
    assert table.height == meta["total_items"] == table["order_id"].n_unique()
    pages = -(-meta["total_items"] // 50)
    assert len(report.batches) == pages
    # An empty last page (the total is a multiple of 50 here) is kept, never a batch.
    empty = landed(home, part_dataset(spec.name, "raw"))
    assert len(empty) == (meta["total_items"] % 50 == 0)
    assert runs(home, spec.name)["status"].to_list() == ["loaded"] * pages
    saved = cursors.latest(home, spec.name)
    assert saved is not None and saved.finished
    text = json.dumps(saved.state) + " ".join(f.original_name for f in landed(home, spec.name))
    assert demo_apis.vendor_token not in text
    assert load_dataset(spec, home, TEST_KEY).batches == ()


def test_rest_token_missing_names_the_variable(home, demo_apis, monkeypatch) -> None:
    monkeypatch.delenv("SOURCES__WORK_ORDERS__TOKEN")
    with pytest.raises(RestConfigError, match="SOURCES__WORK_ORDERS__TOKEN"):
        load_dataset(spec_by_name("road_work_orders"), home, TEST_KEY)
