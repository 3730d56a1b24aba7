"""Datafordeleren (the Danish public data distributor: BBR buildings, DAR addresses, MAT
parcels, ...): GraphQL and the legacy REST services, as flat records and polars tables.

- `build_query(entity, fields, where=..., virkningstid=..., registreringstid=...)`: a paged
  GraphQL query for one entity (`DAR_Adresse`, `BBR_Bygning`, ...). `fields` are dot paths
  (`adresseHarHusnummer.husnummertekst`); `where` is the service's filter object
  (`{"kommunekode": {"eq": "0151"}}`), rendered inline as the service documents it.
- `graphql_pages(client, register, entity, query)` / `rest_pages(client, path, params)`:
  one `DafPage` per response, with the raw bytes (for landing) and the paging `state` to
  persist after each page; pass a persisted state back as `state=` to resume with no gap.
- `fetch_graphql(...)` / `fetch_rest(...)`: every page, as an `Extract` (raw pages, flat
  records and a polars table).
- `parse_graphql(raw, entity)`, `parse_rest(raw)`, `flatten(record)`, `to_frame(records)`:
  the same parsing without the network.

Flattening (one row per node / REST record): nested objects become columns joined with
`__` (Datafordeler's own names already use a single `_`, as in `id_lokalId`), so
`adresseHarHusnummer: {husnummertekst: "43"}` is the column
`adresseHarHusnummer__husnummertekst` and a WKT geometry `{wkt, crs}` gives `<field>__wkt`
and `<field>__crs`. Lists (one-to-many relations such as `AdresseHarEnhed { nodes }`) stay
in one column as compact JSON text of the list (the `nodes` wrapper dropped): exploding
them would multiply the parent rows, so fetch the child entity on its own when it needs
its own table. A null object is a null column under its own name, dropped when other rows
fill its sub-columns.

Bitemporality (*bitemporalitet*: when a fact was true in the world, *virkning*, and when the
register knew it, *registrering*): `virkningFra`, `virkningTil`, `registreringFra`,
`registreringTil` and `datafordelerOpdateringstid`, at any depth, become
`Datetime("us", "UTC")` columns; a null `...Til` means the period is still open. `status`
and `forretningshaendelse` (the business event that made the registration) stay String
codes. GraphQL answers as of `virkningstid`/`registreringstid` when they are given, else
as of now.

Auth: an API key in the `apiKey` query parameter (`auth(api_key)`, added per request by the
shared client, so it is never in a paging state, a landing manifest or an error message);
`api_key_from_env()` reads `SOURCES__DATAFORDELER__API_KEY`.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import graphql
import httpx
import polars as pl

from connectors.formats.errors import FormatError
from connectors.http import ApiKeyAuth, HttpClient, redact_url
from connectors.paging import (
    DEFAULT_MAX_PAGES,
    GraphQLRelay,
    PageNumber,
    PagingError,
    State,
    paginate,
)

GRAPHQL_URL = "https://graphql.datafordeler.dk"
REST_URL = "https://services.datafordeler.dk"
API_KEY_ENV = "SOURCES__DATAFORDELER__API_KEY"
API_KEY_PARAM = "apiKey"
# Page sizes we ask for. The service's own caps are not stated in the samples we hold;
# 1000 is the largest page the cookbook's authors and the REST services are used with.
MAX_FIRST = 1000
DEFAULT_PAGESIZE = 1000

BITEMPORAL_FIELDS = ("virkningFra", "virkningTil", "registreringFra", "registreringTil")
TIMESTAMP_FIELDS = frozenset({*BITEMPORAL_FIELDS, "datafordelerOpdateringstid"})
SEP = "__"

_NAME = re.compile(r"[_A-Za-z][_0-9A-Za-z]*")  # a GraphQL name: nothing else may enter a query
_DATETIME_TYPE = pl.Datetime("us", "UTC")


class DatafordelerError(Exception):
    """Datafordeleren answered, but not with data we can trust (one line: what, where, what
    to do). `errors` holds a GraphQL answer's error objects, API key scrubbed."""

    def __init__(self, message: str, *, errors: Sequence[Mapping[str, Any]] = ()) -> None:
        super().__init__(message)
        self.errors = list(errors)


@dataclass(frozen=True, eq=False)
class DafPage:
    """One response. `state` resumes *after* this page (None: it was the last); `raw` are
    the bytes as received; `url` is redacted and `body` is the request's JSON body (None
    for GET), both fit for a landing manifest."""

    number: int
    records: list[dict[str, Any]]
    state: State | None
    raw: bytes = field(repr=False)
    media_type: str
    url: str
    body: dict[str, Any] | None


@dataclass(frozen=True, eq=False)
class Extract:
    """Every page of one load: raw bytes per page, flat records, and a typed table."""

    raw: tuple[bytes, ...] = field(repr=False)
    records: list[dict[str, Any]] = field(repr=False)
    table: pl.DataFrame


# -- auth


def api_key_from_env(env: Mapping[str, str] | None = None) -> str:
    """The API key from `SOURCES__DATAFORDELER__API_KEY` (`env` defaults to os.environ)."""
    key = (os.environ if env is None else env).get(API_KEY_ENV, "").strip()
    if not key:
        raise DatafordelerError(
            f"Datafordeler: {API_KEY_ENV} is not set. Create an API key on "
            "datafordeler.dk (Selvbetjening) and set it in the environment or .env"
        )
    return key


def auth(api_key: str) -> ApiKeyAuth:
    """The key as the `apiKey` query parameter: pass to `HttpClient(auth=...)`."""
    return ApiKeyAuth(api_key, param=API_KEY_PARAM)


# -- GraphQL queries


def graphql_url(register: str, *, base_url: str = GRAPHQL_URL, version: str = "v1") -> str:
    """`{base_url}/{register}/{version}`, e.g. https://graphql.datafordeler.dk/BBR/v1."""
    _check_name(register, "register")
    return f"{base_url.rstrip('/')}/{register}/{version}"


def build_query(
    entity: str,
    fields: Sequence[str],
    *,
    where: Mapping[str, Any] | None = None,
    virkningstid: datetime | str | None = None,
    registreringstid: datetime | str | None = None,
) -> str:
    """A query paging one entity with `$first`/`$after` and selecting `pageInfo`.

    `fields` are dot paths into the node (`husnummerHoererTilIPostnummer.postnr`; through a
    list relation, `AdresseHarEnhed.nodes.id_lokalId`). Add `BITEMPORAL_FIELDS` (and
    `status`, `forretningshaendelse` where the entity has them) for history loads.
    `virkningstid`/`registreringstid` ask for the registers as of that instant (aware
    datetimes or ISO strings; naive datetimes are refused, they are ambiguous).
    """
    _check_name(entity, "entity")
    if not fields:
        raise ValueError(f"{entity}: name at least one field to select")
    arguments = ["first: $first", "after: $after"]
    for name, value in (("virkningstid", virkningstid), ("registreringstid", registreringstid)):
        if value is not None:
            arguments.append(f"{name}: {json.dumps(_instant(value, name))}")
    if where:
        arguments.append(f"where: {_literal(where)}")
    selection = _selection(_field_tree(fields), "      ")
    query = (
        "query Page($first: Int, $after: String) {\n"
        f"  {entity}({', '.join(arguments)}) {{\n"
        "    pageInfo { endCursor hasNextPage }\n"
        f"    nodes {{\n{selection}    }}\n"
        "  }\n"
        "}\n"
    )
    graphql.parse(query)  # a renderer bug shows here, not as a service error later
    return query


def _check_name(name: str, what: str) -> None:
    if not _NAME.fullmatch(name):
        raise ValueError(f"{what} {name!r} is not a GraphQL name (letters, digits, _)")


def _instant(value: datetime | str, name: str) -> str:
    if isinstance(value, str):
        value = _parse_timestamp(value, name)
    if value.tzinfo is None:
        raise ValueError(f"{name} must be timezone-aware (e.g. UTC), not {value!r}")
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _field_tree(fields: Sequence[str]) -> dict[str, Any]:
    tree: dict[str, Any] = {}
    for path in fields:
        node = tree
        for part in path.split("."):
            _check_name(part, "field")
            node = node.setdefault(part, {})
    return tree


def _selection(tree: Mapping[str, Any], indent: str) -> str:
    lines = []
    for name, children in tree.items():
        if children:
            inner = _selection(children, indent + "  ")
            lines.append(f"{indent}{name} {{\n{inner}{indent}}}\n")
        else:
            lines.append(f"{indent}{name}\n")
    return "".join(lines)


def _literal(value: Any) -> str:
    """A GraphQL input value: objects, lists, strings (JSON escaping is valid GraphQL),
    numbers, booleans and null. Keys must be names, so a filter cannot inject syntax."""
    if isinstance(value, Mapping):
        for key in value:
            _check_name(str(key), "filter key")
        return "{" + ", ".join(f"{k}: {_literal(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_literal(v) for v in value) + "]"
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        return json.dumps(_instant(value, "filter value"))
    if isinstance(value, int | float):
        return json.dumps(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    raise TypeError(f"cannot write {type(value).__name__} {value!r} into a GraphQL filter")


# -- GraphQL paging


@dataclass(frozen=True)
class _Relay(GraphQLRelay):
    """The shared Relay strategy, with Datafordeler's errors said in full first."""

    entity: str = ""
    secrets: tuple[str, ...] = field(default=(), repr=False)

    def parse(
        self, response: httpx.Response, state: Mapping[str, Any]
    ) -> tuple[list[Any], State | None]:
        try:
            document = response.json()
        except ValueError:
            document = None
        errors = document.get("errors") if isinstance(document, Mapping) else None
        if errors:
            raise _graphql_error(self.entity, response, errors, state, self.secrets)
        return super().parse(response, state)


def _graphql_error(
    entity: str,
    response: httpx.Response,
    errors: Any,
    state: Mapping[str, Any],
    secrets: Sequence[str],
) -> DatafordelerError:
    items = errors if isinstance(errors, list) else [errors]
    described = [_describe_error(e) for e in items[:3]]
    more = f" (+{len(items) - 3} more)" if len(items) > 3 else ""
    after = state.get("after")
    page = "first page" if after is None else f"page after cursor {str(after)[:24]}"
    message = (
        f"Datafordeler GraphQL {entity} ({_where(response)}, {page}) answered "
        f"{len(items)} error(s): {'; '.join(described)}{more}. Check the field, argument and "
        f"filter names against the register's schema ({_schema_url(response)}) and fix the "
        "query; pages already received are unaffected, resume from the last saved state"
    )
    clean = json.loads(_scrub(json.dumps(items, ensure_ascii=False), secrets))
    return DatafordelerError(_scrub(message, secrets), errors=clean)


def _describe_error(error: Any) -> str:
    if not isinstance(error, Mapping):
        return str(error)[:200]
    text = str(error.get("message") or "no message")[:300]
    where = [f"line {p.get('line')} column {p.get('column')}" for p in error.get("locations") or []]
    if where:
        text += f" (at {', '.join(where[:2])})"
    if error.get("path"):
        text += f" (path {'.'.join(str(p) for p in error['path'])})"
    code = (error.get("extensions") or {}).get("code")
    if code:
        text += f" [{code}]"
    return text


def _schema_url(response: httpx.Response) -> str:
    url = response.request.url
    return str(url.copy_with(path=url.path.rstrip("/") + "/schema", query=None))


def graphql_pages(
    client: HttpClient,
    register: str,
    entity: str,
    query: str,
    *,
    variables: Mapping[str, Any] | None = None,
    first: int = MAX_FIRST,
    state: Mapping[str, Any] | None = None,
    base_url: str = GRAPHQL_URL,
    version: str = "v1",
    max_pages: int = DEFAULT_MAX_PAGES,
) -> Iterator[DafPage]:
    """POST `query` to `{base_url}/{register}/{version}` page by page (`first` nodes each).

    `query` declares `$first: Int, $after: String` and selects `pageInfo` and `nodes` of
    `entity` (as `build_query` writes it). Persist each page's `state` once its records are
    safe; `state=` resumes after that page. Raises `DatafordelerError` on GraphQL errors.
    """
    if not 1 <= first <= MAX_FIRST:
        raise ValueError(f"first must be 1..{MAX_FIRST}, not {first}")
    body = {"query": query, "variables": dict(variables or {})}
    request = client.build_request(
        "POST", graphql_url(register, base_url=base_url, version=version), json=body
    )
    strategy = _Relay(
        f"data.{entity}",
        first=first,
        max_pages=max_pages,
        entity=entity,
        secrets=_secrets_of(client),
    )
    for page in paginate(client, request, strategy, state=state):
        response = page.response
        yield DafPage(
            number=page.number,
            records=[flatten(node) for node in page.records],
            state=page.state,
            raw=response.content,
            media_type=_media_type(response),
            url=_redacted(response.request.url),
            body=json.loads(response.request.content),
        )


def fetch_graphql(
    client: HttpClient,
    register: str,
    entity: str,
    fields: Sequence[str],
    *,
    where: Mapping[str, Any] | None = None,
    virkningstid: datetime | str | None = None,
    registreringstid: datetime | str | None = None,
    first: int = MAX_FIRST,
    state: Mapping[str, Any] | None = None,
    base_url: str = GRAPHQL_URL,
    max_pages: int = DEFAULT_MAX_PAGES,
) -> Extract:
    """Every page of `entity` with `fields` (see `build_query`) as one `Extract`.

    For loads that must survive a crash, iterate `graphql_pages` and persist each state.
    """
    query = build_query(
        entity, fields, where=where, virkningstid=virkningstid, registreringstid=registreringstid
    )
    pages = graphql_pages(
        client,
        register,
        entity,
        query,
        first=first,
        state=state,
        base_url=base_url,
        max_pages=max_pages,
    )
    return _collect(pages)


def parse_graphql(raw: bytes, entity: str) -> list[dict[str, Any]]:
    """The flat records of one GraphQL answer (nodes or edges.node of `data.<entity>`)."""
    source = f"Datafordeler GraphQL {entity}"
    try:
        document = json.loads(raw.decode("utf-8-sig"))
    except ValueError as exc:
        raise FormatError(source, f"not JSON ({exc})", "Check the URL and the apiKey") from None
    if isinstance(document, Mapping) and document.get("errors"):
        described = "; ".join(_describe_error(e) for e in document["errors"][:3])
        raise DatafordelerError(f"{source}: the answer holds GraphQL errors: {described}")
    connection = (document.get("data") or {}).get(entity) if isinstance(document, dict) else None
    if not isinstance(connection, Mapping):
        raise FormatError(source, f"no data.{entity} in the answer", "Check the entity name")
    if "nodes" in connection:
        nodes = connection["nodes"] or []
    else:
        nodes = [edge["node"] for edge in connection.get("edges") or []]
    return [flatten(node) for node in nodes]


# -- REST


def rest_pages(
    client: HttpClient,
    path: str,
    params: Mapping[str, Any] | None = None,
    *,
    pagesize: int = DEFAULT_PAGESIZE,
    state: Mapping[str, Any] | None = None,
    base_url: str = REST_URL,
    max_pages: int = DEFAULT_MAX_PAGES,
) -> Iterator[DafPage]:
    """GET `{base_url}/{path}` (e.g. `BBR/BBRPublic/1/rest/bygning`) with `page`/`pagesize`
    from page 1; each answer is a JSON list of records.

    Stops on an empty page, not a short one: if the service caps `pagesize` below ours,
    every page is short, and stopping there would silently drop the rest.
    """
    if pagesize < 1:
        raise ValueError(f"pagesize must be >= 1, not {pagesize}")
    url = f"{base_url.rstrip('/')}/{path.lstrip('/')}"
    request = client.build_request("GET", url, params=dict(params or {}))
    strategy = PageNumber(
        page_param="page",
        size_param="pagesize",
        size=pagesize,
        start=1,
        max_pages=max_pages,
        stop_on_short_page=False,
    )
    for page in paginate(client, request, strategy, state=state):
        response = page.response
        yield DafPage(
            number=page.number,
            records=[_rest_record(record, response) for record in page.records],
            state=page.state,
            raw=response.content,
            media_type=_media_type(response),
            url=_redacted(response.request.url),
            body=None,
        )


def fetch_rest(
    client: HttpClient,
    path: str,
    params: Mapping[str, Any] | None = None,
    *,
    pagesize: int = DEFAULT_PAGESIZE,
    state: Mapping[str, Any] | None = None,
    base_url: str = REST_URL,
    max_pages: int = DEFAULT_MAX_PAGES,
) -> Extract:
    """Every page of a REST list as one `Extract`."""
    pages = rest_pages(
        client,
        path,
        params,
        pagesize=pagesize,
        state=state,
        base_url=base_url,
        max_pages=max_pages,
    )
    return _collect(pages)


def parse_rest(raw: bytes) -> list[dict[str, Any]]:
    """The flat records of one REST answer (a JSON list of objects)."""
    source = "Datafordeler REST"
    try:
        document = json.loads(raw.decode("utf-8-sig"))
    except ValueError as exc:
        raise FormatError(source, f"not JSON ({exc})", "Check the URL and the apiKey") from None
    if not isinstance(document, list) or not all(isinstance(r, Mapping) for r in document):
        raise FormatError(source, "the answer is not a list of records", "Check the URL")
    return [flatten(record) for record in document]


def _rest_record(record: Any, response: httpx.Response) -> dict[str, Any]:
    if not isinstance(record, Mapping):
        raise PagingError(
            f"{_where(response)}: a record is a {type(record).__name__}, not an object. "
            "Check that the URL is a Datafordeler REST list service"
        )
    return flatten(record)


# -- records and tables


def flatten(record: Mapping[str, Any], *, sep: str = SEP) -> dict[str, Any]:
    """One flat record: nested objects joined with `sep`, lists as JSON text (module doc)."""
    flat: dict[str, Any] = {}
    _flatten_into(flat, record, "", sep)
    return flat


def _flatten_into(flat: dict[str, Any], value: Mapping[str, Any], prefix: str, sep: str) -> None:
    for key, item in value.items():
        name = f"{prefix}{key}"
        if isinstance(item, Mapping) and set(item) == {"nodes"}:
            item = item["nodes"]  # a relation's connection: keep its list of nodes
        if isinstance(item, Mapping) and item:
            _flatten_into(flat, item, f"{name}{sep}", sep)
        elif isinstance(item, list):
            flat[name] = json.dumps(item, ensure_ascii=False, separators=(",", ":"))
        else:
            flat[name] = None if isinstance(item, Mapping) else item


def to_frame(records: Iterable[Mapping[str, Any]], *, sep: str = SEP) -> pl.DataFrame:
    """Flat records as a table: timestamps typed (module doc), other columns as polars
    reads them, or String when their values mix types (a code both "120" and 120)."""
    rows = list(records)
    names: dict[str, None] = {}
    for row in rows:
        names.update(dict.fromkeys(row))
    # A relation null in every row but an object in others is represented by its children.
    columns = [
        n
        for n in names
        if not (
            any(other.startswith(n + sep) for other in names)
            and all(row.get(n) is None for row in rows)
        )
    ]
    series = [_column(name, [row.get(name) for row in rows], sep) for name in columns]
    return pl.DataFrame(series)


def _column(name: str, values: list[Any], sep: str) -> pl.Series:
    if name.rsplit(sep, 1)[-1] in TIMESTAMP_FIELDS:
        parsed = [None if v is None else _parse_timestamp(str(v), name) for v in values]
        return pl.Series(name, parsed, dtype=_DATETIME_TYPE)
    kinds = {type(v) for v in values if v is not None}
    if kinds <= {int, float} and float in kinds:
        return pl.Series(name, values, dtype=pl.Float64)
    if len(kinds) > 1:
        text = [None if v is None else v if isinstance(v, str) else json.dumps(v) for v in values]
        return pl.Series(name, text, dtype=pl.String)
    if not kinds:
        return pl.Series(name, values, dtype=pl.String)  # all null: no type to infer
    return pl.Series(name, values)


def _parse_timestamp(text: str, name: str) -> datetime:
    """An ISO 8601 instant in UTC. Datafordeler writes `Z` (GraphQL) or an offset (REST);
    a value without either is read as UTC (an assumption: the samples always carry one)."""
    try:
        value = datetime.fromisoformat(text.strip())
    except ValueError:
        raise FormatError(
            "Datafordeler",
            f"{name}: {text[:40]!r} is not an ISO 8601 timestamp",
            "Check the field; timestamps look like 2025-06-04T00:00:00.123456Z",
        ) from None
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


# -- helpers


def _collect(pages: Iterable[DafPage]) -> Extract:
    raw: list[bytes] = []
    records: list[dict[str, Any]] = []
    for page in pages:
        raw.append(page.raw)
        records.extend(page.records)
    return Extract(raw=tuple(raw), records=records, table=to_frame(records))


def _redacted(url: httpx.URL) -> str:
    return redact_url(url, (API_KEY_PARAM,))


def _where(response: httpx.Response) -> str:
    return f"{response.request.method} {_redacted(response.request.url)}"


def _media_type(response: httpx.Response) -> str:
    return response.headers.get("Content-Type", "").split(";")[0].strip().lower()


def _secrets_of(client: HttpClient) -> tuple[str, ...]:
    values = getattr(client.client.auth, "secret_values", None)
    return tuple(values()) if callable(values) else ()


def _scrub(text: str, secrets: Sequence[str]) -> str:
    for secret in sorted({s for s in secrets if s}, key=len, reverse=True):
        text = text.replace(secret, "REDACTED")
    return text
