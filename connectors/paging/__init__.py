"""Pagination as small strategies over the shared HttpClient.

A strategy turns a resumable *state* (a small JSON-able dict: the next page, offset,
cursor, URL or scroll position) into the next request, and a response into records plus
the next state, or None when the source is exhausted:

    for page in paginate(client, client.build_request("GET", url), Offset(limit=100)):
        land(page.response.content); save(page.records); persist(page.state)

Resuming after a crash is `paginate(..., state=persisted)`: no gaps, and no duplicates
beyond the page that was being processed when it stopped.

Every strategy has `max_pages` (requests per `paginate` call) and raises `PageLimitError`
when a source has more, instead of silently truncating; and a `records_path`, the dot
path to the record list in the JSON body (None: the body itself is the list).

Import from here; the modules are the layout, not the API: `core` (paginate, Page, the
Paginator protocol, errors), `records` and `rebuild` (reading answers, building the next
request), and one module per family of strategies.
"""

from connectors.paging.core import (
    DEFAULT_MAX_PAGES,
    Page,
    PageLimitError,
    Paginator,
    PagingError,
    State,
    Strategy,
    paginate,
)
from connectors.paging.cursor import Cursor
from connectors.paging.elasticsearch import ElasticsearchScroll
from connectors.paging.graphql import GraphQLError, GraphQLRelay
from connectors.paging.link_header import LinkHeader, link_header_url
from connectors.paging.offset import Offset
from connectors.paging.page_number import PageNumber, PostBodyPage
from connectors.paging.records import get_path

__all__ = [
    "DEFAULT_MAX_PAGES",
    "Cursor",
    "ElasticsearchScroll",
    "GraphQLError",
    "GraphQLRelay",
    "LinkHeader",
    "Offset",
    "Page",
    "PageLimitError",
    "PageNumber",
    "Paginator",
    "PagingError",
    "PostBodyPage",
    "State",
    "Strategy",
    "get_path",
    "link_header_url",
    "paginate",
]
