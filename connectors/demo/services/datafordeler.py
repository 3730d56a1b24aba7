"""A Datafordeler-like GraphQL service over the Demo Kommune registers (``/DAR/v1``, ``/BBR/v1``).

The schema follows the production DAR schema (``DAR_V001``, as published in the
Datafordeler GraphQL cookbook by Septima) and the BBR fields of the real answers in
``shared/fixtures/real/datafordeler``: one root field per entity taking ``first``, ``after``,
``registreringstid``, ``virkningstid`` and ``where``, returning a Relay connection with
``pageInfo { hasNextPage hasPreviousPage startCursor endCursor }``, ``edges { cursor node }``
and ``nodes``. Field names and casing are the register's (``id_lokalId``, ``virkningFra``,
``byg021BygningensAnvendelse``, ...). Queries run through graphql-core, so an unknown
field or a wrong argument type gives the GraphQL error a real server would.

Behaviour (what is known of the real service, and where we chose):

- ``where``: the ``and``/``or`` combinators and per-field operators — ``eq``/``in`` on
  strings, plus ``startsWith`` on searchable text (``adressebetegnelse``, ``vejnavn``, ...);
  ``eq``/``in``/``gt``/``gte``/``lt``/``lte`` on numbers; ``eq``/``gt``/``ngt``/``gte``/
  ``ngte``/``lt``/``nlt``/``lte``/``nlte`` on DafDateTime. ``kommunekode`` is a field of the
  BBR entities (as in the real BBR); on ``DAR_Adresse``/``DAR_Husnummer`` it is accepted
  as a filter only — a demo convenience: the real DAR schema has no such filter.
- Bitemporal: a row is returned when ``registreringFra <= registreringstid <
  registreringTil`` and ``virkningFra <= virkningstid < virkningTil`` (an open end is
  infinite). Either argument defaults to now (never earlier than the demo's extract date,
  so the default answer is always the current register).
- Paging: cursors are opaque (base64 of the position, as HotChocolate, which the real
  service runs on, makes them); nodes come in ``id_lokalId`` order. ``first`` defaults
  to 10 (HotChocolate's default) and may be at most ``MAX_PAGE_SIZE`` = 1000: the
  production schema declares ``@listSize(assumedSize: 1000, slicingArguments: ["first"])``
  on every root field and public clients page with ``first: 1000``. A larger ``first``
  gives HotChocolate's own error (``HC0051``, "The maximum allowed items per page were
  exceeded.") with ``data.<entity>: null``.
- Errors: GraphQL errors (syntax, unknown field, bad argument, page size) come back as an
  ``errors`` array with HTTP 200, as HotChocolate answers them (the page-size code and
  wording are HotChocolate's own; none is recorded in the fixtures). A body that is not a
  GraphQL request gives HTTP 400 with ``{"errors": [{"message"}]}``: a **guess** at the
  real service's answer. The API key check (401/403, also guesses) is ``server.py``'s.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from graphql import (
    GraphQLError,
    GraphQLResolveInfo,
    GraphQLSchema,
    StringValueNode,
    build_schema,
    graphql_sync,
    print_schema,
)

from .registers import EXTRACT_INSTANT, Registers, Row

MAX_PAGE_SIZE = 1000
DEFAULT_PAGE_SIZE = 10

S, SEARCH, INT, TIME, POINT = "String", "search", "Int", "DafDateTime", "point"

_COMMON: tuple[tuple[str, str], ...] = (
    ("datafordelerOpdateringstid", TIME),
    ("forretningshaendelse", S),
    ("forretningsomraade", S),
    ("forretningsproces", S),
    ("id_lokalId", S),
    ("id_namespace", S),
    ("registreringFra", TIME),
    ("registreringsaktoer", S),
    ("registreringTil", TIME),
    ("status", S),
    ("virkningFra", TIME),
    ("virkningsaktoer", S),
    ("virkningTil", TIME),
)

# entity -> its own fields (beside _COMMON), and filter-only extras.
ENTITIES: dict[str, dict[str, tuple[tuple[str, str], ...]]] = {
    "DAR_Adresse": {
        "fields": (
            ("adressebetegnelse", SEARCH),
            ("doerbetegnelse", S),
            ("etagebetegnelse", S),
            ("husnummer", S),
        ),
        "filters": (("kommunekode", S),),
    },
    "DAR_Husnummer": {
        "fields": (
            ("adgangsadressebetegnelse", SEARCH),
            ("adgangTilBygning", S),
            ("geoDanmarkBygning", S),
            ("husnummertekst", S),
            ("kommuneinddeling", S),
            ("navngivenVej", S),
            ("postnummer", S),
            ("vejmidte", S),
        ),
        "filters": (("kommunekode", S),),
    },
    "DAR_NavngivenVej": {
        "fields": (
            ("administreresAfKommune", S),
            ("udtaltVejnavn", S),
            ("vejadresseringsnavn", S),
            ("vejnavn", SEARCH),
        ),
    },
    "DAR_Postnummer": {
        "fields": (("navn", SEARCH), ("postnr", SEARCH), ("postnummerinddeling", S)),
    },
    "BBR_Bygning": {
        "fields": (
            ("byg007Bygningsnummer", INT),
            ("byg021BygningensAnvendelse", S),
            ("byg026Opfoerelsesaar", INT),
            ("byg032YdervaeggensMateriale", S),
            ("byg033Tagdaekningsmateriale", S),
            ("byg038SamletBygningsareal", INT),
            ("byg041BebyggetAreal", INT),
            ("byg054AntalEtager", INT),
            ("byg056Varmeinstallation", S),
            ("byg404Koordinat", POINT),
            ("husnummer", S),
            ("kommunekode", S),
        ),
    },
    "BBR_Enhed": {
        "fields": (
            ("adresseIdentificerer", S),
            ("bygning", S),
            ("enh020EnhedensAnvendelse", S),
            ("enh023Boligtype", S),
            ("enh024KondemneretBoligenhed", S),
            ("enh026EnhedensSamledeAreal", INT),
            ("enh027ArealTilBeboelse", INT),
            ("enh028ArealTilErhverv", INT),
            ("enh031AntalVaerelser", INT),
            ("enh032Toiletforhold", S),
            ("enh033Badeforhold", S),
            ("enh034Koekkenforhold", S),
            ("enh035Energiforsyning", S),
            ("enh053SupplerendeVarme", S),
            ("enh065AntalVandskylledeToiletter", INT),
            ("kommunekode", S),
        ),
    },
}

_OUTPUT_TYPE = {S: "String", SEARCH: "String", INT: "Int", TIME: "DafDateTime"}
_FILTER_TYPE = {
    S: "DafStringOperationFilterInput",
    SEARCH: "DafSearchableStringOperationFilterInput",
    INT: "DafIntOperationFilterInput",
    TIME: "DafDateTimeOperationFilterInput",
}

_SHARED_SDL = """
"An instant, ISO 8601 (Datafordeler's DafDateTime)."
scalar DafDateTime

enum SpatialDimensionEnumType { XY XYZ }
enum SpatialGeometryNameEnumType {
  Point MultiPoint LineString MultiLineString Polygon MultiPolygon
}

interface SpatialInterfaceType {
  type: SpatialGeometryNameEnumType!
  crs: Int!
  dimension: SpatialDimensionEnumType!
  wkt: String
}

"Spatial Point type with XY-dimensions in the EPSG 25832 coordinate system."
type SpatialPointEpsg25832Type implements SpatialInterfaceType {
  type: SpatialGeometryNameEnumType!
  crs: Int!
  dimension: SpatialDimensionEnumType!
  wkt: String
}

"Information about pagination in a connection."
type PageInfo {
  hasNextPage: Boolean!
  hasPreviousPage: Boolean!
  startCursor: String
  endCursor: String
}

input DafStringOperationFilterInput { eq: String in: [String!] }
input DafSearchableStringOperationFilterInput { eq: String startsWith: String in: [String!] }
input DafIntOperationFilterInput { eq: Int in: [Int!] gt: Int gte: Int lt: Int lte: Int }
input DafDateTimeOperationFilterInput {
  eq: DafDateTime gt: DafDateTime ngt: DafDateTime gte: DafDateTime ngte: DafDateTime
  lt: DafDateTime nlt: DafDateTime lte: DafDateTime nlte: DafDateTime
}
"""


def schema_sdl(register: str) -> str:
    """The SDL of one register's schema (``DAR`` or ``BBR``)."""
    parts = [_SHARED_SDL]
    roots = []
    for entity, spec in ENTITIES.items():
        if not entity.startswith(f"{register}_"):
            continue
        fields = sorted((*_COMMON, *spec["fields"]), key=lambda f: f[0].casefold())
        lines = [
            f"  {name}: " + ("SpatialPointEpsg25832Type" if kind == POINT else _OUTPUT_TYPE[kind])
            for name, kind in fields
        ]
        filters = [
            f"  {name}: {_FILTER_TYPE[kind]}"
            for name, kind in sorted((*fields, *spec.get("filters", ())))
            if kind != POINT
        ]
        parts.append(f"type {entity} {{\n" + "\n".join(lines) + "\n}")
        parts.append(
            f'"A connection to a list of items."\ntype {entity}Connection {{\n'
            "  pageInfo: PageInfo!\n"
            f"  edges: [{entity}Edge!]\n"
            f"  nodes: [{entity}!]\n}}"
        )
        parts.append(f"type {entity}Edge {{\n  cursor: String!\n  node: {entity}!\n}}")
        parts.append(
            f"input {entity}FilterInput {{\n"
            f"  and: [{entity}FilterInput!]\n  or: [{entity}FilterInput!]\n"
            + "\n".join(filters)
            + "\n}"
        )
        roots.append(
            f"  {entity}(first: Int, after: String, registreringstid: DafDateTime, "
            f"virkningstid: DafDateTime, where: {entity}FilterInput): {entity}Connection"
        )
    parts.append(f'"Query type for {register}"\ntype Query {{\n' + "\n".join(roots) + "\n}")
    return "\n\n".join(parts) + "\n"


# -- DafDateTime


def format_time(value: datetime) -> str:
    """``2021-01-05T19:29:22.816433Z``: UTC with microseconds, as the real answers show."""
    if not isinstance(value, datetime):
        raise TypeError(f"DafDateTime cannot represent {value!r}")
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_time(value: Any) -> datetime:
    # ValueError/TypeError, not GraphQLError: graphql-core then reports "Expected value of
    # type 'DafDateTime', found ..." with the argument's location, as a real server does.
    if not isinstance(value, str):
        raise TypeError(f"DafDateTime must be an ISO 8601 string, not {value!r}")
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError:
        raise ValueError(f"DafDateTime cannot parse {value!r}: expected ISO 8601") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _parse_time_literal(node: Any, _variables: Any = None) -> datetime:
    if not isinstance(node, StringValueNode):
        raise TypeError('DafDateTime must be a string such as "2025-06-04T00:00:00Z"')
    return parse_time(node.value)


# -- filters and paging


def _compare(op: str) -> Callable[[Any, Any], bool]:
    def check(value: Any, operand: Any) -> bool:
        if value is None or operand is None:
            return False
        return {
            "gt": value > operand,
            "gte": value >= operand,
            "lt": value < operand,
            "lte": value <= operand,
        }[op]

    return check


_OPS: dict[str, Callable[[Any, Any], bool]] = {
    "eq": lambda value, operand: value == operand,
    "in": lambda value, operand: value in (operand or ()),
    "startsWith": lambda value, operand: isinstance(value, str) and value.startswith(operand),
    **{op: _compare(op) for op in ("gt", "gte", "lt", "lte")},
    "ngt": lambda value, operand: not _compare("gt")(value, operand),
    "ngte": lambda value, operand: not _compare("gte")(value, operand),
    "nlt": lambda value, operand: not _compare("lt")(value, operand),
    "nlte": lambda value, operand: not _compare("lte")(value, operand),
}


def matches(row: Row, where: Mapping[str, Any] | None) -> bool:
    """Whether ``row`` passes a ``where`` filter (already coerced by graphql-core)."""
    if not where:
        return True
    for key, condition in where.items():
        if condition is None:
            continue
        if key == "and":
            if not all(matches(row, sub) for sub in condition):
                return False
        elif key == "or":
            if condition and not any(matches(row, sub) for sub in condition):
                return False
        else:
            value = row.get(key)
            for op, operand in condition.items():
                if operand is None and op != "eq":
                    continue
                if not _OPS[op](value, operand):
                    return False
    return True


def in_time(row: Row, registreringstid: datetime, virkningstid: datetime) -> bool:
    reg_to, virk_to = row["registreringTil"], row["virkningTil"]
    return (
        row["registreringFra"] <= registreringstid
        and (reg_to is None or registreringstid < reg_to)
        and row["virkningFra"] <= virkningstid
        and (virk_to is None or virkningstid < virk_to)
    )


def encode_cursor(position: int) -> str:
    return base64.b64encode(str(position).encode("ascii")).decode("ascii")


def decode_cursor(cursor: str) -> int:
    try:
        position = int(base64.b64decode(cursor.encode("ascii"), validate=True).decode("ascii"))
    except (ValueError, UnicodeError, binascii.Error):
        raise GraphQLError(f"The cursor {cursor!r} is not valid.") from None
    if position < 0:
        raise GraphQLError(f"The cursor {cursor!r} is not valid.")
    return position


def page(rows: Sequence[Row], entity: str, first: int | None, after: str | None) -> dict[str, Any]:
    """One Relay page of ``rows`` (already filtered), HotChocolate-style."""
    size = DEFAULT_PAGE_SIZE if first is None else first
    if size < 0:
        raise GraphQLError(
            "The requested number of items must be zero or positive.",
            extensions={"code": "HC0052", "coordinate": f"Query.{entity}"},
        )
    if size > MAX_PAGE_SIZE:
        raise GraphQLError(
            "The maximum allowed items per page were exceeded.",
            extensions={
                "code": "HC0051",
                "coordinate": f"Query.{entity}",
                "requestedItems": size,
                "maxAllowedItems": MAX_PAGE_SIZE,
            },
        )
    start = 0 if after is None else decode_cursor(after) + 1
    chosen = rows[start : start + size]
    edges = [{"cursor": encode_cursor(start + i), "node": row} for i, row in enumerate(chosen)]
    return {
        "nodes": list(chosen),
        "edges": edges,
        "pageInfo": {
            "hasNextPage": start + size < len(rows),
            "hasPreviousPage": start > 0,
            "startCursor": edges[0]["cursor"] if edges else None,
            "endCursor": edges[-1]["cursor"] if edges else None,
        },
    }


# -- the service


def default_clock() -> datetime:
    """Now, but never before the demo's extract date (all history lies before it)."""
    return max(datetime.now(UTC), EXTRACT_INSTANT)


class GraphQLService:
    """Executes GraphQL requests against the DAR and BBR schemas. Thread-safe: read-only."""

    REGISTERS = ("DAR", "BBR")

    def __init__(self, registers: Registers, clock: Callable[[], datetime] = default_clock):
        self.clock = clock
        tables = {**registers.dar, **registers.bbr}
        self.tables: dict[str, tuple[Row, ...]] = {
            entity: tuple(
                sorted(
                    rows, key=lambda r: (r["id_lokalId"], r["virkningFra"], r["registreringFra"])
                )
            )
            for entity, rows in tables.items()
        }
        self.schemas = {register: self._schema(register) for register in self.REGISTERS}

    def _schema(self, register: str) -> GraphQLSchema:
        schema = build_schema(schema_sdl(register))
        scalar = schema.type_map["DafDateTime"]
        scalar.serialize = format_time  # type: ignore[attr-defined,method-assign]
        scalar.parse_value = parse_time  # type: ignore[attr-defined,method-assign]
        scalar.parse_literal = _parse_time_literal  # type: ignore[attr-defined,method-assign]
        assert schema.query_type is not None
        for entity, field in schema.query_type.fields.items():
            field.resolve = self._resolver(entity)
        return schema

    def _resolver(self, entity: str) -> Callable[..., dict[str, Any]]:
        table = self.tables[entity]

        def resolve(
            _root: Any,
            info: GraphQLResolveInfo,
            first: int | None = None,
            after: str | None = None,
            registreringstid: datetime | None = None,
            virkningstid: datetime | None = None,
            where: Mapping[str, Any] | None = None,
        ) -> dict[str, Any]:
            now = info.context["now"]
            reg, virk = registreringstid or now, virkningstid or now
            rows = [r for r in table if in_time(r, reg, virk) and matches(r, where)]
            return page(rows, entity, first, after)

        return resolve

    def sdl(self, register: str) -> str:
        return print_schema(self.schemas[register])

    def execute(self, register: str, body: bytes) -> tuple[int, dict[str, Any]]:
        """(HTTP status, JSON answer) for a POSTed GraphQL request body."""
        try:
            request = json.loads(body.decode("utf-8"))
            query = request["query"]
            variables = request.get("variables")
            operation = request.get("operationName")
            if not isinstance(query, str) or not isinstance(variables, dict | None):
                raise TypeError("query must be a string and variables an object")
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            message = f"The request is not a GraphQL request ({type(exc).__name__}: {exc})."
            return 400, {"errors": [{"message": message}]}
        result = graphql_sync(
            self.schemas[register],
            query,
            variable_values=variables,
            operation_name=operation,
            context_value={"now": self.clock()},
        )
        answer: dict[str, Any] = {}
        if result.errors:
            answer["errors"] = [error.formatted for error in result.errors]
        if result.data is not None or not result.errors:
            answer["data"] = result.data
        return 200, answer
