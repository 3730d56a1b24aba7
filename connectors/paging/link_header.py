"""Link-header paging (RFC 8288): follow the `rel="next"` URL until there is none."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import KW_ONLY, dataclass
from typing import Any

import httpx

from connectors.paging.core import DEFAULT_MAX_PAGES, State, Strategy
from connectors.paging.rebuild import rebuild
from connectors.paging.records import advance_guard, read_json, records_at

_LINK = re.compile(r"<(?P<url>[^>]*)>(?P<params>(?:\s*;\s*[^;,]*)*)")
_REL = re.compile(r"""rel\s*=\s*(?:"(?P<quoted>[^"]*)"|(?P<bare>[^\s;,]+))""", re.I)


def link_header_url(response: httpx.Response, rel: str = "next") -> str | None:
    """The absolute URL of the `rel` link in the Link header(s) (RFC 8288), or None.

    Handles several links per header and several headers, `rel` lists ("next last"), and
    URLs relative to the request URL.
    """
    for header in response.headers.get_list("link"):
        for match in _LINK.finditer(header):
            rels = _REL.search(match["params"])
            if rels is None:
                continue
            names = (rels["quoted"] or rels["bare"] or "").lower().split()
            if rel.lower() in names:
                return str(response.request.url.join(match["url"].strip()))
    return None


@dataclass(frozen=True)
class LinkHeader(Strategy):
    """Follows `Link: <url>; rel="next"` (RFC 8288) until there is none."""

    rel: str = "next"
    _: KW_ONLY
    records_path: str | None = None
    max_pages: int = DEFAULT_MAX_PAGES

    def initial_state(self) -> State:
        return {"url": None}

    def build_request(self, first: httpx.Request, state: Mapping[str, Any]) -> httpx.Request:
        return rebuild(first, url=state["url"]) if state["url"] else rebuild(first)

    def parse(
        self, response: httpx.Response, state: Mapping[str, Any]
    ) -> tuple[list[Any], State | None]:
        records = records_at(response, read_json(response), self.records_path)
        url = link_header_url(response, self.rel)
        if url is None:
            return records, None
        advance_guard(response, "next link", str(response.request.url), url)
        return records, {"url": url}
