"""The paging loop and the contract every strategy implements.

`paginate` owns what all sources share (the max-pages guard, sending through `HttpClient`,
recovering and cleaning up through the strategy's hooks), so a strategy only maps a state
to a request and a response to records plus the next state.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import httpx

from connectors.http import HttpClient, HttpError, redact_url

# The package's name, as before it was split into modules: logging config that names
# "connectors.paging" keeps matching these records exactly.
log = logging.getLogger("connectors.paging")

State = dict[str, Any]
DEFAULT_MAX_PAGES = 10_000


class PagingError(Exception):
    """A source whose pages cannot be followed safely (one line: what, where, what to do)."""


class PageLimitError(PagingError):
    """The max-pages guard tripped. `state` resumes where it stopped."""

    def __init__(self, message: str, *, max_pages: int, state: State) -> None:
        super().__init__(message)
        self.max_pages = max_pages
        self.state = state


@dataclass(frozen=True)
class Page:
    """One response: its records, and the state to resume from *after* this page
    (None when this was the last page). `response` keeps the raw bytes for landing."""

    number: int
    records: list[Any]
    state: State | None
    response: httpx.Response


class Paginator(Protocol):
    """start request + state → request; response → records + next state (or None)."""

    max_pages: int

    def initial_state(self) -> State: ...

    def build_request(self, first: httpx.Request, state: Mapping[str, Any]) -> httpx.Request: ...

    def parse(
        self, response: httpx.Response, state: Mapping[str, Any]
    ) -> tuple[list[Any], State | None]: ...

    def idempotent(self, state: Mapping[str, Any]) -> bool: ...

    def resume(self, state: Mapping[str, Any]) -> State: ...

    def recover(self, state: Mapping[str, Any], error: HttpError) -> State | None: ...

    def finish(
        self, client: HttpClient, first: httpx.Request, state: Mapping[str, Any] | None
    ) -> None: ...


class Strategy:
    """Defaults for the optional hooks: every request may be repeated, a persisted state
    is resumed as is, failures are not recovered, nothing to clean up."""

    max_pages: int = DEFAULT_MAX_PAGES

    def idempotent(self, state: Mapping[str, Any]) -> bool:
        return True

    def resume(self, state: Mapping[str, Any]) -> State:
        return dict(state)

    def recover(self, state: Mapping[str, Any], error: HttpError) -> State | None:
        return None

    def finish(
        self, client: HttpClient, first: httpx.Request, state: Mapping[str, Any] | None
    ) -> None:
        return None


def paginate(
    client: HttpClient,
    first_request: httpx.Request,
    strategy: Paginator,
    *,
    state: Mapping[str, Any] | None = None,
) -> Iterator[Page]:
    """Yield one Page per response until the strategy says the source is exhausted.

    `first_request` is built with `client.build_request` (base URL, User-Agent); the
    strategy sets the paging parameters on it. `state` is a `Page.state` persisted by an
    earlier run: start from there instead of the beginning.
    """
    current: State = strategy.resume(state) if state is not None else strategy.initial_state()
    requests = 0
    pages = 0
    try:
        while True:
            if requests >= strategy.max_pages:
                raise PageLimitError(
                    f"{first_request.method} {redact_url(first_request.url)}: "
                    f"{type(strategy).__name__} reached max_pages={strategy.max_pages} and the "
                    "source has more pages. Raise max_pages if the source is really that "
                    "large, or check the paging parameters (a service that ignores them "
                    "returns the same page forever). The error's .state resumes from here",
                    max_pages=strategy.max_pages,
                    state=current,
                )
            request = strategy.build_request(first_request, current)
            requests += 1
            try:
                response = client.send(request, idempotent=strategy.idempotent(current))
            except HttpError as error:
                recovered = strategy.recover(current, error)
                if recovered is None:
                    raise
                log.warning(
                    "%s; %s starts over from %s",
                    error,
                    type(strategy).__name__,
                    _describe(recovered),
                )
                current = recovered
                continue
            records, following = strategy.parse(response, current)
            pages += 1
            yield Page(pages, records, following, response)
            if following is None:
                return
            current = following
    finally:
        strategy.finish(client, first_request, current)


def _describe(state: Mapping[str, Any]) -> str:
    return json.dumps({k: v for k, v in state.items() if k != "stale"}, sort_keys=True)
