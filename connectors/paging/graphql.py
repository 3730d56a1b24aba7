"""GraphQL Relay cursor connections, paged through the query's variables.

A GraphQL service answers HTTP 200 even when the query failed, so the `errors` in the body
are checked before any records are trusted (`GraphQLError`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import KW_ONLY, dataclass
from typing import Any

import httpx

from connectors.paging.core import DEFAULT_MAX_PAGES, PagingError, State, Strategy
from connectors.paging.rebuild import json_body, rebuild
from connectors.paging.records import advance_guard, get_path, read_json, records_at, where


class GraphQLError(PagingError):
    """A GraphQL answer with `errors` (HTTP 200 but no trustworthy data)."""


@dataclass(frozen=True)
class GraphQLRelay(Strategy):
    """Relay cursor connections: sets `variables.first`/`variables.after` in the POST
    JSON body; follows `pageInfo { endCursor hasNextPage }` at `connection_path`.

    The query must declare `$first`/`$after`, pass them to the connection and select
    `pageInfo { endCursor hasNextPage }`. Records are `nodes`, or `edges[].node`.
    """

    connection_path: str
    first: int = 100
    _: KW_ONLY
    first_variable: str = "first"
    after_variable: str = "after"
    records_path: str | None = None  # default: the connection's nodes / edges.node
    max_pages: int = DEFAULT_MAX_PAGES

    def initial_state(self) -> State:
        return {"after": None}

    def build_request(self, first: httpx.Request, state: Mapping[str, Any]) -> httpx.Request:
        body = json_body(first)
        variables = dict(body.get("variables") or {})
        variables[self.first_variable] = self.first
        if state["after"] is None:
            variables.pop(self.after_variable, None)
        else:
            variables[self.after_variable] = state["after"]
        return rebuild(first, method="POST", body={**body, "variables": variables})

    def parse(
        self, response: httpx.Response, state: Mapping[str, Any]
    ) -> tuple[list[Any], State | None]:
        document = read_json(response)
        errors = document.get("errors") if isinstance(document, Mapping) else None
        if errors:
            first_error = errors[0].get("message") if isinstance(errors[0], Mapping) else errors
            raise GraphQLError(
                f"{where(response)}: GraphQL answered {len(errors)} error(s), first: "
                f"{str(first_error)[:200]}. Fix the query or its variables"
            )
        try:
            connection = get_path(document, self.connection_path)
        except KeyError:
            raise PagingError(
                f"{where(response)}: no connection at {self.connection_path!r}. "
                "Set connection_path to the dot path of the paged field, e.g. 'data.DAR_Adresse'"
            ) from None
        if self.records_path:
            records = records_at(response, document, self.records_path)
        elif isinstance(connection, Mapping) and "nodes" in connection:
            records = list(connection["nodes"] or [])
        elif isinstance(connection, Mapping) and "edges" in connection:
            records = [edge["node"] for edge in connection["edges"] or []]
        else:
            raise PagingError(
                f"{where(response)}: the connection at {self.connection_path!r} has neither "
                "nodes nor edges. Select nodes { ... } or edges { node { ... } }"
            )
        info = connection.get("pageInfo") if isinstance(connection, Mapping) else None
        if not isinstance(info, Mapping) or "hasNextPage" not in info:
            raise PagingError(
                f"{where(response)}: the connection has no pageInfo.hasNextPage. "
                "Select pageInfo { endCursor hasNextPage } in the query"
            )
        if not info["hasNextPage"]:
            return records, None
        cursor = info.get("endCursor")
        if not cursor:
            raise PagingError(
                f"{where(response)}: hasNextPage is true but endCursor is empty. "
                "Select pageInfo { endCursor } in the query"
            )
        advance_guard(response, "endCursor", state["after"], cursor)
        return records, {"after": cursor}
