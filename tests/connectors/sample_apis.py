"""Fake services that page over REAL sample payloads (shared/fixtures/real, see PROVENANCE.md).

- CKAN `package_search` (Birmingham City Council, 10 results): offset (`start`/`rows`, the
  real CKAN API), plus page-number, cursor and Link-header variants of the same results.
- PxWebApi 2 table list (Statistics Norway, 3 tables): `pageNumber`/`pagesize`, the real API.
- Datafordeler GraphQL: a Relay connection `BBR_Bygning` over the 7 real BBR_Bygning nodes
  of the DAR super-query sample (the server does not evaluate the selection set).
- CVR Elasticsearch (10 real `produktionsenhed` hits): scroll, with server-side scroll
  contexts that advance on every scroll call like the real thing; and page-number paging
  in a POST body over the same hits.

The envelopes are the samples' own; only the slice of records and the counts that describe
the slice (CKAN `count`, ES `hits.total`: the fake index holds exactly these records) change.
"""

from __future__ import annotations

import base64
import copy
import itertools
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from connectors.http import HttpClient
from connectors.paging import (
    Cursor,
    ElasticsearchScroll,
    GraphQLRelay,
    LinkHeader,
    Offset,
    PageNumber,
    Paginator,
    PostBodyPage,
)
from tests.connectors.fakeserver import LOSING_FAULTS, FakeServer, Reply, Request

CKAN_FILE = "ckan/data_birmingham_gov_uk_package_search.json"
CVR_FILE = "cvr/cvr_es_vrproduktionsenhed_match_all_10hits.json"
DAR_FILE = (
    "datafordeler/"
    "graphql_DAR_Adresse_Lundagervej43_superquery_with_BBR_Enhed_Bygning_TekniskAnlaeg.json"
)
SSB_FILE = "ssb/ssb_v2_tables_lang-en_pagesize3_from_docs.json"

BBR_QUERY = """
query Bygninger($first: Int, $after: String) {
  BBR_Bygning(first: $first, after: $after,
              virkningstid: "2025-06-04T00:00:00Z", registreringstid: "2025-06-04T00:00:00Z") {
    nodes { id_lokalId status byg021BygningensAnvendelse byg026Opfoerelsesaar }
    pageInfo { endCursor hasNextPage }
  }
}
"""


@dataclass(frozen=True)
class Samples:
    ckan: dict[str, Any]
    cvr: dict[str, Any]
    dar: dict[str, Any]
    ssb: dict[str, Any]

    @classmethod
    def load(cls, root: Path) -> Samples:
        def read(name: str) -> dict[str, Any]:
            return json.loads((root / name).read_text(encoding="utf-8"))

        return cls(read(CKAN_FILE), read(CVR_FILE), read(DAR_FILE), read(SSB_FILE))

    @property
    def ckan_results(self) -> list[dict[str, Any]]:
        return self.ckan["result"]["results"]

    @property
    def cvr_hits(self) -> list[dict[str, Any]]:
        return self.cvr["hits"]["hits"]

    @property
    def bbr_bygninger(self) -> list[dict[str, Any]]:
        adresse = self.dar["data"]["DAR_Adresse"]["nodes"][0]
        jordstykke = adresse["adresseHarHusnummer"]["husnummerErPlaceretPaaJordstykke"]
        return jordstykke["nodes"][0]["id_lokalId_18_Bygning_jordstykke_ref"]["nodes"]

    @property
    def ssb_tables(self) -> list[dict[str, Any]]:
        return self.ssb["tables"]


def _int(request: Request, name: str, default: int) -> int:
    return int(request.arg(name) or default)


def _token(kind: str, position: int) -> str:
    return base64.urlsafe_b64encode(f"{kind}:{position}".encode()).decode()


def _position(kind: str, token: str | None) -> int:
    if not token:
        return 0
    prefix, _, number = base64.urlsafe_b64decode(token.encode()).decode().partition(":")
    if prefix != kind:
        raise ValueError(f"not a {kind} cursor")
    return int(number)


def mount_ckan(server: FakeServer, samples: Samples) -> None:
    results = samples.ckan_results

    def envelope(rows: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
        body = copy.deepcopy({k: v for k, v in samples.ckan.items() if k != "result"})
        result = {k: v for k, v in samples.ckan["result"].items() if k != "results"}
        result.update(count=len(results), results=rows, **extra)
        return {**body, "result": result}

    @server.route("GET", "/api/3/action/package_search")
    def package_search(request: Request) -> Reply:  # the real CKAN paging: start/rows
        start, rows = _int(request, "start", 0), _int(request, "rows", 10)
        return Reply.json(envelope(results[start : start + rows]))

    @server.route("GET", "/ckan/paged")
    def paged(request: Request) -> Reply:
        page, size = _int(request, "page", 1), _int(request, "size", 10)
        return Reply.json(envelope(results[(page - 1) * size : page * size]))

    @server.route("GET", "/ckan/cursor")
    def cursor(request: Request) -> Reply:
        start, limit = _position("ckan", request.arg("cursor")), _int(request, "limit", 10)
        end = start + limit
        extra = {"next_cursor": _token("ckan", end)} if end < len(results) else {}
        return Reply.json(envelope(results[start:end], **extra))

    @server.route("GET", "/ckan/linked")
    def linked(request: Request) -> Reply:
        page, per_page = _int(request, "page", 1), _int(request, "per_page", 10)
        last = -(-len(results) // per_page)
        origin = f"http://{request.headers['Host']}"
        links = [f'<{origin}/ckan/linked?page=1&per_page={per_page}>; rel="first"']
        if page < last:
            target = f"/ckan/linked?page={page + 1}&per_page={per_page}"
            # odd pages link absolutely, even pages relatively (both are allowed)
            links.append(f'<{origin if page % 2 else ""}{target}>; rel="next"')
        links.append(f'<{origin}/ckan/linked?page={last}&per_page={per_page}>; rel="last"')
        rows = results[(page - 1) * per_page : page * per_page]
        return Reply.json(rows, headers={"Link": ", ".join(links)})


def mount_ssb(server: FakeServer, samples: Samples) -> None:
    tables = samples.ssb_tables

    @server.route("GET", "/api/pxwebapi/v2/tables")
    def table_list(request: Request) -> Reply:
        page, size = _int(request, "pageNumber", 1), _int(request, "pagesize", 20)
        body = copy.deepcopy(samples.ssb)
        body["tables"] = tables[(page - 1) * size : page * size]
        body["page"] = {
            "pageNumber": page,
            "pageSize": size,
            "totalElements": len(tables),
            "totalPages": -(-len(tables) // size),
            "links": [],
        }
        return Reply.json(body)


def mount_graphql(server: FakeServer, samples: Samples) -> None:
    nodes = samples.bbr_bygninger

    @server.route("POST", "/graphql")
    def graphql(request: Request) -> Reply:
        body = request.json()
        query, variables = body.get("query", ""), body.get("variables") or {}
        if "BBR_Bygning" not in query or "pageInfo" not in query:
            return Reply.json({"errors": [{"message": "unknown field or no pageInfo"}]})
        first = variables.get("first", 100)
        if not isinstance(first, int) or not 0 < first <= 1000:
            return Reply.json({"errors": [{"message": f"first must be 1..1000, not {first}"}]})
        start = _position("BBR_Bygning", variables.get("after"))
        if variables.get("after"):
            start += 1  # after the node the cursor names
        page = nodes[start : start + first]
        end = start + len(page) - 1
        info = {
            "endCursor": _token("BBR_Bygning", end) if page else None,
            "hasNextPage": start + len(page) < len(nodes),
        }
        return Reply.json({"data": {"BBR_Bygning": {"nodes": page, "pageInfo": info}}})


@dataclass
class EsIndex:
    """Scroll contexts of the fake CVR index: id -> [position, size]."""

    contexts: dict[str, list[int]] = field(default_factory=dict)
    # Opened by a search whose answer was lost: the client never learns these ids, so it
    # cannot clear them; Elasticsearch drops them when the scroll keep-alive runs out.
    orphans: set[str] = field(default_factory=set)
    # Ids the client sent back (scroll or clear): it certainly learned these. An answer can
    # also be lost without an injected fault: on a busy machine a reply may miss the tests'
    # 0.2 s read timeout, and the client retries the search as it should.
    used: set[str] = field(default_factory=set)
    opened: int = 0

    def leaked(self) -> dict[str, list[int]]:
        """Contexts the client learned of and left open."""
        return {i: c for i, c in self.contexts.items() if i not in self.orphans and i in self.used}

    numbers: itertools.count = field(default_factory=lambda: itertools.count(1))


def mount_elasticsearch(server: FakeServer, samples: Samples) -> EsIndex:
    hits = samples.cvr_hits
    index = EsIndex()

    def answer(page: list[dict[str, Any]], scroll_id: str | None) -> Reply:
        body = {k: copy.deepcopy(v) for k, v in samples.cvr.items() if k != "hits"}
        if scroll_id:
            body = {"_scroll_id": scroll_id, **body}
        body["hits"] = {
            "total": len(hits),
            "max_score": samples.cvr["hits"]["max_score"],
            "hits": page,
        }
        return Reply.json(body)

    def missing(scroll_id: Any) -> Reply:
        reason = {
            "type": "search_context_missing_exception",
            "reason": f"No search context found for id [{scroll_id}]",
        }
        return Reply.json({"error": {"root_cause": [reason], **reason}, "status": 404}, 404)

    @server.route("POST", "/cvr-permanent/produktionsenhed/_search")
    def search(request: Request) -> Reply:
        body = request.json() or {}
        size = int(body.get("size", 10))
        if not request.arg("scroll"):
            start = int(body.get("from", 0))
            return answer(hits[start : start + size], None)
        scroll_id = base64.b64encode(f"DnF1ZXJ5VGhlbkZldGNo;{next(index.numbers)}".encode())
        index.contexts[scroll_id.decode()] = [size, size]
        index.opened += 1
        if request.fault in LOSING_FAULTS:
            index.orphans.add(scroll_id.decode())
        return answer(hits[:size], scroll_id.decode())

    @server.route("POST", "/_search/scroll")
    def scroll(request: Request) -> Reply:
        scroll_id = (request.json() or {}).get("scroll_id")
        index.used.add(scroll_id)
        context = index.contexts.get(scroll_id)
        if context is None:
            return missing(scroll_id)
        position, size = context
        context[0] = position + size  # the server moves on, whether the answer arrives or not
        return answer(hits[position : position + size], scroll_id)

    @server.route("DELETE", "/_search/scroll")
    def clear(request: Request) -> Reply:
        ids = (request.json() or {}).get("scroll_id") or []
        index.used.update(ids)
        freed = [i for i in ids if index.contexts.pop(i, None) is not None]
        if not freed:
            return Reply.json({"succeeded": True, "num_freed": 0}, 404)
        return Reply.json({"succeeded": True, "num_freed": len(freed)})

    @server.route("POST", "/cvr/search")
    def body_paged(request: Request) -> Reply:
        body = request.json() or {}
        page, size = int(body.get("page", 1)), int(body.get("size", 10))
        return answer(hits[(page - 1) * size : page * size], None)

    return index


def mount_all(server: FakeServer, samples: Samples) -> EsIndex:
    mount_ckan(server, samples)
    mount_ssb(server, samples)
    mount_graphql(server, samples)
    return mount_elasticsearch(server, samples)


@dataclass(frozen=True)
class Scenario:
    """One strategy against one fake service, with the records a full run must yield."""

    name: str
    strategy: Paginator
    method: str
    path: str
    expected: Callable[[Samples], list[Any]]
    params: dict[str, Any] | None = None
    body: Any = None

    def first_request(self, client: HttpClient) -> httpx.Request:
        return client.build_request(self.method, self.path, params=self.params, json=self.body)


SCENARIOS = {
    s.name: s
    for s in [
        Scenario(
            "page-number/ckan",
            PageNumber("page", "size", 3, records_path="result.results"),
            "GET",
            "/ckan/paged",
            lambda s: s.ckan_results,
            params={"q": "Purchase Card transactions"},
        ),
        Scenario(
            "page-number/ssb",
            PageNumber("pageNumber", "pagesize", 1, records_path="tables"),
            "GET",
            "/api/pxwebapi/v2/tables",
            lambda s: s.ssb_tables,
            params={"lang": "en"},
        ),
        Scenario(
            "offset/ckan",
            Offset("start", "rows", 4, "result.count", records_path="result.results"),
            "GET",
            "/api/3/action/package_search",
            lambda s: s.ckan_results,
            params={"q": "Purchase Card transactions"},
        ),
        Scenario(
            "cursor/ckan",
            Cursor("cursor", "result.next_cursor", records_path="result.results"),
            "GET",
            "/ckan/cursor",
            lambda s: s.ckan_results,
            params={"limit": 3},
        ),
        Scenario(
            "link-header/ckan",
            LinkHeader(),
            "GET",
            "/ckan/linked",
            lambda s: s.ckan_results,
            params={"per_page": 4},
        ),
        Scenario(
            "graphql-relay/bbr",
            GraphQLRelay("data.BBR_Bygning", first=2),
            "POST",
            "/graphql",
            lambda s: s.bbr_bygninger,
            body={"query": BBR_QUERY, "variables": {}},
        ),
        Scenario(
            "es-scroll/cvr",
            ElasticsearchScroll("1m", max_restarts=30),
            "POST",
            "/cvr-permanent/produktionsenhed/_search",
            lambda s: s.cvr_hits,
            body={"size": 3, "sort": ["_doc"], "query": {"match_all": {}}},
        ),
        Scenario(
            "post-body/cvr",
            PostBodyPage("page", "size", 4, records_path="hits.hits"),
            "POST",
            "/cvr/search",
            lambda s: s.cvr_hits,
            body={"query": {"match_all": {}}},
        ),
    ]
}
