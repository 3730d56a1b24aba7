"""CVR connector against a fake CVR Elasticsearch on 127.0.0.1 serving the REAL samples
(shared/fixtures/real/cvr, see PROVENANCE.md): the company 25052943 (MAGENTA ApS, one hit)
in `virksomhed`, and 10 P-unit hits in `produktionsenhed`, which are split into scroll pages.

The fake checks HTTP Basic credentials on every request, keeps server-side scroll contexts
that advance on every scroll call, and records the bytes of every answer, so tests can show
the caller gets exactly what was sent. Envelopes are the samples' own; only `_scroll_id`,
the slice of hits and `hits.total` (the fake index holds exactly these hits) change.
"""

from __future__ import annotations

import base64
import copy
import itertools
import json
from collections.abc import Iterator
from datetime import UTC, date, datetime
from typing import Any

import polars as pl
import pytest

from connectors.cvr import (
    COMPANY_SCHEMA,
    CompanyTables,
    auth_from_env,
    flatten_companies,
    parse_hits,
    scroll,
)
from connectors.formats.errors import FormatError
from connectors.http import BasicAuth, HttpClient, HttpError
from connectors.paging import PagingError
from tests.connectors.conftest import FAST, REAL
from tests.connectors.fakeserver import FakeServer, FaultSchedule, Recorder, Reply, Request

CVR = REAL / "cvr"
COMPANY_FILE = CVR / "cvr_es_vrvirksomhed_25052943_hits.json"
UNITS_FILE = CVR / "cvr_es_vrproduktionsenhed_match_all_10hits.json"
USER, PASSWORD = "kommunelake_test", "s3cret-Æøå-pw"
BY_CVR = {"term": {"Vrvirksomhed.cvrNummer": 25052943}}


class FakeCvr:
    """POST /cvr-permanent/<index>/_search?scroll=, POST and DELETE /_search/scroll."""

    def __init__(self, server: FakeServer) -> None:
        self.server = server
        self.samples = {
            "virksomhed": json.loads(COMPANY_FILE.read_bytes()),
            "produktionsenhed": json.loads(UNITS_FILE.read_bytes()),
        }
        self.expected_auth = "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
        self.contexts: dict[str, list[Any]] = {}  # id -> [index, position, size]
        self.searches: list[dict[str, Any]] = []  # (query params, body) of each search
        self.sent: list[bytes] = []  # every 200 answer's body, in order
        self.unauthorised = 0
        self.partial: dict[int, str] = {}  # answer number (0-based) -> "shards" | "timeout"
        self._ids = itertools.count(1)
        for index in self.samples:
            server.route("POST", f"/cvr-permanent/{index}/_search")(self._search(index))
        server.route("POST", "/_search/scroll")(self.scroll)
        server.route("DELETE", "/_search/scroll")(self.clear)

    @property
    def url(self) -> str:
        return self.server.url

    def hits(self, index: str) -> list[dict[str, Any]]:
        return self.samples[index]["hits"]["hits"]

    def _authorised(self, request: Request) -> bool:
        ok = request.headers.get("Authorization") == self.expected_auth
        self.unauthorised += not ok
        return ok

    def _answer(self, index: str, position: int, size: int, scroll_id: str) -> Reply:
        sample = self.samples[index]
        body = {"_scroll_id": scroll_id}
        body |= {k: copy.deepcopy(v) for k, v in sample.items() if k != "hits"}
        hits = self.hits(index)
        body["hits"] = {
            "total": len(hits),
            "max_score": sample["hits"]["max_score"],
            "hits": hits[position : position + size],
        }
        self._make_partial(body, self.partial.get(len(self.sent)))
        reply = Reply.json(body, headers={"Content-Type": "application/json; charset=UTF-8"})
        self.sent.append(reply.body)
        return reply

    @staticmethod
    def _make_partial(body: dict[str, Any], kind: str | None) -> None:
        """What Elasticsearch answers, still with 200, when shards fail or time out: only
        the hits of the shards that answered (synthetic: not recorded from CVR)."""
        if kind is None:
            return
        body["hits"]["hits"] = body["hits"]["hits"][:1]
        if kind == "timeout":
            body["timed_out"] = True
            return
        reason = {"type": "es_rejected_execution_exception", "reason": "rejected execution"}
        failure = {"shard": 3, "index": "cvr-permanent-prod-20170205", "reason": reason}
        body["_shards"] = {"total": 6, "successful": 4, "failed": 2, "failures": [failure]}

    @staticmethod
    def _refused() -> Reply:
        # What Elasticsearch behind a basic-auth proxy answers (synthetic: not recorded).
        return Reply.json({"error": "unauthorized"}, 401, {"WWW-Authenticate": 'Basic realm="cvr"'})

    def _search(self, index: str):
        def search(request: Request) -> Reply:
            if not self._authorised(request):
                return self._refused()
            body = request.json()
            self.searches.append({"query": request.query, "body": body})
            scroll_id = base64.b64encode(f"DnF1ZXJ5VGhlbkZldGNo;{next(self._ids)}".encode())
            size = int(body["size"])
            self.contexts[scroll_id.decode()] = [index, size, size]
            return self._answer(index, 0, size, scroll_id.decode())

        return search

    def scroll(self, request: Request) -> Reply:
        if not self._authorised(request):
            return self._refused()
        scroll_id = request.json().get("scroll_id")
        context = self.contexts.get(scroll_id)
        if context is None:
            reason = {"type": "search_context_missing_exception", "reason": "No search context"}
            return Reply.json({"error": {"root_cause": [reason], **reason}, "status": 404}, 404)
        index, position, size = context
        context[1] = position + size  # the server moves on, whether the answer arrives or not
        return self._answer(index, position, size, scroll_id)

    def clear(self, request: Request) -> Reply:
        if not self._authorised(request):
            return self._refused()
        freed = [i for i in request.json().get("scroll_id", []) if self.contexts.pop(i, None)]
        return Reply.json({"succeeded": True, "num_freed": len(freed)}, 200 if freed else 404)


@pytest.fixture
def cvr() -> Iterator[FakeCvr]:
    with FakeServer() as server:
        yield FakeCvr(server)
        assert not server.errors, server.errors[0]


def client_for(password: str = PASSWORD, **kwargs: Any) -> HttpClient:
    return HttpClient(FAST, auth=BasicAuth(USER, password), sleep=Recorder(), **kwargs)


@pytest.fixture
def company() -> CompanyTables:
    return flatten_companies(parse_hits(COMPANY_FILE.read_bytes()))


# -- fetching


def test_scroll_sends_the_query_with_basic_auth_and_hands_back_the_raw_pages(cvr):
    with client_for() as client:
        pages = list(scroll(client, BY_CVR, size=2, base_url=cvr.url))

    assert cvr.unauthorised == 0
    arrivals = cvr.server.arrivals
    assert [(a.method, a.path) for a in arrivals] == [
        ("POST", "/cvr-permanent/virksomhed/_search"),
        ("POST", "/_search/scroll"),
        ("DELETE", "/_search/scroll"),  # the scroll context is cleared at the end
    ]
    assert all(a.headers["Authorization"] == cvr.expected_auth for a in arrivals)
    assert cvr.searches == [
        {"query": {"scroll": ["1m"]}, "body": {"query": BY_CVR, "size": 2, "sort": ["_doc"]}}
    ]
    assert cvr.contexts == {}
    # the caller gets the bytes exactly as sent, page by page, for landing
    assert [p.raw for p in pages] == cvr.sent
    assert [p.media_type for p in pages] == ["application/json"] * 2
    assert [len(p.hits) for p in pages] == [1, 0]
    assert pages[0].state is not None and pages[-1].state is None
    assert pages[0].request == {"index": "virksomhed", "body": cvr.searches[0]["body"]}
    assert pages[0].hits == cvr.hits("virksomhed")
    assert flatten_companies(pages[0].hits).companies["cvr"].to_list() == ["25052943"]


def test_wrong_password_fails_with_a_clear_error_that_keeps_the_password_out(cvr):
    with client_for("wrong-" + PASSWORD) as client, pytest.raises(HttpError) as caught:
        list(scroll(client, BY_CVR, base_url=cvr.url))

    assert caught.value.status == 401
    assert "credentials were refused" in str(caught.value)
    assert "wrong-" not in str(caught.value) and PASSWORD not in str(caught.value)
    assert cvr.unauthorised == 1 and cvr.server.count() == 1  # a 401 is not retried


def all_pages(cvr: FakeCvr, size: int, **kwargs: Any) -> list[Any]:
    with client_for() as client:
        return list(scroll(client, index="produktionsenhed", size=size, base_url=cvr.url, **kwargs))


@pytest.mark.parametrize("landed", [1, 2, 3])
def test_resuming_from_a_saved_state_gives_exactly_the_remaining_hits(cvr, landed):
    hits = cvr.hits("produktionsenhed")
    full = all_pages(cvr, size=3)
    assert [len(p.hits) for p in full] == [3, 3, 3, 1, 0]
    assert [h["_id"] for p in full for h in p.hits] == [h["_id"] for h in hits]

    # A run that stopped after landing `landed` pages persisted that page's state as JSON;
    # by now its scroll context is gone (it expired), as it would be in real life.
    saved = json.loads(json.dumps(full[landed - 1].state))
    cvr.contexts.clear()
    searches = len(cvr.searches)
    resumed = all_pages(cvr, size=3, state=saved)

    got = [h["_id"] for p in resumed for h in p.hits]
    assert got == [h["_id"] for h in hits[3 * landed :]]  # no gap, no duplicate
    assert len(cvr.searches) == searches + 1  # the scroll started over ...
    assert cvr.contexts == {}  # ... and every context it opened was cleared


def test_a_lost_scroll_answer_restarts_the_scroll_without_losing_or_repeating_hits():
    # Arrivals: 0 search, 1 scroll, 2 scroll whose answer is cut off after the server moved on
    with FakeServer(faults=FaultSchedule({2: "truncate"})) as server:
        cvr = FakeCvr(server)
        pages = all_pages(cvr, size=3)
        assert not server.errors, server.errors[0]

    assert server.faults_injected() == ["truncate"]
    ids = [h["_id"] for p in pages for h in p.hits]
    assert ids == [h["_id"] for h in cvr.hits("produktionsenhed")]
    assert len(cvr.searches) == 2


@pytest.mark.parametrize(
    ("kind", "problem"),
    [
        ("shards", "2 of 6 shards failed: es_rejected_execution_exception"),
        ("timeout", "the search timed out"),
    ],
)
def test_an_answer_missing_the_hits_of_failed_shards_stops_the_load(cvr, kind, problem):
    # The second answer (the first scroll call) holds 1 of its 3 hits: taking it would lose
    # two companies without a word. The pages before it stay landed; resuming reads on.
    cvr.partial[1] = kind
    pages: list[Any] = []
    expected = f"incomplete \\({problem}.*Run the load again"
    with client_for() as client, pytest.raises(PagingError, match=expected):
        for page in scroll(client, index="produktionsenhed", size=3, base_url=cvr.url):
            pages.append(page)
    assert [len(p.hits) for p in pages] == [3]
    assert cvr.contexts == {}  # the scroll was cleared all the same

    cvr.partial.clear()
    resumed = all_pages(cvr, size=3, state=json.loads(json.dumps(pages[0].state)))
    ids = [h["_id"] for p in [*pages, *resumed] for h in p.hits]
    assert ids == [h["_id"] for h in cvr.hits("produktionsenhed")]


def test_auth_comes_from_the_environment_only():
    env = {"SOURCES__CVR__USERNAME": USER, "SOURCES__CVR__PASSWORD": PASSWORD}
    auth = auth_from_env(env)
    assert isinstance(auth, BasicAuth) and PASSWORD in auth.secret_values()
    assert PASSWORD not in repr(auth)

    with pytest.raises(ValueError, match="SOURCES__CVR__PASSWORD") as caught:
        auth_from_env({"SOURCES__CVR__USERNAME": USER})
    assert "SOURCES__CVR__USERNAME" not in str(caught.value)  # only what is missing
    with pytest.raises(ValueError, match="SOURCES__CVR_TEST__USERNAME"):
        auth_from_env({}, source="cvr_test")


@pytest.mark.parametrize("size", [0, 3001])
def test_page_size_outside_what_cvr_allows_is_refused_before_any_request(cvr, size):
    with client_for() as client, pytest.raises(ValueError, match=r"size must be 1\.\.3000"):
        scroll(client, size=size, base_url=cvr.url)
    assert cvr.server.count() == 0


# -- parsing the real samples


def test_every_real_sample_parses():
    assert [h["_id"] for h in parse_hits(COMPANY_FILE.read_bytes())] == ["4001248508"]
    units = parse_hits(UNITS_FILE.read_bytes())
    assert len(units) == 10
    assert all("VrproduktionsEnhed" in h["_source"] for h in units)
    tables = flatten_companies(parse_hits(COMPANY_FILE.read_bytes()))
    assert {name: frame.height for name, frame in tables.as_dict().items()} == {
        "companies": 1,
        "names": 2,
        "addresses": 5,
        "statuses": 1,
        "industries": 4,
        "forms": 1,
        "production_units": 2,
    }


def test_p_unit_hits_are_not_taken_for_companies():
    with pytest.raises(FormatError, match=r"no _source\.Vrvirksomhed"):
        flatten_companies(parse_hits(UNITS_FILE.read_bytes()))
    with pytest.raises(FormatError, match="not an Elasticsearch search answer"):
        parse_hits(b'{"error": "unauthorized"}')


def test_company_row_holds_the_current_values(company):
    assert company.companies.schema == pl.Schema(COMPANY_SCHEMA)
    assert company.companies.row(0, named=True) == {
        "cvr": "25052943",
        "unit_number": 4001248508,
        "name": "MAGENTA ApS",
        "status": "NORMAL",
        "company_form_code": "80",
        "company_form": "APS",
        "company_form_text": "Anpartsselskab",
        "industry_code": "620200",
        "industry_text": "Konsulentbistand vedrørende informationsteknologi",
        "kommune_code": "0101",
        "kommune_name": "KØBENHAVN",
        "street": "Pilestræde",
        "house_number": "43",
        "floor": "3",
        "door": None,
        "postcode": "1112",
        "city": "København K",
        "address_id": None,
        "address_text": "Pilestræde 43, 3., 1112 København K",
        "start_date": date(1999, 11, 15),
        "end_date": None,
        "production_units": 2,
        "advertising_protected": True,
        "last_updated": datetime(2017, 4, 10, 7, 1, 6, tzinfo=UTC),  # 09:01:06+02:00
    }


def test_name_history_has_both_names_with_their_periods(company):
    names = company.names
    assert names.schema["valid_from"] == pl.Date and names.schema["valid_to"] == pl.Date
    assert names.select("cvr", "name", "valid_from", "valid_to").rows() == [
        ("25052943", "ApS KBIL 17 NR. 1179", date(1999, 11, 15), date(2000, 2, 20)),
        ("25052943", "MAGENTA ApS", date(2000, 2, 21), None),
    ]
    # a shelf company's (skuffeselskab) name, then the real one: the periods meet
    assert names["last_updated"][0] == datetime(1999, 11, 29, 15, 37, 10, tzinfo=UTC)


def test_address_history_is_five_consecutive_periods(company):
    addresses = company.addresses
    assert addresses.select("address_text", "valid_from", "valid_to").rows() == [
        ("Kronprinsessegade 18, 1306 København K", date(1999, 11, 15), date(2000, 2, 20)),
        ("Havnegade 39, 4., 1058 København K", date(2000, 2, 21), date(2001, 6, 27)),
        ("Toldbodgade 51B, 4., 1253 København K", date(2001, 6, 28), date(2004, 9, 8)),
        ("Studiestræde 14, 1., 1455 København K", date(2004, 9, 9), date(2017, 4, 9)),
        ("Pilestræde 43, 3., 1112 København K", date(2017, 4, 10), None),
    ]
    assert addresses["kommune_code"].unique().to_list() == ["0101"]
    assert addresses["country"].unique().to_list() == ["DK"]
    # each period starts the day after the previous one ends: no gap, no overlap
    ends, starts = addresses["valid_to"].to_list()[:-1], addresses["valid_from"].to_list()[1:]
    assert all((start - end).days == 1 for start, end in zip(starts, ends, strict=True))


def test_status_industry_form_and_p_unit_histories(company):
    assert company.statuses.select("kind", "status", "valid_from", "valid_to").rows() == [
        ("virksomhedsstatus", "NORMAL", date(1999, 11, 15), None)
    ]
    assert company.industries.select("kind", "industry_code", "valid_from", "valid_to").rows() == [
        ("main", "980000", date(1999, 11, 15), date(2000, 2, 28)),
        ("main", "726000", date(2000, 2, 29), date(2007, 12, 31)),
        ("main", "620900", date(2008, 1, 1), date(2013, 12, 31)),
        ("main", "620200", date(2014, 1, 1), None),
    ]
    assert company.forms.select("company_form_code", "company_form", "valid_to").rows() == [
        ("80", "APS", None)
    ]
    assert company.production_units.select("p_number", "valid_from").rows() == [
        ("1007256945", date(1999, 11, 15)),
        ("1019601052", date(2014, 8, 7)),
    ]


def test_no_participant_person_data_reaches_any_table(company):
    source = json.loads(COMPANY_FILE.read_bytes())["hits"]["hits"][0]["_source"]["Vrvirksomhed"]
    persons = [
        r["deltager"] for r in source["deltagerRelation"] if r["deltager"]["enhedstype"] == "PERSON"
    ]
    assert len(persons) == 6  # the sample does hold person participants
    names = {n["navn"] for p in persons for n in p["navne"]}
    numbers = {p["enhedsNummer"] for p in persons}
    assert "Morten Kjærsgaard" in names

    cells: set[Any] = set()
    for frame in company.as_dict().values():
        for column in frame.columns:
            cells.update(frame[column].to_list())
    text = " ".join(str(c) for c in cells)
    assert not any(name in text for name in names)
    assert not numbers & cells
    assert not {str(n) for n in numbers} & cells
    # c/o names are dropped too: the sample's first address is c/o a law firm named after
    # a person (Advokatfirmaet Stakemann)
    assert "Stakemann" not in text


def test_no_hits_give_empty_tables_with_the_same_types(company):
    empty = flatten_companies([])
    for name, frame in empty.as_dict().items():
        assert frame.height == 0
        assert frame.schema == company.as_dict()[name].schema, name
