"""A fake Datafordeleren on 127.0.0.1 that answers from the REAL GraphQL samples
(shared/fixtures/real/datafordeler, see its PROVENANCE.md).

GraphQL (`POST /<REGISTER>/v1?apiKey=...`): the query is parsed with graphql-core like a
real server would; the top-level field names the entity, which must belong to the register
(`DAR_*` at /DAR/v1). Arguments are honoured: `first` (1..1000) and `after` (opaque
base64 cursors) slice the entity's nodes, `where` filters them (`eq`/`in` on top-level
fields), `virkningstid`/`registreringstid` must be ISO instants and are recorded. The answer
holds exactly the selected fields, in selection order, with `pageInfo` when selected; a
field the sample does not have is a GraphQL error in a 200 answer, worded like Hot
Chocolate (the server Datafordeleren's GraphQL runs on).

REST (`GET /BBR/BBRPublic/1/rest/bygning?page=&pagesize=`): a JSON list per page, empty
past the end. No real REST answer exists in the fixtures (PROVENANCE.md says so), so these
records are SYNTHETIC in shape: the 7 real BBR_Bygning nodes with REST-style bitemporal
fields (offsets, not `Z`) added.

The bitemporal values added to the 7 real BBR_Bygning nodes (GraphQL and REST) are also
SYNTHETIC: the samples select no bitemporal field except `datafordelerOpdateringstid`.

A wrong or missing `apiKey` gets 401 with a body that echoes the key back, as a careless
service might: the client must keep it out of its messages all the same.
"""

from __future__ import annotations

import base64
import copy
import json
import threading
from collections.abc import Mapping
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import graphql
from graphql import Undefined
from graphql.language import FieldNode, OperationDefinitionNode, SelectionSetNode
from graphql.utilities import value_from_ast_untyped

from tests.connectors.fakeserver import FakeServer, Reply, Request

API_KEY = "daf-test-key-7Qx9Lm"  # distinctive, so a leak is easy to find in any text
REGISTERS = ("BBR", "DAR", "GEODKV")
REST_BYGNING = "/BBR/BBRPublic/1/rest/bygning"
SUPERQUERY = (
    "graphql_DAR_Adresse_Lundagervej43_superquery_with_BBR_Enhed_Bygning_TekniskAnlaeg.json"
)

# SYNTHETIC bitemporal values for the 7 real buildings, in sample order. Index 2 has a
# closed virkning period and a closed registration (superseded); the others are open.
_GRAPHQL_TIMES = [
    ("2019-03-01T08:00:00.000000Z", None, "2019-03-01T08:00:05.123456Z", None),
    ("2020-01-22T09:02:26.617553Z", None, "2020-01-22T09:02:27.000001Z", None),
    (
        "2013-05-01T00:00:00.000000Z",
        "2021-06-30T22:00:00.000000Z",
        "2013-05-02T10:11:12.131415Z",
        "2021-07-01T06:00:00.000000Z",
    ),
    ("2013-05-01T00:00:00.000000Z", None, "2013-05-02T10:11:12.131415Z", None),
    ("2013-05-01T00:00:00.000000Z", None, "2013-05-02T10:11:12.131415Z", None),
    ("2013-05-01T00:00:00.000000Z", None, "2013-05-02T10:11:12.131415Z", None),
    ("1967-01-01T00:00:00.000000Z", None, "2017-11-17T14:58:52.660000Z", None),
]


def fixture_dir(real: Path) -> Path:
    return real / "datafordeler"


def sample_files(real: Path) -> list[Path]:
    return sorted(fixture_dir(real).glob("graphql_*.json"))


def sample_entity(document: Mapping[str, Any]) -> str:
    (entity,) = document["data"]
    return str(entity)


def sample_nodes(document: Mapping[str, Any]) -> list[dict[str, Any]]:
    return list(document["data"][sample_entity(document)]["nodes"])


def leaf_paths(nodes: list[Any], prefix: str = "") -> list[str]:
    """Dot paths of every leaf the nodes hold, in document order, through lists."""
    paths: dict[str, None] = {}
    for node in nodes:
        for key, value in node.items():
            path = f"{prefix}{key}"
            if isinstance(value, Mapping) and value:
                paths.update(dict.fromkeys(leaf_paths([value], f"{path}.")))
            elif isinstance(value, list) and value and all(isinstance(v, Mapping) for v in value):
                paths.update(dict.fromkeys(leaf_paths(value, f"{path}.")))
            else:
                paths[path] = None
    return list(paths)


def bbr_bygninger(real: Path) -> list[dict[str, Any]]:
    """The 7 real BBR_Bygning nodes of the super-query, with SYNTHETIC bitemporal fields."""
    document = json.loads((fixture_dir(real) / SUPERQUERY).read_bytes())
    adresse = sample_nodes(document)[0]
    jordstykke = adresse["adresseHarHusnummer"]["husnummerErPlaceretPaaJordstykke"]["nodes"][0]
    nodes = copy.deepcopy(jordstykke["id_lokalId_18_Bygning_jordstykke_ref"]["nodes"])
    for node, (vfra, vtil, rfra, rtil) in zip(nodes, _GRAPHQL_TIMES, strict=True):
        node.update(
            virkningFra=vfra,
            virkningTil=vtil,
            registreringFra=rfra,
            registreringTil=rtil,
            status="6" if vtil is None else "7",
            forretningshaendelse="Bygning",
        )
    return nodes


def rest_bygninger(real: Path) -> list[dict[str, Any]]:
    """SYNTHETIC REST-shaped records: the buildings with times written with +02:00/+01:00."""
    records = []
    for node in bbr_bygninger(real):
        record = {k: v for k, v in node.items() if k != "byg404Koordinat"}
        for name in ("virkningFra", "virkningTil", "registreringFra", "registreringTil"):
            if record[name] is not None:
                instant = datetime.fromisoformat(record[name])
                hours = 2 if 4 <= instant.month <= 10 else 1  # Danish summer / winter time
                record[name] = instant.astimezone(timezone(timedelta(hours=hours))).isoformat()
        records.append(record)
    return records


def cursor(entity: str, position: int) -> str:
    return base64.b64encode(f"{entity}:{position}".encode()).decode()


class DafServer:
    """Datafordeler routes on a running FakeServer; records what each request asked."""

    def __init__(self, server: FakeServer, datasets: Mapping[str, list[dict[str, Any]]]) -> None:
        self.server = server
        self.datasets = {name: list(nodes) for name, nodes in datasets.items()}
        self.rest_records: list[dict[str, Any]] = []
        self.rest_cap = 1000  # the largest pagesize the fake REST service honours
        self.echo_url_in_errors = False  # answer errors with the request URL, key included
        self.asked: list[dict[str, Any]] = []  # per GraphQL request: entity and arguments
        self.sent: list[bytes] = []  # every body answered with 200, in order
        self._lock = threading.Lock()
        for register in REGISTERS:
            server.route("POST", f"/{register}/v1")(self._graphql_for(register))
        server.route("GET", REST_BYGNING)(self._rest)

    @property
    def url(self) -> str:
        return self.server.url

    # -- shared
    def _refused(self, request: Request) -> Reply | None:
        key = request.arg("apiKey")
        if key == API_KEY:
            return None
        return Reply.json({"error": f"Unauthorized: apiKey {key!r} is not valid"}, status=401)

    def _ok(self, payload: Any) -> Reply:
        reply = Reply.json(payload)
        with self._lock:
            self.sent.append(reply.body)
        return reply

    # -- GraphQL
    def _graphql_for(self, register: str) -> Any:
        def route(request: Request) -> Reply:
            refused = self._refused(request)
            if refused is not None:
                return refused
            body = request.json()
            try:
                return self._ok(self._execute(register, body, request))
            except _QueryError as error:
                return self._ok({"errors": [error.as_dict(self, request)]})

        return route

    def _execute(self, register: str, body: Mapping[str, Any], request: Request) -> Any:
        try:
            document = graphql.parse(body["query"])
        except graphql.GraphQLError as exc:
            raise _QueryError(exc.message, None) from None
        operation = next(d for d in document.definitions if isinstance(d, OperationDefinitionNode))
        (top,) = operation.selection_set.selections
        assert isinstance(top, FieldNode)
        entity = top.name.value
        if not entity.startswith(f"{register}_") or entity not in self.datasets:
            raise _QueryError(f"The field `{entity}` does not exist on the type `Query`.", top)
        variables = body.get("variables") or {}
        given = {a.name.value: value_from_ast_untyped(a.value, variables) for a in top.arguments}
        # an argument bound to a variable the request leaves out is not given (GraphQL spec)
        args = {name: value for name, value in given.items() if value is not Undefined}
        with self._lock:
            self.asked.append({"entity": entity, **args})
        for name in ("virkningstid", "registreringstid"):
            if name in args:
                try:
                    datetime.fromisoformat(args[name])
                except (TypeError, ValueError):
                    raise _QueryError(f"{name}: {args[name]!r} is not a DateTime", top) from None
        nodes = [n for n in self.datasets[entity] if _matches(n, args.get("where") or {}, top)]
        first = args.get("first", 100)
        if not isinstance(first, int) or not 1 <= first <= 1000:
            raise _QueryError(f"The maximum allowed items per page were exceeded: {first}", top)
        start = 0
        if args.get("after") is not None:
            start = _position(entity, args["after"], top) + 1
        page = nodes[start : start + first]
        info = {
            "endCursor": cursor(entity, start + len(page) - 1) if page else None,
            "hasNextPage": start + len(page) < len(nodes),
        }
        connection = {"pageInfo": info, "nodes": page}
        assert top.selection_set is not None
        answer = _project(connection, top.selection_set, f"{entity}Connection")
        return {"data": {entity: answer}}

    # -- REST
    def _rest(self, request: Request) -> Reply:
        refused = self._refused(request)
        if refused is not None:
            return refused
        page = int(request.arg("page", "1") or 1)
        size = min(int(request.arg("pagesize", "1000") or 1000), self.rest_cap)
        with self._lock:
            self.asked.append({"rest": REST_BYGNING, "page": page, "pagesize": size})
        return self._ok(self.rest_records[(page - 1) * size : page * size])


class _QueryError(Exception):
    def __init__(self, message: str, node: Any) -> None:
        super().__init__(message)
        self.message = message
        self.node = node

    def as_dict(self, server: DafServer, request: Request) -> dict[str, Any]:
        error: dict[str, Any] = {"message": self.message}
        if self.node is not None and self.node.loc is not None:
            location = self.node.loc.source.get_location(self.node.loc.start)
            error["locations"] = [{"line": location.line, "column": location.column}]
        if server.echo_url_in_errors:
            query = "&".join(f"{k}={v[0]}" for k, v in request.query.items())
            error["extensions"] = {"request": f"{request.path}?{query}"}
            error["message"] += f" (request {request.path}?{query})"
        return error


def _position(entity: str, token: Any, node: Any) -> int:
    try:
        kind, _, position = base64.b64decode(str(token)).decode().partition(":")
        assert kind == entity
        return int(position)
    except Exception:
        raise _QueryError(f"The cursor {token!r} is not valid.", node) from None


def _matches(node: Mapping[str, Any], where: Mapping[str, Any], top: Any) -> bool:
    for name, condition in where.items():
        for operation, expected in condition.items():
            if operation == "eq" and node.get(name) != expected:
                return False
            if operation == "in" and node.get(name) not in expected:
                return False
            if operation not in ("eq", "in"):
                raise _QueryError(f"The fake supports eq and in, not {operation}.", top)
    return True


def _project(value: Any, selection: SelectionSetNode, type_name: str) -> Any:
    if value is None:
        return None
    if isinstance(value, list):
        return [_project(item, selection, type_name) for item in value]
    out: dict[str, Any] = {}
    for field in selection.selections:
        assert isinstance(field, FieldNode)
        name = field.name.value
        if name not in value:
            raise _QueryError(
                f"The field `{name}` does not exist on the type `{type_name}`.", field
            )
        inner = value[name]
        # a connection's nodes are of the entity's type; other fields name their own type
        child = type_name.removesuffix("Connection") if name == "nodes" else name
        out[name] = _project(inner, field.selection_set, child) if field.selection_set else inner
    return out
