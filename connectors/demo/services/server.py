"""One local HTTP server (127.0.0.1, a free port, a background thread) for the demo services.

Routes (all on the same port):

- ``POST /DAR/v1?apiKey=KEY`` and ``POST /BBR/v1?apiKey=KEY``: GraphQL, JSON body
  ``{"query", "variables", "operationName"}`` (see ``datafordeler``);
  ``GET /DAR/v1/schema?apiKey=KEY`` (and ``/BBR/...``): the schema as SDL, as the real
  service offers it. The key goes in the ``apiKey`` query parameter (the name matched
  case-insensitively, as public clients spell it ``apikey`` too). Missing -> 401 and
  wrong -> 403, each with ``{"message": ...}``: both a **guess** (no refused answer is in
  ``shared/fixtures/real/datafordeler``; these are the HTTP meanings of the two cases).
- ``POST /v1/tableinfo`` and ``POST /v1/data``: StatBank, JSON body (see ``statbank``);
  also ``GET /v1/tableinfo?id=DEMOFOLK&lang=en``, ``GET /v1/tableinfo/DEMOFOLK`` and
  ``GET /v1/data/DEMOFOLK/CSV?OMRÅDE=*&TID=2024K1,2024K2`` like the live API. No key.
- ``POST /cvr-permanent/virksomhed/_search?scroll=1m``, ``POST``/``DELETE /_search/scroll``:
  the CVR-like Elasticsearch, HTTP Basic auth (see ``cvr``).
- ``GET|POST /ckan/api/3/action/<action>`` and ``GET /ckan/dataset/<id>/resource/<id>/
  download/<file>``: the CKAN-like open-data portal, no key (see ``ckan``).
- ``GET /vendor/api/v2/work-orders?page=&page_size=``: the vendor REST API, bearer token
  (see ``vendor``).

Every request is recorded (``DemoServices.seen()``: method, path with query, body; the newest
``MAX_SEEN``) before it is answered, so tests can count what reached the server.
"""

from __future__ import annotations

import json
import logging
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from .ckan import PORTAL_PATH, SITE_URL, CkanService
from .cvr import CvrService
from .datafordeler import GraphQLService, default_clock
from .registers import Registers, build_registers
from .statbank import JSON_TYPE, Answer, StatbankService, error_answer
from .vendor import PATH as VENDOR_PATH
from .vendor import VendorService

# Demo credentials: the services accept these unless told otherwise. They protect nothing
# (synthetic data on 127.0.0.1); they exist so the demo sends them as real loads must.
DEMO_API_KEY = "demo-kommune-0350"
DEMO_CVR_USERNAME = "demo_kommune_0350"
DEMO_CVR_PASSWORD = "demo-cvr-password-0350"
DEMO_VENDOR_TOKEN = "demo-vendor-token-0350"
MAX_SEEN = 10_000  # requests kept for `seen()`: the newest, so a long-running server stays small

logger = logging.getLogger("kommunelake.demo.services")


@dataclass(frozen=True)
class ServiceUrls:
    """Where the running services answer.

    - ``datafordeler``: the GraphQL host, ``http://127.0.0.1:PORT``; registers are at
      ``{datafordeler}/DAR/v1`` and ``{datafordeler}/BBR/v1`` (``connectors.datafordeler``'s
      ``base_url``).
    - ``statbank``: ``http://127.0.0.1:PORT/v1`` (``connectors.statbank``'s ``base_url``).
    - ``api_key``: the Datafordeler key the server accepts.
    - ``cvr``: the Elasticsearch root ``http://127.0.0.1:PORT`` (``connectors.cvr``'s
      ``base_url``), with ``cvr_username``/``cvr_password`` for Basic auth.
    - ``ckan``: the portal, ``http://127.0.0.1:PORT/ckan`` (``connectors.ckan``'s ``portal``);
      its answers link to its public address ``ckan.SITE_URL`` instead.
    - ``vendor``: the work-order endpoint ``http://127.0.0.1:PORT/vendor/api/v2/work-orders``,
      with ``vendor_token`` as bearer token.
    """

    datafordeler: str
    statbank: str
    api_key: str
    cvr: str = ""
    cvr_username: str = ""
    cvr_password: str = field(default="", repr=False)
    ckan: str = ""
    vendor: str = ""
    vendor_token: str = field(default="", repr=False)

    def environment(self) -> dict[str, str]:
        """The SOURCES__* variables that point the demo's API datasets at these services
        (what `kommunelake demo` sets; the names follow each dataset YAML's source)."""
        return {
            "SOURCES__DATAFORDELER__BASE_URL": self.datafordeler,
            "SOURCES__DATAFORDELER__API_KEY": self.api_key,
            "SOURCES__STATBANK__BASE_URL": self.statbank,
            "SOURCES__CVR__BASE_URL": self.cvr,
            "SOURCES__CVR__USERNAME": self.cvr_username,
            "SOURCES__CVR__PASSWORD": self.cvr_password,
            "SOURCES__CKAN__BASE_URL": self.ckan,
            "SOURCES__WORK_ORDERS__URL": self.vendor,
            "SOURCES__WORK_ORDERS__TOKEN": self.vendor_token,
        }


class DemoServices:
    """The Demo Kommune's Datafordeler-, StatBank-, CVR-, CKAN- and vendor-like services.

    ``with DemoServices(persons=2000) as urls: ...`` or ``start()`` / ``stop()``. The data is
    that of ``connectors.demo.generate(home, persons, seed)``; it is built in ``start()``
    (about 1.5 s for 20,000 persons), never at construction or import.
    """

    def __init__(
        self,
        persons: int = 20_000,
        seed: int = 2026,
        *,
        api_key: str = DEMO_API_KEY,
        cvr_username: str = DEMO_CVR_USERNAME,
        cvr_password: str = DEMO_CVR_PASSWORD,
        vendor_token: str = DEMO_VENDOR_TOKEN,
        host: str = "127.0.0.1",
        port: int = 0,
        clock: Callable[[], datetime] = default_clock,
    ) -> None:
        if not (api_key and cvr_username and cvr_password and vendor_token):
            raise ValueError("the API key, CVR credentials and vendor token must not be empty")
        self.persons, self.seed = persons, seed
        self.api_key = api_key
        self.cvr_username, self.cvr_password = cvr_username, cvr_password
        self.vendor_token = vendor_token
        self.host, self.port = host, port
        self.clock = clock
        self.registers: Registers | None = None
        self.graphql: GraphQLService | None = None
        self.statbank: StatbankService | None = None
        self.cvr: CvrService | None = None
        self.ckan: CkanService | None = None
        self.vendor: VendorService | None = None
        self.requests: deque[SeenRequest] = deque(maxlen=MAX_SEEN)
        self._requests_lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def urls(self) -> ServiceUrls:
        if self._server is None:
            raise RuntimeError("the demo services are not running: call start() first")
        host, port = self._server.server_address[:2]
        root = f"http://{host}:{port}"
        return ServiceUrls(
            datafordeler=root,
            statbank=f"{root}/v1",
            api_key=self.api_key,
            cvr=root,
            cvr_username=self.cvr_username,
            cvr_password=self.cvr_password,
            ckan=f"{root}{PORTAL_PATH}",
            vendor=f"{root}/{'/'.join(VENDOR_PATH)}",
            vendor_token=self.vendor_token,
        )

    def record(self, method: str, path: str, body: bytes) -> None:
        with self._requests_lock:
            self.requests.append(SeenRequest(method, path, body))

    def seen(self) -> list[SeenRequest]:
        """The requests received so far, oldest first (a copy)."""
        with self._requests_lock:
            return list(self.requests)

    def start(self) -> ServiceUrls:
        if self._server is not None:
            return self.urls
        if self.registers is None:
            self.registers = build_registers(self.persons, self.seed)
            self.graphql = GraphQLService(self.registers, self.clock)
            population = self.registers.population
            self.statbank = StatbankService(population)
            self.cvr = CvrService(
                population, self.seed, username=self.cvr_username, password=self.cvr_password
            )
            self.ckan = CkanService(population, self.seed)
            self.vendor = VendorService(population, self.seed, token=self.vendor_token)
        server = ThreadingHTTPServer((self.host, self.port), _Handler)
        server.daemon_threads = True
        server.services = self  # type: ignore[attr-defined]
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.1},
            name="kommunelake-demo-services",
            daemon=True,
        )
        self._thread.start()
        urls = self.urls
        logger.info(
            "demo services at %s (Datafordeler, CVR), %s (StatBank), %s (CKAN), %s (vendor)",
            urls.datafordeler,
            urls.statbank,
            urls.ckan,
            urls.vendor,
        )
        return urls

    def stop(self) -> None:
        server, thread = self._server, self._thread
        self._server = self._thread = None
        if server is None:
            return
        server.shutdown()
        server.server_close()
        if thread is not None:
            thread.join(timeout=5)

    def __enter__(self) -> ServiceUrls:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


class _Handler(BaseHTTPRequestHandler):
    server_version = "kommunelake-demo/1"
    # HTTP/1.0: one request per connection, so stop() never waits on idle keep-alives.
    protocol_version = "HTTP/1.0"

    @property
    def services(self) -> DemoServices:
        return self.server.services  # type: ignore[attr-defined,no-any-return]

    def log_message(self, format: str, *args: Any) -> None:
        logger.debug("%s %s", self.address_string(), format % args)

    def do_POST(self) -> None:
        self._dispatch("POST")

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_DELETE(self) -> None:
        self._dispatch("DELETE")

    def _dispatch(self, method: str) -> None:
        try:
            self._send(self._answer(method))
        except Exception:  # a bug here must not kill the thread silently: 500 + log
            logger.exception("demo services failed on %s %s", method, self.path)
            self._send(Answer(500, "text/plain; charset=utf-8", b"internal error"))

    def _answer(self, method: str) -> Answer:
        url = urlsplit(self.path)
        query = dict(parse_qsl(url.query, keep_blank_values=True))
        parts = [p for p in url.path.split("/") if p]
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        self.services.record(method, self.path, body)

        if len(parts) >= 2 and parts[0] in GraphQLService.REGISTERS and parts[1] == "v1":
            denied = self._check_key(query)
            if denied is not None:
                return denied
            graphql = self.services.graphql
            assert graphql is not None
            if method == "GET" and parts[2:] == ["schema"]:
                return Answer(200, "text/plain; charset=utf-8", graphql.sdl(parts[0]).encode())
            if method == "POST" and len(parts) == 2:
                status, payload = graphql.execute(parts[0], body)
                content = json.dumps(payload, ensure_ascii=False).encode("utf-8")
                return Answer(status, "application/json; charset=utf-8", content)
            return _not_found(self.path)

        if len(parts) >= 2 and parts[0] == "v1" and parts[1] in ("tableinfo", "data"):
            statbank = self.services.statbank
            assert statbank is not None
            if method == "POST":
                try:
                    request = json.loads(body.decode("utf-8-sig") or "{}")
                except ValueError as exc:
                    return error_answer("PARAMETER-INVALID", f"Forespørgslen er ikke JSON: {exc}")
                if not isinstance(request, dict):
                    return error_answer("PARAMETER-INVALID", "Forespørgslen skal være et objekt.")
            else:
                request = _get_request(parts[1], parts[2:], query)
            return statbank.handle(parts[1], request)

        auth = self.headers.get("Authorization") or ""
        cvr = self.services.cvr
        assert cvr is not None
        if (len(parts) == 3 and parts[0] == "cvr-permanent" and parts[2] == "_search") or (
            parts == ["_search", "scroll"]
        ):
            if method == "DELETE" and parts[0] != "_search":
                return _not_found(self.path)
            return cvr.handle(method, parts, query, body, auth)

        if parts[:1] == [PORTAL_PATH.strip("/")]:
            return self._ckan(method, parts[1:], query, body)

        vendor = self.services.vendor
        assert vendor is not None
        if tuple(parts) == VENDOR_PATH and method == "GET":
            return vendor.handle(query, auth)
        return _not_found(self.path)

    def _ckan(self, method: str, parts: list[str], query: dict[str, str], body: bytes) -> Answer:
        ckan = self.services.ckan
        assert ckan is not None
        portal = SITE_URL  # its links name its public address, whichever port we listen on
        if len(parts) == 4 and parts[:3] == ["api", "3", "action"]:
            params: dict[str, Any] = dict(query)
            if method == "POST" and body.strip():
                try:
                    posted = json.loads(body.decode("utf-8"))
                except (ValueError, UnicodeDecodeError):
                    posted = None
                if not isinstance(posted, dict):
                    message = json.dumps("Bad request - JSON Error: the body is not an object")
                    return Answer(400, "application/json;charset=utf-8", message.encode())
                params |= posted
            return ckan.action(portal, parts[3], params)
        if (
            method == "GET"
            and len(parts) == 6
            and parts[::2] == ["dataset", "resource", "download"]
        ):
            return ckan.download(parts[1], parts[3], parts[5])
        return _not_found(self.path)

    def _check_key(self, query: dict[str, str]) -> Answer | None:
        given = next((v for k, v in query.items() if k.casefold() == "apikey"), None)
        if not given:
            return Answer(401, JSON_TYPE, b'{"message":"Missing apiKey query parameter."}')
        if given != self.services.api_key:
            return Answer(403, JSON_TYPE, b'{"message":"The apiKey is not valid."}')
        return None

    def _send(self, answer: Answer) -> None:
        self.send_response(answer.status)
        self.send_header("Content-Type", answer.content_type)
        self.send_header("Content-Length", str(len(answer.body)))
        for name, value in answer.headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(answer.body)


@dataclass(frozen=True)
class SeenRequest:
    """A request as the server received it (the path includes the query string)."""

    method: str
    path: str
    body: bytes = field(repr=False)

    def json(self) -> Any:
        return json.loads(self.body) if self.body else None


def _not_found(path: str) -> Answer:
    return Answer(404, "text/plain; charset=utf-8", f"no demo service at {path}".encode())


def _get_request(endpoint: str, rest: list[str], query: dict[str, str]) -> dict[str, Any]:
    """A GET (``/v1/tableinfo/T``, ``/v1/data/T/CSV?VAR=a,b``) as the POST body it means."""
    reserved = {"id", "table", "lang", "format", "valuepresentation"}
    request: dict[str, Any] = {
        k: v
        for k, v in query.items()
        if k.casefold() in reserved and k.casefold() != "valuepresentation"
    }
    for key, value in query.items():
        if key.casefold() == "valuepresentation":
            request["valuePresentation"] = value
    if rest:
        request["table"] = rest[0]
    if endpoint == "data":
        if len(rest) > 1:
            request["format"] = rest[1]
        request["variables"] = [
            {"code": code, "values": values.split(",")}
            for code, values in query.items()
            if code.casefold() not in reserved
        ]
    return request
