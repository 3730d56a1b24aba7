"""Every paging strategy against fake services replaying the real samples."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

import httpx
import pytest

from connectors.http import HttpError, HttpSettings
from connectors.paging import (
    Cursor,
    ElasticsearchScroll,
    GraphQLError,
    GraphQLRelay,
    PageLimitError,
    PageNumber,
    PagingError,
    get_path,
    link_header_url,
    paginate,
)
from tests.connectors.fakeserver import FaultSchedule, Reply, Request
from tests.connectors.sample_apis import BBR_QUERY, SCENARIOS, Scenario

NAMES = sorted(SCENARIOS)


def records_of(pages: Any) -> list[Any]:
    return [record for page in pages for record in page.records]


@pytest.mark.parametrize("name", NAMES)
def test_every_strategy_yields_exactly_the_sample_records_in_order(name, serve, samples):
    scenario = SCENARIOS[name]
    service = serve()
    client = service.client()

    pages = list(paginate(client, scenario.first_request(client), scenario.strategy))

    expected = scenario.expected(samples)
    assert len(expected) >= 3  # a real multi-page run
    assert records_of(pages) == expected
    assert len(pages) >= 3
    assert [page.number for page in pages] == list(range(1, len(pages) + 1))
    assert pages[-1].state is None
    assert all(page.state is not None for page in pages[:-1])
    for page in pages:  # resumable states are small JSON
        assert json.loads(json.dumps(page.state)) == page.state
        assert page.response.status_code == 200 and page.response.content
    assert service.sleeps.calls == []  # no fault, no wait


def test_elasticsearch_scroll_is_cleared_and_uses_the_scroll_api(serve, samples):
    scenario = SCENARIOS["es-scroll/cvr"]
    service = serve()
    client = service.client()

    list(paginate(client, scenario.first_request(client), scenario.strategy))

    calls = [(a.method, a.path) for a in service.server.arrivals]
    assert calls == [
        ("POST", "/cvr-permanent/produktionsenhed/_search"),
        *[("POST", "/_search/scroll")] * 4,  # 3 + 3 + 3 + 1 hits, then an empty page
        ("DELETE", "/_search/scroll"),
    ]
    assert service.es.opened == 1
    assert service.es.contexts == {}


def test_relay_sets_first_and_after_in_the_post_body(serve):
    scenario = SCENARIOS["graphql-relay/bbr"]
    service = serve()
    client = service.client()
    seen: list[dict[str, Any]] = []
    original = service.server.routes[("POST", "/graphql")]

    def spy(request: Request) -> Reply:
        seen.append(request.json()["variables"])
        return original(request)

    service.server.routes[("POST", "/graphql")] = spy

    pages = list(paginate(client, scenario.first_request(client), scenario.strategy))

    assert seen[0] == {"first": 2}
    assert [v["after"] for v in seen[1:]] == [p.state["after"] for p in pages[:-1]]
    assert all(v["first"] == 2 for v in seen)


@pytest.mark.parametrize("name", NAMES)
def test_max_pages_guard_trips_with_a_resumable_state(name, serve, samples):
    scenario = SCENARIOS[name]
    service = serve()
    client = service.client()
    guarded = replace(scenario.strategy, max_pages=2)
    pages: list[Any] = []

    with pytest.raises(PageLimitError) as caught:
        for page in paginate(client, scenario.first_request(client), guarded):
            pages.append(page)

    assert len(pages) == 2  # what was fetched is handed over before the error
    assert caught.value.max_pages == 2
    assert "max_pages=2" in str(caught.value) and "Raise max_pages" in str(caught.value)
    rest = paginate(
        client, scenario.first_request(client), scenario.strategy, state=caught.value.state
    )
    assert records_of(pages) + records_of(rest) == scenario.expected(samples)
    assert service.es.contexts == {}


def test_a_service_that_ignores_the_page_parameter_trips_the_guard(serve, samples):
    service = serve()

    @service.server.route("GET", "/stuck")
    def stuck(request: Request) -> Reply:
        return Reply.json(samples.ckan_results[:3])  # always the same full page

    client = service.client()
    with pytest.raises(PageLimitError, match="ignores them"):
        list(
            paginate(client, client.build_request("GET", "/stuck"), PageNumber(size=3, max_pages=5))
        )
    assert service.server.count("/stuck") == 5


def test_a_cursor_that_does_not_advance_is_an_error_not_a_loop(serve, samples):
    service = serve()

    @service.server.route("GET", "/same-cursor")
    def same(request: Request) -> Reply:
        return Reply.json({"items": samples.ckan_results[:2], "next": "abc"})

    client = service.client()
    with pytest.raises(PagingError, match="did not advance"):
        list(
            paginate(
                client,
                client.build_request("GET", "/same-cursor"),
                Cursor("cursor", "next", records_path="items"),
            )
        )
    assert service.server.count("/same-cursor") == 2


def test_graphql_errors_stop_the_load_with_the_message(serve):
    service = serve()
    client = service.client()
    request = client.build_request("POST", "/graphql", json={"query": "{ BBR_Bygning { nodes } }"})
    with pytest.raises(GraphQLError, match="no pageInfo"):
        list(paginate(client, request, GraphQLRelay("data.BBR_Bygning", first=2)))


def test_graphql_without_page_info_in_the_answer_is_explained(serve, samples):
    service = serve()

    @service.server.route("POST", "/graphql-no-pageinfo")
    def no_info(request: Request) -> Reply:
        return Reply.json({"data": {"BBR_Bygning": {"nodes": samples.bbr_bygninger}}})

    client = service.client()
    request = client.build_request("POST", "/graphql-no-pageinfo", json={"query": BBR_QUERY})
    with pytest.raises(PagingError, match=r"pageInfo \{ endCursor hasNextPage \}"):
        list(paginate(client, request, GraphQLRelay("data.BBR_Bygning")))


def test_relay_edges_are_unwrapped_to_nodes(serve, samples):
    service = serve()
    nodes = samples.bbr_bygninger

    @service.server.route("POST", "/graphql-edges")
    def edges(request: Request) -> Reply:
        after = (request.json()["variables"] or {}).get("after")
        start = 0 if after is None else int(after) + 1
        page = nodes[start : start + 4]
        return Reply.json(
            {
                "data": {
                    "c": {
                        "edges": [
                            {"cursor": str(start + i), "node": n} for i, n in enumerate(page)
                        ],
                        "pageInfo": {
                            "endCursor": str(start + len(page) - 1),
                            "hasNextPage": start + len(page) < len(nodes),
                        },
                    }
                }
            }
        )

    client = service.client()
    request = client.build_request("POST", "/graphql-edges", json={"query": BBR_QUERY})
    assert records_of(paginate(client, request, GraphQLRelay("data.c", first=4))) == nodes


def test_a_wrong_records_path_names_what_is_there(serve):
    service = serve()
    client = service.client()
    request = client.build_request("GET", "/api/3/action/package_search")
    with pytest.raises(PagingError, match=r"no records at 'result.rows'.*help.*result"):
        list(paginate(client, request, PageNumber(records_path="result.rows")))


@pytest.mark.parametrize(
    ("charset", "readable"),
    [("ISO-8859-1", True), (None, False), ("utf-8", False), ("x-no-such-charset", False)],
    ids=["declared", "undeclared", "declared-utf8", "unknown-charset"],
)
def test_json_in_a_declared_non_utf8_charset_is_read_in_that_charset(serve, charset, readable):
    records = [{"id": 1, "by": "Århus"}, {"id": 2, "by": "Tromsø"}]
    content_type = "application/json" + (f"; charset={charset}" if charset else "")
    service = serve()

    @service.server.route("GET", "/latin1")
    def latin1(request: Request) -> Reply:
        body = json.dumps(records, ensure_ascii=False).encode("latin-1")
        return Reply(200, body, {"Content-Type": content_type})

    client = service.client()
    request = client.build_request("GET", "/latin1")
    if readable:
        assert records_of(paginate(client, request, PageNumber())) == records
    else:  # JSON in UTF-8 (declared or not): these bytes are not JSON, and that is said
        with pytest.raises(PagingError, match="the answer is not JSON"):
            list(paginate(client, request, PageNumber()))


def test_link_header_parsing_follows_rfc_8288():
    request = httpx.Request("GET", "https://api.example.dk/v1/items?page=2")

    def response(*links: str) -> httpx.Response:
        return httpx.Response(200, headers=[("Link", link) for link in links], request=request)

    assert link_header_url(response('<https://a.dk/x?page=3>; rel="next"')) == (
        "https://a.dk/x?page=3"
    )
    assert link_header_url(response('</v1/items?page=3>; rel="next"')) == (
        "https://api.example.dk/v1/items?page=3"
    )
    assert link_header_url(response("<?page=3>; rel=next")) == (
        "https://api.example.dk/v1/items?page=3"
    )
    assert link_header_url(response('<https://a.dk/?p=9>; rel="last next"')) == (
        "https://a.dk/?p=9"
    )
    assert (
        link_header_url(
            response(
                '<https://a.dk/?p=1>; rel="prev"; title="a, b"', "<https://a.dk/?p=3>; rel=next"
            )
        )
        == "https://a.dk/?p=3"
    )
    assert link_header_url(response('<https://a.dk/?p=1>; rel="prev"')) is None
    assert link_header_url(response()) is None


def test_get_path_reads_dot_paths():
    document = {"a": {"b": [{"c": 1}, {"c": 2}]}}
    assert get_path(document, "a.b.1.c") == 2
    assert get_path(document, None) is document
    with pytest.raises(KeyError):
        get_path(document, "a.x")


# --------------------------------------------------------------------------------- resume


class Crash(Exception):
    """The process dies after persisting a page."""


def _persisting_run(
    client, scenario: Scenario, strategy, store: dict[str, str], saved: list[Any], crash_after=None
) -> None:
    """Consume pages the way an asset would: save the records, then persist the state."""
    state = json.loads(store["state"]) if "state" in store else None
    for page in paginate(client, scenario.first_request(client), strategy, state=state):
        saved.extend(page.records)
        store["state"] = json.dumps(page.state)
        if crash_after is not None and page.number == crash_after:
            raise Crash


@pytest.mark.parametrize("name", NAMES)
def test_resume_after_a_crash_in_the_consumer_has_no_gaps_or_duplicates(name, serve, samples):
    scenario = SCENARIOS[name]
    service = serve()
    client = service.client()
    store: dict[str, str] = {}
    saved: list[Any] = []

    with pytest.raises(Crash):
        _persisting_run(client, scenario, scenario.strategy, store, saved, crash_after=2)
    assert json.loads(store["state"]) is not None
    _persisting_run(client, scenario, scenario.strategy, store, saved)

    assert saved == scenario.expected(samples)
    assert service.es.contexts == {}  # the abandoned scroll was cleared too


@pytest.mark.parametrize("name", NAMES)
def test_resume_after_the_service_failed_mid_run_has_no_gaps_or_duplicates(name, serve, samples):
    scenario = SCENARIOS[name]
    # The third request fails twice: with two attempts the run dies there.
    service = serve(faults=FaultSchedule({2: "truncate", 3: "truncate"}))
    client = service.client(HttpSettings(read_timeout=2.0, max_attempts=2, backoff_base=0))
    strategy = scenario.strategy
    if isinstance(strategy, ElasticsearchScroll):
        strategy = replace(strategy, max_restarts=0)  # let the lost scroll page end the run
    store: dict[str, str] = {}
    saved: list[Any] = []

    with pytest.raises(HttpError):
        for page in paginate(client, scenario.first_request(client), strategy):
            saved.extend(page.records)
            store["state"] = json.dumps(page.state)

    assert len(saved) > 0 and "state" in store
    _persisting_run(client, scenario, scenario.strategy, store, saved)
    assert saved == scenario.expected(samples)
    assert service.es.contexts == {}
