"""connectors.rest: a YAML-declared REST source against a vendor API served on 127.0.0.1.

The fake vendor checks credentials itself and records every request, so the tests see what
really went over the wire: auth on each request, paging parameters, the incremental cursor.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from typing import Any

import pytest

from connectors.http import HttpError, HttpSettings
from connectors.rest import RestConfigError, RestSource
from tests.connectors.fakeserver import FakeServer, Reply, Request

FAST = HttpSettings(connect_timeout=2.0, read_timeout=2.0, max_attempts=2, backoff_base=0.01)
TOKEN = "tok-8f3e2a"  # what the vendor issued to us; must never show up in messages
ENV = {
    "SOURCES__VENDOR_X__TOKEN": TOKEN,
    "SOURCES__VENDOR_X__API_KEY": "key-77aa",
    "SOURCES__VENDOR_X__USERNAME": "kommune",
    "SOURCES__VENDOR_X__PASSWORD": "pw-19x",
    "SOURCES__VENDOR_X__CLIENT_ID": "client-1",
    "SOURCES__VENDOR_X__CLIENT_SECRET": "cs-42q",
}


def case(number: int, updated: str) -> dict[str, Any]:
    return {
        "id": number,
        "updated_at": updated,
        "status": "open",
        "citizen": {"district": f"D{number % 3}", "address": {"postnummer": "0150"}},
        "tags": ["hjemmetjeneste", f"t{number}"],  # hjemmetjeneste: home care
        "closed": None,
    }


class Vendor:
    """The vendor's cases, and what it was asked."""

    def __init__(self, server: FakeServer) -> None:
        self.server = server
        self.cases = [case(n, f"2026-01-{n:02d}T08:00:00Z") for n in range(1, 8)]
        self.asked: list[dict[str, list[str]]] = []
        self.denied = 0

    def visible(self, request: Request) -> list[dict[str, Any]]:
        since = request.arg("updated_since")
        assert request.arg("status") == "open"  # the YAML's params go out on every page
        return [c for c in self.cases if since is None or c["updated_at"] > since]

    def deny(self) -> Reply:
        self.denied += 1
        return Reply.json({"error": "unauthorized"}, status=401)


@pytest.fixture
def vendor() -> Iterator[Vendor]:
    with FakeServer() as server:
        api = Vendor(server)
        mount(api)
        yield api
    assert not server.errors, server.errors[0]


def mount(api: Vendor) -> None:
    server = api.server

    @server.route("GET", "/v2/cases")  # offset paging, bearer token
    def offset(request: Request) -> Reply:
        api.asked.append(request.query)
        if request.headers.get("Authorization") != f"Bearer {TOKEN}":
            return api.deny()
        start, limit = int(request.arg("offset", "0")), int(request.arg("limit", "100"))
        rows = api.visible(request)
        return Reply.json({"data": {"items": rows[start : start + limit], "total": len(rows)}})

    @server.route("GET", "/v2/numbered")  # page_number paging, API key in a header
    def numbered(request: Request) -> Reply:
        api.asked.append(request.query)
        if request.headers.get("X-Vendor-Key") != ENV["SOURCES__VENDOR_X__API_KEY"]:
            return api.deny()
        page, size = int(request.arg("page", "1")), int(request.arg("size", "100"))
        return Reply.json({"items": api.visible(request)[(page - 1) * size : page * size]})

    @server.route("GET", "/v2/cursor")  # cursor paging, API key in the query
    def cursor(request: Request) -> Reply:
        api.asked.append(request.query)
        if request.arg("apikey") != ENV["SOURCES__VENDOR_X__API_KEY"]:
            return api.deny()
        start = int(request.arg("after", "0"))
        rows = api.visible(request)[start : start + 3]
        following = str(start + 3) if start + 3 < len(api.visible(request)) else None
        return Reply.json({"results": rows, "paging": {"next": following}})

    @server.route("GET", "/v2/linked")  # RFC 8288 Link header, HTTP Basic
    def linked(request: Request) -> Reply:
        api.asked.append(request.query)
        pair = base64.b64encode(b"kommune:pw-19x").decode()
        if request.headers.get("Authorization") != f"Basic {pair}":
            return api.deny()
        start = int(request.arg("from", "0"))
        rows = api.visible(request)
        headers = {}
        if start + 4 < len(rows):
            headers["Link"] = f'</v2/linked?status=open&from={start + 4}>; rel="next"'
        return Reply.json(rows[start : start + 4], headers=headers)

    @server.route("POST", "/oauth/token")
    def token(request: Request) -> Reply:
        pair = base64.b64encode(b"client-1:cs-42q").decode()
        if request.headers.get("Authorization") != f"Basic {pair}":
            return Reply.json({"error": "invalid_client"}, status=401)
        return Reply.json({"access_token": "issued-1", "expires_in": 3600})

    @server.route("POST", "/v2/search")  # page number in the POST body, OAuth2 token
    def search(request: Request) -> Reply:
        api.asked.append(request.query)
        if request.headers.get("Authorization") != "Bearer issued-1":
            return api.deny()
        body = request.json()
        assert body["filter"] == {"status": "open"}
        page, size = body["paging"]["page"], body["paging"]["size"]
        return Reply.json({"hits": api.cases[(page - 1) * size : page * size]})


def config(vendor: Vendor, path: str, **extra: Any) -> dict[str, Any]:
    return {
        "type": "rest",
        "name": "vendor_x",
        "url": vendor.server.url + path,
        "params": {"status": "open"},
        **extra,
    }


def all_records(source: RestSource, state: dict[str, Any] | None = None) -> list[Any]:
    return [record for page in source.pages(state) for record in page.records]


def ids(records: list[Any]) -> list[int]:
    return [r["id"] for r in records]


# -- paging types, each with its auth checked by the server
def test_offset_paging_with_bearer_token(vendor: Vendor) -> None:
    source = RestSource.from_config(
        config(
            vendor,
            "/v2/cases",
            auth={"type": "bearer"},
            paging={"type": "offset", "limit": 3, "total_path": "data.total"},
            records_path="data.items",
        ),
        ENV,
        settings=FAST,
    )
    pages = list(source.pages())
    assert [len(p.records) for p in pages] == [3, 3, 1]
    assert ids([r for p in pages for r in p.records]) == list(range(1, 8))
    assert [(q["offset"], q["limit"]) for q in vendor.asked] == [
        (["0"], ["3"]),
        (["3"], ["3"]),
        (["6"], ["3"]),
    ]
    assert vendor.denied == 0
    assert json.loads(pages[0].raw)["data"]["items"][0]["id"] == 1  # bytes as received
    assert pages[-1].state == {"paging": None}


def test_the_urls_own_query_goes_out_with_params_and_paging(vendor: Vendor) -> None:
    # `url: .../v2/cases?district=D1` is how many vendors document a filtered endpoint; the
    # filter must not be dropped when the YAML's params and the paging add theirs.
    cfg = config(vendor, "/v2/cases?district=D1", paging={"type": "offset", "limit": 3})
    source = RestSource.from_config(
        {**cfg, "auth": {"type": "bearer"}, "records_path": "data.items"}, ENV, settings=FAST
    )
    all_records(source)
    assert vendor.asked and all(
        q.get("district") == ["D1"] and q.get("status") == ["open"] and "offset" in q
        for q in vendor.asked
    )


def test_page_number_with_api_key_header(vendor: Vendor) -> None:
    source = RestSource.from_config(
        config(
            vendor,
            "/v2/numbered",
            auth={"type": "api_key", "header": "X-Vendor-Key"},
            paging={"type": "page_number", "size": 2},
            records_path="items",
        ),
        ENV,
        settings=FAST,
    )
    assert ids(all_records(source)) == list(range(1, 8))
    assert [q["page"] for q in vendor.asked] == [["1"], ["2"], ["3"], ["4"]]  # 4th is short
    assert vendor.denied == 0


def test_cursor_with_api_key_in_the_query_is_redacted(vendor: Vendor) -> None:
    source = RestSource.from_config(
        config(
            vendor,
            "/v2/cursor",
            auth={"type": "api_key", "param": "apikey"},
            paging={"type": "cursor", "cursor_param": "after", "cursor_path": "paging.next"},
            records_path="results",
        ),
        ENV,
        settings=FAST,
    )
    pages = list(source.pages())
    assert ids([r for p in pages for r in p.records]) == list(range(1, 8))
    assert [q.get("after") for q in vendor.asked] == [None, ["3"], ["6"]]
    assert all("key-77aa" not in p.url for p in pages)
    assert "apikey=" in pages[0].url


def test_link_header_with_basic_auth(vendor: Vendor) -> None:
    source = RestSource.from_config(
        config(vendor, "/v2/linked", auth={"type": "basic"}, paging={"type": "link_header"}),
        ENV,
        settings=FAST,
    )
    assert ids(all_records(source)) == list(range(1, 8))
    assert [q.get("from") for q in vendor.asked] == [None, ["4"]]
    assert vendor.denied == 0


def test_post_body_paging_with_oauth2(vendor: Vendor) -> None:
    source = RestSource.from_config(
        {
            "type": "rest",
            "name": "vendor_x",
            "url": vendor.server.url + "/v2/search",
            "body": {"filter": {"status": "open"}},
            "auth": {"type": "oauth2", "token_url": vendor.server.url + "/oauth/token"},
            "paging": {
                "type": "post_body",
                "page_field": "paging.page",
                "size_field": "paging.size",
                "size": 4,
            },
            "records_path": "hits",
        },
        ENV,
        settings=FAST,
    )
    assert ids(all_records(source)) == list(range(1, 8))
    assert vendor.server.count("/oauth/token") == 1  # one token for both pages
    assert vendor.denied == 0


def test_wrong_credentials_fail_without_showing_them(vendor: Vendor) -> None:
    wrong = ENV | {"SOURCES__VENDOR_X__TOKEN": "tok-wrong-123"}
    source = RestSource.from_config(
        config(vendor, "/v2/cases", auth={"type": "bearer"}, records_path="data.items"),
        wrong,
        settings=FAST,
    )
    with pytest.raises(HttpError) as caught:
        all_records(source)
    assert caught.value.status == 401
    assert "tok-wrong-123" not in str(caught.value)
    assert "tok-wrong-123" not in repr(source)


# -- state: resume and incremental
def offset_source(vendor: Vendor) -> RestSource:
    return RestSource.from_config(
        config(
            vendor,
            "/v2/cases",
            auth={"type": "bearer"},
            paging={"type": "offset", "limit": 3},
            records_path="data.items",
            incremental={"cursor_field": "updated_at", "param": "updated_since"},
        ),
        ENV,
        settings=FAST,
    )


def test_resume_after_a_crash_has_no_gaps_or_duplicates(vendor: Vendor) -> None:
    source = offset_source(vendor)
    pages = source.pages()
    first = next(pages)
    pages.close()  # the run stops after one page was stored
    saved = json.loads(json.dumps(first.state))  # states are persisted as JSON
    rest = all_records(source, saved)
    assert ids(first.records) + ids(rest) == list(range(1, 8))
    assert vendor.asked[1].get("offset") == ["3"]
    assert "updated_since" not in vendor.asked[1]  # the first run had no cursor yet


def test_incremental_sends_the_highest_cursor_seen(vendor: Vendor) -> None:
    source = offset_source(vendor)
    state: dict[str, Any] = {}
    for page in source.pages():
        state = page.state
    assert state["cursor_max"] == "2026-01-07T08:00:00Z" and state["paging"] is None
    vendor.cases.append(case(8, "2026-02-01T09:30:00Z"))
    vendor.cases[1]["updated_at"] = "2026-02-02T10:00:00Z"  # case 2 changed
    vendor.asked.clear()
    newer = all_records(source, state)
    assert sorted(ids(newer)) == [2, 8]
    assert vendor.asked[0]["updated_since"] == ["2026-01-07T08:00:00Z"]


# -- configuration errors
GOOD = {"type": "rest", "name": "vendor_x", "url": "https://api.vendor.example/v2/cases"}


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"pagingg": {"type": "offset"}}, r"source\.pagingg: unknown key"),
        ({"paging": {"type": "offset", "size": 5}}, r"source\.paging\.size: unknown key"),
        (
            {"paging": {"type": "offset", "limit": "500"}},
            r"source\.paging\.limit: '500' is not int",
        ),
        ({"paging": {"type": "scroll"}}, r"source\.paging\.type: unknown paging 'scroll'"),
        (
            {"auth": {"type": "bearer", "token": TOKEN}},
            r"source\.auth\.token: credentials.*SOURCES__VENDOR_X__TOKEN",
        ),
        ({"params": {"api_key": "abc"}}, r"source\.params\.api_key: credentials"),
        (
            {"headers": {"Authorization": "Bearer x"}},
            r"source\.headers\.Authorization: credentials",
        ),
        (
            {"auth": {"type": "oauth2", "token_url": "https://t.example/token"}},
            "SOURCES__VENDOR_X__CLIENT_ID",
        ),
        (
            {"incremental": {"cursor_field": "updated_at"}},
            r"source\.incremental\.param: is missing",
        ),
        ({"name": "Vendor X"}, r"source\.name: 'Vendor X'"),
        ({"auth": {"type": "kerberos"}}, r"source\.auth\.type: unknown auth"),
    ],
)
def test_config_errors_name_the_key_and_what_to_do(change: dict[str, Any], message: str) -> None:
    with pytest.raises(RestConfigError, match=message) as caught:
        RestSource.from_config(GOOD | change, {})
    assert TOKEN not in str(caught.value)


def test_missing_secret_names_the_variable() -> None:
    with pytest.raises(RestConfigError) as caught:
        RestSource.from_config(GOOD | {"auth": {"type": "bearer"}}, {})
    assert str(caught.value) == (
        "source.auth: bearer auth needs token, which is not in the environment. "
        "Set the environment variable SOURCES__VENDOR_X__TOKEN"
    )


def test_environment_is_read_only_when_building(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SOURCES__VENDOR_X__TOKEN", TOKEN)
    source = RestSource.from_config(GOOD | {"auth": {"type": "bearer"}})  # os.environ
    assert source.auth is not None and TOKEN not in repr(source)


def test_no_paging_is_one_request(vendor: Vendor) -> None:
    source = RestSource.from_config(config(vendor, "/v2/linked", auth={"type": "basic"}), ENV)
    assert ids(all_records(source)) == [1, 2, 3, 4]  # the Link header is not followed
    assert vendor.server.count("/v2/linked") == 1
