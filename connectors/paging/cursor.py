"""Cursor paging: the next cursor comes in the body and goes back as a query parameter."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import KW_ONLY, dataclass
from typing import Any

import httpx

from connectors.paging.core import DEFAULT_MAX_PAGES, State, Strategy
from connectors.paging.rebuild import rebuild
from connectors.paging.records import advance_guard, read_json, records_at, value_at


@dataclass(frozen=True)
class Cursor(Strategy):
    """`?cursor=<value from the body at cursor_path>`; stops when the body has no cursor
    (or, unless `stop_on_empty_page=False`, on an empty page)."""

    cursor_param: str = "cursor"
    cursor_path: str = "next_cursor"
    _: KW_ONLY
    records_path: str | None = None
    max_pages: int = DEFAULT_MAX_PAGES
    stop_on_empty_page: bool = True

    def initial_state(self) -> State:
        return {"cursor": None}

    def build_request(self, first: httpx.Request, state: Mapping[str, Any]) -> httpx.Request:
        if state["cursor"] is None:
            return rebuild(first)
        return rebuild(first, params={self.cursor_param: state["cursor"]})

    def parse(
        self, response: httpx.Response, state: Mapping[str, Any]
    ) -> tuple[list[Any], State | None]:
        document = read_json(response)
        records = records_at(response, document, self.records_path)
        cursor = value_at(document, self.cursor_path)
        if cursor in (None, "") or (self.stop_on_empty_page and not records):
            return records, None
        advance_guard(response, "cursor", state["cursor"], cursor)
        return records, {"cursor": cursor}
