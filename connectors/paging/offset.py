"""Offset/limit paging (`?offset=N&limit=L`)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import KW_ONLY, dataclass
from typing import Any

import httpx

from connectors.paging.core import DEFAULT_MAX_PAGES, PagingError, State, Strategy
from connectors.paging.rebuild import rebuild
from connectors.paging.records import read_json, records_at, value_at, where


@dataclass(frozen=True)
class Offset(Strategy):
    """`?offset=N&limit=L`; the offset advances by the records received, so a service
    that caps `limit` loses nothing (one that drops records after applying the limit may
    repeat a few: duplicates, never gaps). Stops when `total_path` (the total count in
    the body) is reached, or on an empty page.
    """

    offset_param: str = "offset"
    limit_param: str = "limit"
    limit: int = 100
    total_path: str | None = None
    _: KW_ONLY
    start: int = 0
    records_path: str | None = None
    max_pages: int = DEFAULT_MAX_PAGES
    stop_on_short_page: bool = False

    def initial_state(self) -> State:
        return {"offset": self.start}

    def build_request(self, first: httpx.Request, state: Mapping[str, Any]) -> httpx.Request:
        return rebuild(
            first, params={self.offset_param: state["offset"], self.limit_param: self.limit}
        )

    def parse(
        self, response: httpx.Response, state: Mapping[str, Any]
    ) -> tuple[list[Any], State | None]:
        document = read_json(response)
        records = records_at(response, document, self.records_path)
        following = state["offset"] + len(records)
        if not records or (self.stop_on_short_page and len(records) < self.limit):
            return records, None
        if self.total_path is not None:
            total = value_at(document, self.total_path)
            if total is None:
                raise PagingError(
                    f"{where(response)}: no total at {self.total_path!r}. "
                    "Fix total_path or set it to None"
                )
            if following >= int(total):
                return records, None
        return records, {"offset": following}
