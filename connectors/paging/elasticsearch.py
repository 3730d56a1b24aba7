"""Elasticsearch scroll paging, which unlike the others is stateful on the server: a scroll
call is not idempotent, so failures restart the scroll instead of repeating the call, and
the scroll contexts are cleared at the end.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import KW_ONLY, dataclass
from typing import Any

import httpx

from connectors.http import HttpClient, HttpError
from connectors.paging.core import DEFAULT_MAX_PAGES, PagingError, State, Strategy
from connectors.paging.rebuild import rebuild
from connectors.paging.records import read_json, records_at, value_at, where

# The package's name, as before it was split into modules: logging config that names
# "connectors.paging" keeps matching these records exactly.
log = logging.getLogger("connectors.paging")


@dataclass(frozen=True)
class ElasticsearchScroll(Strategy):
    """Elasticsearch scroll: POST `<index>/_search?scroll=1m` (the first request, with
    the query and `size` in its JSON body), then POST `/_search/scroll` with the latest
    `scroll_id` until a page has no hits; the scroll is cleared at the end.

    Advancing a scroll is not idempotent: if an answer is lost after the server moved on,
    repeating the call would skip a page. So a failed scroll call is never repeated;
    the scroll starts over and skips the hits already delivered (`max_restarts` times at
    most). Resuming a persisted state does the same (scrolls expire anyway). That relies
    on a stable order: sort the query by "_doc" and do not write to the index meanwhile;
    a changed hit total stops the load with an error instead of guessing.
    """

    scroll: str = "1m"
    _: KW_ONLY
    scroll_url: str | None = None  # default: <origin of the first request>/_search/scroll
    records_path: str = "hits.hits"
    max_pages: int = DEFAULT_MAX_PAGES
    max_restarts: int = 5

    def initial_state(self) -> State:
        return {"scroll_id": None, "seen": 0}

    def _scroll_url(self, first: httpx.URL) -> httpx.URL:
        if self.scroll_url:
            return first.join(self.scroll_url)
        return first.copy_with(path="/_search/scroll", query=None)

    def build_request(self, first: httpx.Request, state: Mapping[str, Any]) -> httpx.Request:
        scroll_id = state.get("scroll_id")
        if scroll_id is None:
            return rebuild(first, method="POST", params={"scroll": self.scroll})
        body = {"scroll": self.scroll, "scroll_id": scroll_id}
        return rebuild(first, method="POST", url=self._scroll_url(first.url), body=body)

    def idempotent(self, state: Mapping[str, Any]) -> bool:
        return state.get("scroll_id") is None  # a new search may be repeated, a scroll not

    def parse(
        self, response: httpx.Response, state: Mapping[str, Any]
    ) -> tuple[list[Any], State | None]:
        document = read_json(response)
        incomplete = _incomplete(document)
        if incomplete:
            # Elasticsearch answers 200 with the hits of the shards that did answer: taking
            # the page would lose the others' hits without a word.
            raise PagingError(
                f"{where(response)}: the answer is incomplete ({incomplete}), so some hits "
                "are missing from it. Run the load again (it resumes after the last page "
                "landed); if it persists, tell the service's operator"
            )
        hits = records_at(response, document, self.records_path)
        total = _hits_total(document)
        if state.get("total") is not None and total is not None and total != state["total"]:
            raise PagingError(
                f"{where(response)}: the hit total changed from {state['total']} to {total} "
                "while the scroll started over, so skipping the hits already read is not "
                "safe. Run the load again from the start"
            )
        skip = int(state.get("skip", 0))
        records = hits[skip:]
        seen = int(state.get("seen", 0)) + len(records)
        if not hits:
            if skip:
                raise PagingError(
                    f"{where(response)}: the scroll ended {skip} hit(s) before the position "
                    "already read. Run the load again from the start"
                )
            return records, None
        scroll_id = document.get("_scroll_id")
        if not scroll_id:
            raise PagingError(
                f"{where(response)}: no _scroll_id in the answer. The first request must be "
                "a POST to <index>/_search"
            )
        following: State = {"scroll_id": scroll_id, "seen": seen, "total": total}
        if skip > len(hits):
            following["skip"] = skip - len(hits)
        if state.get("stale"):
            following["stale"] = list(state["stale"])
        if state.get("restarts"):
            following["restarts"] = state["restarts"]
        return records, following

    def _restart(self, state: Mapping[str, Any], restarts: int) -> State:
        stale = list(state.get("stale", []))
        if state.get("scroll_id"):
            stale.append(state["scroll_id"])
        seen = int(state.get("seen", 0))
        restarted: State = {"scroll_id": None, "seen": seen, "skip": seen, "restarts": restarts}
        if state.get("total") is not None:
            restarted["total"] = state["total"]
        if stale:
            restarted["stale"] = stale
        return restarted

    def resume(self, state: Mapping[str, Any]) -> State:
        return self._restart(state, restarts=0)

    def recover(self, state: Mapping[str, Any], error: HttpError) -> State | None:
        if state.get("scroll_id") is None:
            return None  # the search itself failed after all retries
        if not (error.transient or error.status == 404):  # 404: the scroll expired
            return None
        restarts = int(state.get("restarts", 0)) + 1
        if restarts > self.max_restarts:
            return None
        return self._restart(state, restarts)

    def finish(
        self, client: HttpClient, first: httpx.Request, state: Mapping[str, Any] | None
    ) -> None:
        if not state:
            return
        ids = [*state.get("stale", []), *([state["scroll_id"]] if state.get("scroll_id") else [])]
        if ids:
            _clear_scroll(client, self._scroll_url(first.url), ids)


def _incomplete(document: Any) -> str | None:
    """Why an answer holds only part of its hits (failed shards, a timeout), else None."""
    if not isinstance(document, Mapping):
        return None
    shards = document.get("_shards")
    failed = shards.get("failed") if isinstance(shards, Mapping) else None
    if isinstance(failed, int) and not isinstance(failed, bool) and failed > 0:
        failures = shards.get("failures") or [{}]
        first = failures[0] if isinstance(failures[0], Mapping) else {}
        reason = first.get("reason")
        if isinstance(reason, Mapping):
            reason = reason.get("type") or reason.get("reason")
        why = f": {reason}" if reason else ""
        return f"{failed} of {shards.get('total', '?')} shards failed{why}"
    if document.get("timed_out") is True:
        return "the search timed out on the server"
    return None


def _hits_total(document: Any) -> int | None:
    total = value_at(document, "hits.total")
    if isinstance(total, Mapping):  # Elasticsearch 7+: {"value": n, "relation": "eq"}
        total = total.get("value")
    return int(total) if isinstance(total, int | float | str) and str(total).isdigit() else None


def _clear_scroll(client: HttpClient, url: httpx.URL, ids: list[str]) -> None:
    try:
        client.request("DELETE", url, json={"scroll_id": ids})
    except HttpError as error:  # the scroll expires on its own; do not fail a finished load
        if error.status != 404:
            log.warning("could not clear %d Elasticsearch scroll(s): %s", len(ids), error)
