"""Page-number paging: the page number and size in the query (`PageNumber`) or in the POST
JSON body (`PostBodyPage`); both stop on an empty page, or unless told otherwise a short one.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import KW_ONLY, dataclass
from typing import Any

import httpx

from connectors.paging.core import DEFAULT_MAX_PAGES, State, Strategy
from connectors.paging.rebuild import json_body, rebuild, set_path
from connectors.paging.records import read_json, records_at


class _PageCounter:
    """The page counter and stop rule both page-number strategies share. Fields stay on each
    dataclass, so their positional order is their own."""

    start: int
    size: int
    records_path: str | None
    stop_on_short_page: bool

    def initial_state(self) -> State:
        return {"page": self.start}

    def parse(
        self, response: httpx.Response, state: Mapping[str, Any]
    ) -> tuple[list[Any], State | None]:
        records = records_at(response, read_json(response), self.records_path)
        if not records or (self.stop_on_short_page and len(records) < self.size):
            return records, None
        return records, {"page": state["page"] + 1}


@dataclass(frozen=True)
class PageNumber(_PageCounter, Strategy):
    """`?page=N&size=S`; stops on an empty page, or a page shorter than `size`.

    A service that caps the page size below `size` makes every page short: set
    `stop_on_short_page=False` for those (then only an empty page ends the load).
    """

    page_param: str = "page"
    size_param: str | None = "size"
    size: int = 100
    start: int = 1
    _: KW_ONLY
    records_path: str | None = None
    max_pages: int = DEFAULT_MAX_PAGES
    stop_on_short_page: bool = True

    def build_request(self, first: httpx.Request, state: Mapping[str, Any]) -> httpx.Request:
        params: dict[str, Any] = {self.page_param: state["page"]}
        if self.size_param:
            params[self.size_param] = self.size
        return rebuild(first, params=params)


@dataclass(frozen=True)
class PostBodyPage(_PageCounter, Strategy):
    """Page number and size in the POST JSON body (dot paths allowed: "paging.page");
    stops on an empty or short page."""

    page_field: str = "page"
    size_field: str | None = "size"
    size: int = 100
    start: int = 1
    _: KW_ONLY
    records_path: str | None = None
    max_pages: int = DEFAULT_MAX_PAGES
    stop_on_short_page: bool = True

    def build_request(self, first: httpx.Request, state: Mapping[str, Any]) -> httpx.Request:
        body = set_path(json_body(first), self.page_field, state["page"])
        if self.size_field:
            body = set_path(body, self.size_field, self.size)
        return rebuild(first, method="POST", body=body)
