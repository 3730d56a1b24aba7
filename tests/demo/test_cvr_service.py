"""The demo's CVR-like Elasticsearch against the REAL CVR answer (shared/fixtures/real/cvr)
and the demo's own drop file: same document shape, same companies, no person data, and our
CVR connector reads it through a real scroll with Basic auth."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from connectors import cvr
from connectors.demo import generate
from connectors.demo.extracts import cvr_companies
from connectors.demo.generator import stream
from connectors.demo.services import ServiceUrls
from connectors.demo.services.cvr import CvrService
from connectors.demo.services.registers import build_registers
from connectors.http import BasicAuth, HttpClient, HttpError
from tests.conftest import REAL_FIXTURES
from tests.demo.conftest import LOCAL, PERSONS, SEED

REAL = REAL_FIXTURES / "cvr" / "cvr_es_vrvirksomhed_25052943_hits.json"
SEARCH = "/cvr-permanent/virksomhed/_search"
BY_KOMMUNE = "Vrvirksomhed.virksomhedMetadata.nyesteBeliggenhedsadresse.kommune.kommuneKode"


@pytest.fixture
def http(urls: ServiceUrls) -> Iterator[httpx.Client]:
    auth = (urls.cvr_username, urls.cvr_password)
    with httpx.Client(base_url=urls.cvr, auth=auth, timeout=10, trust_env=False) as client:
        yield client


def real_company() -> dict[str, Any]:
    return json.loads(REAL.read_text("utf-8"))["hits"]["hits"][0]["_source"]["Vrvirksomhed"]


def search(http: httpx.Client, body: dict[str, Any], **params: str) -> dict[str, Any]:
    response = http.post(SEARCH, params=params, json=body)
    assert response.status_code == 200, response.text
    return response.json()


def kinds(value: Any) -> Any:
    """The JSON types of a document, recursively (lists by their first item)."""
    if isinstance(value, dict):
        return {k: kinds(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [kinds(value[0])] if value else []
    return type(value).__name__


def test_documents_have_the_real_keys_in_the_real_order(http):
    answer = search(http, {"query": {"match_all": {}}, "size": 3, "sort": ["_doc"]})
    real = json.loads(REAL.read_text("utf-8"))
    assert list(answer) == list(real)  # took, timed_out, _shards, hits (no scroll asked)
    assert list(answer["hits"]) == list(real["hits"])
    hit = answer["hits"]["hits"][0]
    assert list(hit)[:5] == list(real["hits"]["hits"][0]) and hit["sort"] == [0]
    assert hit["_score"] is None and answer["hits"]["max_score"] is None  # sorted: no score
    company, model = hit["_source"]["Vrvirksomhed"], real_company()
    assert list(company) == list(model)
    assert list(company["virksomhedMetadata"]) == list(model["virksomhedMetadata"])
    assert list(company["beliggenhedsadresse"][0]) == list(model["beliggenhedsadresse"][0])
    for key in ("navne", "hovedbranche", "virksomhedsform", "virksomhedsstatus", "livsforloeb"):
        assert list(company[key][0]) == list(model[key][0]), key
    assert hit["_id"] == str(company["enhedsNummer"])


def test_values_have_the_real_json_types(http):
    company = search(http, {"size": 1})["hits"]["hits"][0]["_source"]["Vrvirksomhed"]
    model = real_company()
    for key in ("cvrNummer", "enhedsNummer", "reklamebeskyttet", "sidstOpdateret", "samtId"):
        assert type(company[key]) is type(model[key]), key
    ours, theirs = kinds(company), kinds(model)
    compared = agreeing(ours, theirs)
    for key in ("navne", "beliggenhedsadresse", "hovedbranche", "virksomhedMetadata"):
        assert key in compared, key
    assert {"cvrNummer", "vejkode", "postnummer", "kommuneKode", "gyldigFra"} <= compared


def agreeing(ours: Any, theirs: Any, at: str = "") -> set[str]:
    """Assert that every key both documents have (non-null) holds the same JSON type; return
    the keys compared."""
    if isinstance(ours, dict) and isinstance(theirs, dict):
        keys = set()
        for key in ours.keys() & theirs.keys():
            keys |= {key} | agreeing(ours[key], theirs[key], f"{at}.{key}")
        return keys
    if isinstance(ours, list) and isinstance(theirs, list):
        return agreeing(ours[0], theirs[0], at) if ours and theirs else set()
    assert ours == theirs, at
    return set()


def test_the_served_companies_are_the_drop_files_before_defects(tmp_path: Path, services):
    summary = generate(tmp_path, persons=PERSONS, seed=SEED)
    lines = (tmp_path / "drop" / cvr_companies.PATH).read_text("utf-8").splitlines()
    defective = {row for rows in summary.datasets["cvr_companies"].defects.values() for row in rows}
    assert services.cvr is not None
    served = {
        (c := d["Vrvirksomhed"])["cvrNummer"]: {
            "cvrNummer": c["cvrNummer"],
            "navn": c["navne"][0]["navn"],
            "branchekode": c["hovedbranche"][0]["branchekode"],
            "branchetekst": c["hovedbranche"][0]["branchetekst"],
            "virksomhedsform": c["virksomhedsform"][0]["kortBeskrivelse"],
            "adresseId": c["beliggenhedsadresse"][0]["adresseId"],
            "startdato": c["livsforloeb"][0]["periode"]["gyldigFra"],
            "ophoersdato": c["livsforloeb"][0]["periode"]["gyldigTil"],
        }
        for d in services.cvr.documents
    }
    clean = [json.loads(line) for row, line in enumerate(lines, 1) if row not in defective]
    assert len(clean) > 40 and len(served) == len(services.cvr.documents)
    short = {"Enkeltmandsvirksomhed": "ENK", "ApS": "APS"}
    for record in clean:
        record["virksomhedsform"] = short.get(record["virksomhedsform"], record["virksomhedsform"])
        assert served[record["cvrNummer"]] == record


def test_no_person_data_is_served(http):
    answer = search(http, {"size": 3000})
    raw = json.dumps(answer, ensure_ascii=False)
    assert answer["hits"]["total"] == len(answer["hits"]["hits"]) > 40
    assert '"PERSON"' not in raw and 'deltager"' not in raw
    for hit in answer["hits"]["hits"]:
        company = hit["_source"]["Vrvirksomhed"]
        assert company["deltagerRelation"] == [] and company["enhedstype"] == "VIRKSOMHED"
        assert company["elektroniskPost"] == company["telefonNummer"] == []
        assert all(a["conavn"] is None for a in company["beliggenhedsadresse"])


def test_connector_scrolls_every_company_exactly_once_and_clears_the_scroll(urls, services):
    before = len(services.seen())
    auth = BasicAuth(urls.cvr_username, urls.cvr_password)
    with HttpClient(LOCAL, auth=auth) as client:
        pages = list(cvr.scroll(client, {"term": {BY_KOMMUNE: 350}}, size=7, base_url=urls.cvr))
    hits = [hit for page in pages for hit in page.hits]
    tables = cvr.flatten_companies(hits)
    assert services.cvr is not None
    assert tables.companies.height == len(services.cvr.documents)
    assert tables.companies["cvr"].n_unique() == tables.companies.height
    assert set(tables.companies["kommune_code"]) == {"0350"}
    assert pages[-1].hits == [] and pages[-1].state is None
    requests = services.seen()[before:]
    assert [r.method for r in requests] == ["POST"] * len(pages) + ["DELETE"]
    assert services.cvr.open_scrolls == 0
    closed = tables.companies.filter(tables.companies["end_date"].is_not_null())
    assert set(closed["status"]) <= {"OPHØRT"}


def test_queries_filter_and_unknown_queries_are_refused(http):
    assert search(http, {"query": {"term": {BY_KOMMUNE: "350"}}, "size": 0})["hits"]["total"] > 40
    assert search(http, {"query": {"term": {BY_KOMMUNE: 101}}})["hits"]["total"] == 0
    some = search(http, {"size": 1})["hits"]["hits"][0]["_source"]["Vrvirksomhed"]["cvrNummer"]
    one = {"bool": {"filter": [{"term": {"Vrvirksomhed.cvrNummer": some}}]}}
    assert search(http, {"query": one})["hits"]["total"] == 1
    refused = http.post(SEARCH, json={"query": {"fuzzy": {"x": 1}}})
    assert refused.status_code == 400
    assert refused.json()["error"]["type"] == "parsing_exception"
    assert http.post(SEARCH, json={"size": 3001}).status_code == 400
    missing = http.post("/cvr-permanent/deltager/_search", json={})
    assert missing.status_code == 404
    assert missing.json()["error"]["type"] == "index_not_found_exception"


def test_wrong_or_missing_credentials_are_refused_without_echoing_them(urls):
    with httpx.Client(base_url=urls.cvr, timeout=10, trust_env=False) as anonymous:
        missing = anonymous.post(SEARCH, json={})
        wrong = anonymous.post(SEARCH, json={}, auth=(urls.cvr_username, "not-the-password"))
    for answer in (missing, wrong):
        assert answer.status_code == 401
        assert answer.headers["WWW-Authenticate"].startswith("Basic")
        assert answer.json()["error"]["type"] == "security_exception"
    assert "not-the-password" not in wrong.text and urls.cvr_username in wrong.text
    with (
        HttpClient(LOCAL, auth=BasicAuth("someone", "else")) as client,
        pytest.raises(HttpError) as caught,
    ):
        list(cvr.scroll(client, base_url=urls.cvr))
    assert caught.value.status == 401


def test_a_scroll_call_advances_and_an_expired_scroll_is_404():
    now = [0.0]
    service = CvrService(
        build_registers(300, SEED).population,
        SEED,
        username="u",
        password="p",
        clock=lambda: now[0],
    )
    auth = "Basic " + base64.b64encode(b"u:p").decode()
    body = json.dumps({"size": 2, "sort": ["_doc"]}).encode()
    first = json.loads(service.handle("POST", ["cvr-permanent", "virksomhed"], {"scroll": "1m"},
                                      body, auth).body)  # fmt: skip
    scroll = json.dumps({"scroll": "1m", "scroll_id": first["_scroll_id"]}).encode()
    again = [
        json.loads(service.handle("POST", ["_search", "scroll"], {}, scroll, auth).body)
        for _ in range(2)
    ]
    sorts = [[h["sort"][0] for h in page["hits"]["hits"]] for page in (first, *again)]
    assert sorts == [[0, 1], [2, 3], [4, 5]]  # repeating a call skips ahead, like ES
    now[0] += 61  # past the keep-alive
    expired = service.handle("POST", ["_search", "scroll"], {}, scroll, auth)
    assert expired.status == 404
    assert json.loads(expired.body)["error"]["root_cause"][0]["type"] == (
        "search_context_missing_exception"
    )
    cleared = service.handle("DELETE", ["_search", "scroll"], {}, scroll, auth)
    assert cleared.status == 404 and json.loads(cleared.body) == {"succeeded": True, "num_freed": 0}


def test_companies_are_deterministic_for_a_seed():
    population = build_registers(300, SEED).population
    first = CvrService(population, SEED, username="u", password="p").documents
    again = CvrService(population, SEED, username="u", password="p").documents
    assert first == again
    replayed = cvr_companies.clean_companies(stream(SEED, cvr_companies.NAME), population)
    assert [d["Vrvirksomhed"]["cvrNummer"] for d in first] == [c["cvrNummer"] for c in replayed]
