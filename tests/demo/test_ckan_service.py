"""The demo's CKAN-like portal against the REAL CKAN answers (shared/fixtures/real/ckan:
Birmingham's package_search, opendata.swiss's package_show): same envelope, package and
resource keys, CKAN's error answers, and our CKAN connector reads and downloads from it."""

from __future__ import annotations

import csv
import io
import json
from typing import Any

import httpx
import pytest

from connectors import ckan
from connectors.demo.services import DemoServices, ServiceUrls
from connectors.demo.services.ckan import SITE_URL
from tests.conftest import REAL_FIXTURES
from tests.demo.conftest import PERSONS, SEED

SEARCH = REAL_FIXTURES / "ckan" / "data_birmingham_gov_uk_package_search.json"
SHOW = next((REAL_FIXTURES / "ckan").glob("opendata_swiss_package_show_*.json"))


def action(urls: ServiceUrls, name: str, **params: Any) -> httpx.Response:
    return httpx.get(f"{urls.ckan}/api/3/action/{name}", params=params, trust_env=False)


def test_package_search_has_the_real_envelope_and_keys(urls):
    response = action(urls, "package_search", rows=10)
    real = json.loads(SEARCH.read_text("utf-8"))
    answer = response.json()
    assert response.status_code == 200 and response.content.startswith(b'{"help": "')
    assert list(answer) == list(real) and list(answer["result"]) == list(real["result"])
    # Links name the portal's public address, not the 127.0.0.1 port it is reached at.
    assert answer["help"] == f"{SITE_URL}/api/3/action/help_show?name=package_search"
    assert ckan.site_url(response.content) == SITE_URL
    package, model = answer["result"]["results"][0], real["result"]["results"][0]
    assert list(package) == list(model)
    assert list(package["resources"][0]) == list(model["resources"][0])
    assert list(package["organization"]) == list(model["organization"])
    assert list(package["tags"][0]) == list(model["tags"][0])
    assert package["maintainer_email"].endswith("@demo-kommune.example")  # a team, not a person


def test_package_show_answers_like_the_real_portal(urls):
    real = json.loads(SHOW.read_text("utf-8"))
    answer = action(urls, "package_show", id="daginstitutioner").json()
    assert list(answer) == list(real) and answer["success"] is True
    core = {"id", "name", "title", "license_id", "metadata_modified", "organization", "tags"}
    assert core <= set(answer["result"]) & set(real["result"])
    by_id = action(urls, "package_show", id=answer["result"]["id"]).json()
    assert by_id == answer


def test_connector_pages_through_every_package_and_reads_the_metadata(urls, client):
    pages = list(ckan.package_search(client, urls.ckan, rows=1, fq="organization:demo-kommune"))
    assert [p.count for p in pages] == [2, 2] and pages[-1].state is None
    records = {r.name: r for page in pages for r in page.records}
    assert set(records) == {"daginstitutioner", "legepladser"}
    daycare = records["daginstitutioner"]
    assert daycare.title == "Daginstitutioner i Demo Kommune"
    assert daycare.organization == "Demo Kommune" and daycare.organization_name == "demo-kommune"
    assert daycare.license == "Creative Commons Attribution 4.0"
    assert daycare.tags == ("børn", "dagtilbud", "institutioner")
    assert daycare.landing_page == f"{urls.ckan}/dataset/daginstitutioner"  # as configured
    [resource] = daycare.resources
    assert resource.format == "CSV" and resource.size and resource.modified is not None
    tagged = list(ckan.package_search(client, urls.ckan, fq="tags:legepladser"))
    assert [r.name for p in tagged for r in p.records] == ["legepladser"]


def test_downloaded_file_is_the_advertised_one_at_demo_addresses(urls, client, services):
    shown = ckan.package_show(client, urls.ckan, "daginstitutioner")
    resource = ckan.choose_resource(shown.record, format="csv")
    assert resource.url is not None and resource.url.startswith(f"{SITE_URL}/dataset/")
    local = ckan.via_portal(resource.url, ckan.site_url(shown.raw), urls.ckan)
    assert local.startswith(f"{urls.ckan}/dataset/") and local.endswith("/daginstitutioner.csv")
    download = ckan.download_resource(client, local, max_bytes=1_000_000)
    assert download.size == resource.size and download.media_type == "text/csv"
    assert download.content is not None
    rows = list(csv.DictReader(io.StringIO(download.content.decode("utf-8"))))
    assert len(rows) == PERSONS // 400 and len({r["id"] for r in rows}) == len(rows)
    assert services.registers is not None
    addresses = {a.id for a in services.registers.population.addresses}
    assert {r["adresse_id"] for r in rows} <= addresses
    with pytest.raises(ckan.DownloadTooLargeError):
        ckan.download_resource(client, local, max_bytes=10)


def test_errors_are_ckans_own(urls, client):
    with pytest.raises(ckan.CkanError) as missing:
        ckan.package_show(client, urls.ckan, "no-such-dataset")
    assert (missing.value.status, missing.value.error_type) == (404, "Not Found Error")
    no_id = action(urls, "package_show")
    assert no_id.status_code == 409
    assert no_id.json()["error"] == {"id": ["Missing value"], "__type": "Validation Error"}
    too_many = action(urls, "package_search", rows=1001)
    assert too_many.status_code == 409 and "rows" in too_many.json()["error"]
    unknown = action(urls, "datastore_search")
    assert unknown.status_code == 400
    assert unknown.json() == "Bad request - Action name not known: datastore_search"
    file = httpx.get(f"{urls.ckan}/dataset/x/resource/y/download/z.csv", trust_env=False)
    assert file.status_code == 404


def test_the_portal_answers_the_same_bytes_for_a_seed_on_any_port(urls):
    with DemoServices(PERSONS, SEED) as other:
        assert other.ckan != urls.ckan
        again = action(other, "package_show", id="daginstitutioner").content
    assert action(urls, "package_show", id="daginstitutioner").content == again


def test_only_links_under_the_portals_own_address_are_rewritten():
    site, portal = "https://ckan.example.org", "http://127.0.0.1:8080/ckan"
    assert ckan.via_portal(f"{site}/dataset/a/x.csv", site, portal) == f"{portal}/dataset/a/x.csv"
    elsewhere = "https://files.example.net/x.csv"
    assert ckan.via_portal(elsewhere, site, portal) == elsewhere
    assert ckan.via_portal(f"{site}x/evil.csv", site, portal) == f"{site}x/evil.csv"
    assert ckan.via_portal(f"{site}/a.csv", None, portal) == f"{site}/a.csv"
    assert ckan.site_url(b'{"help": "https://h.dk/sub/api/3/action/help_show?name=x"}') == (
        "https://h.dk/sub"
    )
    assert ckan.site_url(b"not json") is None and ckan.site_url(b'{"help": 1}') is None
