"""CKAN connector against a fake CKAN portal on 127.0.0.1 serving the REAL samples
(shared/fixtures/real/ckan, see PROVENANCE.md): Birmingham City Council's package_search
answer (10 results), split into `start`/`rows` pages, and opendata.swiss's package_show
answer, served byte for byte. Only `result.count` of the search changes (the fake portal
holds exactly these 10 packages). The error bodies are synthetic, in CKAN 2.x's shape
(`{"help", "success": false, "error": {"__type", "message"}}`): no real one was recorded.
"""

from __future__ import annotations

import copy
import gzip
import hashlib
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from connectors.ckan import (
    CkanError,
    DatasetRecord,
    DownloadTooLargeError,
    auth_from_env,
    dataset_record,
    download_resource,
    package_search,
    package_show,
    parse_action,
)
from connectors.formats.errors import FormatError
from connectors.http import ApiKeyAuth, HttpClient, HttpError
from tests.connectors.conftest import FAST, REAL
from tests.connectors.fakeserver import FakeServer, FaultSchedule, Recorder, Reply, Request

CKAN = REAL / "ckan"
SEARCH_FILE = CKAN / "data_birmingham_gov_uk_package_search.json"
SHOW_FILE = CKAN / "opendata_swiss_package_show_reisen-der-schweizer-wohnbevolkerung-2019.json"
SWISS = "reisen-der-schweizer-wohnbevolkerung-2019"
API_KEY = "ckan-key-0123-abcd"


def ckan_error(action: str, error: dict[str, Any], status: int) -> Reply:
    """CKAN's shape: `__type` before `message`, `help` first, compact JSON on one line."""
    help_url = f"https://portal.example/api/3/action/help_show?name={action}"
    body = {"help": help_url, "success": False, "error": error}
    return Reply(status, json.dumps(body).encode(), {"Content-Type": "application/json"})


class FakeCkan:
    def __init__(self, server: FakeServer) -> None:
        self.server = server
        self.search = json.loads(SEARCH_FILE.read_bytes())
        self.results = self.search["result"]["results"]
        self.resource = SHOW_FILE.read_bytes()  # any real bytes will do as a "file"
        self.searches: list[dict[str, list[str]]] = []
        self.sent: list[bytes] = []
        self.file_auth: list[str | None] = []
        routes = {
            ("GET", "/api/3/action/package_search"): self.package_search,
            ("GET", "/api/3/action/package_show"): self.package_show,
            ("GET", "/old/api/3/action/package_show"): self.success_false,
            ("GET", "/files/report.pdf"): self.file,
            ("GET", "/files/big.pdf"): self.file,
            ("GET", "/files/compressed.pdf"): self.compressed,
            ("GET", "/files/missing.pdf"): lambda request: Reply(404, b"not here"),
        }
        for (method, path), route in routes.items():
            server.route(method, path)(route)

    @property
    def portal(self) -> str:
        return self.server.url

    def package_search(self, request: Request) -> Reply:
        self.searches.append(request.query)
        if "[" in (request.arg("fq") or ""):
            return ckan_error(
                "package_search",
                {"__type": "Search Query Error", "message": "Search Query is invalid: fq"},
                409,
            )
        start, rows = int(request.arg("start", "0") or 0), int(request.arg("rows", "10") or 10)
        body = copy.deepcopy(self.search)
        body["result"].update(count=len(self.results), results=self.results[start : start + rows])
        reply = Reply(200, json.dumps(body).encode(), {"Content-Type": "application/json"})
        self.sent.append(reply.body)
        return reply

    def package_show(self, request: Request) -> Reply:
        if request.arg("id") == SWISS:
            return Reply(200, SHOW_FILE.read_bytes(), {"Content-Type": "application/json"})
        if request.arg("id") == "long-error":
            message = "Not found: " + "the dataset was deleted or never existed; " * 8
            return ckan_error("package_show", {"__type": "Not Found", "message": message}, 404)
        return ckan_error(
            "package_show", {"__type": "Not Found Error", "message": "Not found"}, 404
        )

    def success_false(self, request: Request) -> Reply:
        # Some older portals answer 200 and report the failure only in the body.
        body = {"success": False, "error": {"__type": "Authorization Error", "message": "Denied"}}
        return Reply.json(body)

    def file(self, request: Request) -> Reply:
        self.file_auth.append(request.headers.get("Authorization"))
        return Reply(200, self.resource, {"Content-Type": "application/pdf"})

    def compressed(self, request: Request) -> Reply:
        # Small on the wire (Content-Length is the compressed size), large once decoded.
        body = gzip.compress(self.resource * 20)
        return Reply(200, body, {"Content-Type": "application/pdf", "Content-Encoding": "gzip"})


@pytest.fixture
def ckan() -> Iterator[FakeCkan]:
    with FakeServer() as server:
        yield FakeCkan(server)
        assert not server.errors, server.errors[0]


@pytest.fixture
def client() -> Iterator[HttpClient]:
    with HttpClient(FAST, sleep=Recorder()) as c:
        yield c


# -- package_search


def test_package_search_pages_with_start_and_rows_and_hands_back_raw_pages(ckan, client):
    pages = list(package_search(client, ckan.portal, q="Purchase Card transactions", rows=4))

    assert [(q["start"], q["rows"]) for q in ckan.searches] == [
        (["0"], ["4"]),
        (["4"], ["4"]),
        (["8"], ["4"]),
    ]
    assert all(q["q"] == ["Purchase Card transactions"] for q in ckan.searches)
    assert all(q["sort"] == ["name asc"] for q in ckan.searches)  # a stable order for offsets
    assert [p.raw for p in pages] == ckan.sent
    assert [len(p.packages) for p in pages] == [4, 4, 2]
    assert [p.count for p in pages] == [10, 10, 10]
    assert [pkg["id"] for p in pages for pkg in p.packages] == [r["id"] for r in ckan.results]
    assert [r.name for p in pages for r in p.records] == [r["name"] for r in ckan.results]
    assert [p.state for p in pages] == [{"offset": 4}, {"offset": 8}, None]
    assert pages[0].request["q"] == "Purchase Card transactions"


def test_package_search_resumes_from_a_saved_state_with_exactly_the_rest(ckan, client):
    saved = json.loads(json.dumps({"offset": 4}))  # persisted after landing page 1 of 4 rows
    pages = list(package_search(client, ckan.portal, rows=4, state=saved))

    assert [q["start"] for q in ckan.searches] == [["4"], ["8"]]
    assert [pkg["name"] for p in pages for pkg in p.packages] == [
        r["name"] for r in ckan.results[4:]
    ]


def test_a_match_count_that_changes_between_pages_stops_the_search(ckan, client):
    pages = package_search(client, ckan.portal, rows=4)
    first = next(pages)
    # A dataset published while paging: every later offset now points one record early.
    ckan.results.insert(0, {**ckan.results[0], "id": "new", "name": "a-new-dataset"})

    with pytest.raises(CkanError, match=r"changed from 10 to 11 while paging \(page 2\)") as e:
        next(pages)

    assert first.count == 10
    assert "Run the search again" in str(e.value)


def test_search_records_are_what_the_catalog_shows(ckan, client):
    record = next(package_search(client, ckan.portal, rows=10)).records[0]

    assert record.title == "Purchase Card Transactions"
    assert record.name == "purchase-card-transactions"
    assert record.description.startswith("Under the Code of Recommended Practice")
    assert (record.organization, record.organization_name) == (
        "Birmingham City Council",
        "birmingham-city-council",
    )
    assert (record.license, record.license_id) == ("UK Open Government Licence (OGL)", "uk-ogl")
    assert record.tags == ("payments", "purchase card")
    assert record.modified == datetime(2021, 1, 15, 10, 25, 28, 638659, tzinfo=UTC)
    assert record.created == datetime(2014, 12, 1, 10, 29, 19, 414595, tzinfo=UTC)
    assert record.landing_page == f"{ckan.portal}/dataset/purchase-card-transactions"
    assert len(record.resources) == 45
    first = record.resources[0]
    assert first.name == "Purchase Card transactions - April 2014"  # trailing blank dropped
    assert first.format == "XLS" and first.size is None
    assert first.url.endswith("/download/purchasecardtransactionsapril2014.xls")
    # maintainer/author (a person's name and e-mail in this sample) stay out of the record
    assert "Ian Martin" not in json.dumps(record.as_dict())


def test_a_rejected_search_gives_the_portals_reason(ckan, client):
    with pytest.raises(CkanError) as caught:
        list(package_search(client, ckan.portal, fq="res_format:[XLS"))

    error = caught.value
    assert (error.status, error.error_type) == (409, "Search Query Error")
    assert "Search Query Error: Search Query is invalid: fq (HTTP 409)" in str(error)
    assert "Solr query syntax" in str(error)


@pytest.mark.parametrize("rows", [0, 1001])
def test_rows_outside_what_ckan_allows_are_refused_before_any_request(ckan, client, rows):
    with pytest.raises(ValueError, match="rows must be"):
        package_search(client, ckan.portal, rows=rows)
    assert ckan.server.count() == 0


# -- package_show


def test_package_show_keeps_the_bytes_and_reads_multilingual_metadata(ckan, client):
    shown = package_show(client, ckan.portal, SWISS, languages=("da", "en", "de"))

    assert shown.raw == SHOW_FILE.read_bytes()
    record = shown.record
    assert record.title == "Reisen der Schweizer Wohnbevölkerung 2019"  # no da/en title
    assert record.organization == "Federal Statistical Office FSO"  # en before de
    assert record.description is None  # every language empty
    # no dataset licence: the resources' common rights statement stands in
    assert record.license_id is None
    assert record.license == "NonCommercialAllowed-CommercialWithPermission-ReferenceRequired"
    assert len(record.tags) == 16 and "tourismus" in record.tags
    assert record.modified == datetime(2022, 3, 11, 4, 29, 14, 709926, tzinfo=UTC)
    assert record.source_url == "https://www.bfs.admin.ch/asset/de/502-1900"
    assert [(r.format, r.media_type, r.size) for r in record.resources] == [
        ("PDF", "application/pdf", None),  # byte_size 0 there means unknown
        ("HTML", "text/html", None),
        ("HTML", "text/html", None),
        ("PDF", "application/pdf", None),
    ]
    assert record.resources[0].modified == datetime(2020, 10, 20, tzinfo=UTC)
    assert (
        record.resources[0].url == "https://www.bfs.admin.ch/bfsstatic/dam/assets/14816741/master"
    )


def test_without_a_wanted_language_the_portals_first_one_is_used(ckan, client):
    record = package_show(client, ckan.portal, SWISS).record  # languages ("da", "en")
    assert record.title == "Voyages de la population résidante suisse en 2019"  # fr comes first


def test_an_unknown_dataset_gives_a_clear_ckan_error(ckan, client):
    with pytest.raises(CkanError) as caught:
        package_show(client, ckan.portal, "no-such-dataset")

    error = caught.value
    assert (error.status, error.error_type) == (404, "Not Found Error")
    assert str(error).startswith("CKAN package_show 'no-such-dataset' at 127.0.0.1")
    assert "refused: Not Found Error: Not found (HTTP 404)" in str(error)
    assert "Check the dataset id or name" in str(error)


def test_an_error_body_cut_short_still_gives_its_type_and_message(ckan, client):
    with pytest.raises(CkanError) as caught:
        package_show(client, ckan.portal, "long-error")
    assert caught.value.error_type == "Not Found"
    assert "refused: Not Found: Not found: the dataset was deleted" in str(caught.value)


def test_success_false_in_a_200_answer_is_an_error_too(ckan, client):
    with pytest.raises(CkanError, match="Authorization Error: Denied") as caught:
        package_show(client, f"{ckan.portal}/old", SWISS)
    assert caught.value.status is None
    assert "SOURCES__<SOURCE>__API_KEY" in str(caught.value)


# -- the real samples


def test_every_real_sample_parses():
    search = parse_action(SEARCH_FILE.read_bytes(), action="package_search")
    assert search["count"] == 38 and len(search["results"]) == 10
    shown = parse_action(SHOW_FILE.read_bytes(), action="package_show")
    packages = [*search["results"], shown]
    records = [dataset_record(p, portal="https://portal.example") for p in packages]
    assert all(isinstance(r, DatasetRecord) and r.title and r.organization for r in records)
    assert sum(len(r.resources) for r in records) == 45 + 9 + 4
    assert all(res.url and res.url.startswith("https://") for r in records for res in r.resources)
    json.dumps([r.as_dict() for r in records])  # JSON-able for the catalog


def test_something_else_than_a_ckan_answer_is_a_format_error():
    with pytest.raises(FormatError, match="not a CKAN action answer"):
        parse_action(b'{"result": []}', action="package_search")
    with pytest.raises(FormatError, match="not a CKAN package"):
        dataset_record({"title": "no id or name"}, portal="https://portal.example")


def test_the_api_key_comes_from_the_environment():
    assert auth_from_env({}, "birmingham") is None
    auth = auth_from_env({"SOURCES__BIRMINGHAM__API_KEY": API_KEY}, "birmingham")
    assert isinstance(auth, ApiKeyAuth) and auth.header == "Authorization"
    assert API_KEY not in repr(auth)


# -- downloads


def test_download_to_memory(ckan, client):
    got = download_resource(client, f"{ckan.portal}/files/report.pdf", max_bytes=1 << 20)

    assert got.content == ckan.resource and got.path is None
    assert got.size == len(ckan.resource)
    assert got.sha256 == hashlib.sha256(ckan.resource).hexdigest()
    assert got.media_type == "application/pdf"


def test_download_to_a_file_leaves_no_partial_file(ckan, client, tmp_path: Path):
    dest = tmp_path / "report.pdf"
    got = download_resource(client, f"{ckan.portal}/files/report.pdf", max_bytes=1 << 20, dest=dest)

    assert got.path == dest and got.content is None
    assert dest.read_bytes() == ckan.resource
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report.pdf"]


def test_a_file_declared_too_large_is_refused_before_reading(ckan, client, tmp_path: Path):
    limit = len(ckan.resource) - 1
    with pytest.raises(DownloadTooLargeError, match=f"declares {len(ckan.resource)} bytes"):
        download_resource(
            client, f"{ckan.portal}/files/big.pdf", max_bytes=limit, dest=tmp_path / "b"
        )
    assert list(tmp_path.iterdir()) == []


def test_a_compressed_file_is_measured_decoded(ckan, client, tmp_path: Path):
    limit = 100_000  # the gzip body is far smaller than this, the file far larger
    assert len(gzip.compress(ckan.resource * 20)) < limit < len(ckan.resource) * 20
    with pytest.raises(DownloadTooLargeError, match="sent more than 100000 bytes"):
        download_resource(
            client, f"{ckan.portal}/files/compressed.pdf", max_bytes=limit, dest=tmp_path / "c"
        )
    assert list(tmp_path.iterdir()) == []  # the partial file is gone


def test_a_failing_file_host_is_retried_and_a_missing_file_is_not(ckan, tmp_path: Path):
    with FakeServer(faults=FaultSchedule({0: "503", 1: "reset"})) as server:
        fake = FakeCkan(server)
        sleeps = Recorder()
        with HttpClient(FAST, sleep=sleeps) as client:
            got = download_resource(
                client, f"{fake.portal}/files/report.pdf", max_bytes=1 << 20, sleep=sleeps
            )
            with pytest.raises(HttpError) as caught:
                download_resource(client, f"{fake.portal}/files/missing.pdf", max_bytes=10)
        assert not server.errors, server.errors[0]

    assert got.content == fake.resource
    assert server.faults_injected() == ["503", "reset"] and len(sleeps.calls) == 2
    assert caught.value.status == 404 and not caught.value.transient
    assert server.count("/files/missing.pdf") == 1


def test_credentials_go_to_a_file_only_when_asked(ckan):
    with HttpClient(FAST, auth=ApiKeyAuth(API_KEY, header="Authorization")) as client:
        download_resource(client, f"{ckan.portal}/files/report.pdf", max_bytes=1 << 20)
        download_resource(
            client, f"{ckan.portal}/files/report.pdf", max_bytes=1 << 20, send_auth=True
        )
    assert ckan.file_auth == [None, API_KEY]
