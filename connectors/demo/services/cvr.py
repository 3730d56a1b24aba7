"""A CVR-like Elasticsearch (``/cvr-permanent/virksomhed/_search``, ``/_search/scroll``) over
the Demo Kommune's companies, behind HTTP Basic auth.

The companies are those of ``drop/cvr_companies/cvr_virksomheder.json`` before defects were
injected (``cvr_companies.clean_companies`` with the extract's own random stream): same CVR
numbers, names, industries, forms, addresses and dates. Each is served as the real system's
``Vrvirksomhed`` document (``shared/fixtures/real/cvr``, company 25052943): the same keys in
the same order, history arrays with ``periode {gyldigFra, gyldigTil}`` and
``sidstOpdateret``, and ``virksomhedMetadata.nyeste*``. There is no person data at all:
``deltagerRelation`` (owners, board members) is always empty and so are the contact arrays
(phone, e-mail), ``conavn`` and ``fritekst`` are null.

Requests (as ``connectors.cvr`` and CVR's own guide make them):

- ``POST /cvr-permanent/virksomhed/_search?scroll=1m`` with ``{"query", "size", "sort"}``;
  without ``scroll`` a plain search (``from``/``size``). Queries: ``match_all``, ``term``,
  ``terms`` and ``bool`` (``must``/``filter``/``must_not``) on dotted ``_source`` paths,
  e.g. ``Vrvirksomhed.virksomhedMetadata.nyesteBeliggenhedsadresse.kommune.kommuneKode``.
- ``POST /_search/scroll`` with ``{"scroll", "scroll_id"}``: the next ``size`` hits, then an
  empty page. A scroll context lives for its keep-alive after each call (like Elasticsearch),
  advances on every call (a repeated call skips a page, as the real one does) and is
  cleared by ``DELETE /_search/scroll`` with ``{"scroll_id": [...]}``.

Answers are compact UTF-8 JSON: ``_scroll_id`` (when scrolling), ``took``, ``timed_out``,
``_shards``, ``hits {total, max_score, hits}``; ``hits.total`` is a number as in the
recorded (pre-7) answers; a sorted search has ``_score: null`` and a ``sort`` value per hit.
``took`` is fixed and scroll ids count from 1 per server, so a fresh demo answers
byte-identically.

Status codes and error bodies. None is recorded in the fixtures, so each is a choice:

- wrong or missing credentials: **guess** — 401 with ``WWW-Authenticate: Basic`` and
  Elasticsearch's ``security_exception`` body (what Elasticsearch's own security answers; the
  proxy in front of CVR may answer differently);
- an unknown or expired scroll id: **guess** — 404 with Elasticsearch's
  ``search_context_missing_exception`` body (Elasticsearch documents the 404 for an expired
  scroll; CVR's version may word it differently);
- an unknown index: **guess** — 404 ``index_not_found_exception``;
- an unknown query type or a body that is not JSON: **guess** — 400 ``parsing_exception``;
- ``size`` above 3000: **guess** — 400 ``illegal_argument_exception`` (CVR's guide says at
  most 3000 hits per page; how the service refuses more is not recorded);
- clearing scroll ids none of which exists: 404 ``{"succeeded": true, "num_freed": 0}``
  (Elasticsearch's documented answer).

Statuses and forms use CVR's code lists as the fixture shows them (``NORMAL``, form 80
``APS``/``Anpartsselskab``); the ``OPHØRT`` status of a closed company and the forms other
than 80 are our reading of CVR's lists, not recorded.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import itertools
import json
import random
import re
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

from ..dates import EXTRACT_DATE
from ..extracts import cvr_companies
from ..generator import stream
from ..people import Population
from ..places import Address
from .statbank import Answer

INDEX = "virksomhed"
INDEX_NAME = f"cvr-permanent-demo-{EXTRACT_DATE:%Y%m%d}"
MAX_SIZE = 3000
JSON_TYPE = "application/json; charset=UTF-8"
DEMO_KOMMUNEKODE = 350  # CVR writes kommunekoder as numbers (101, not "0101")
DEMO_KOMMUNENAVN = "DEMO KOMMUNE"  # upper case, as CVR writes them ("KØBENHAVN")
TOOK_MS = 3
SHARDS = {"total": 6, "successful": 6, "failed": 0}

# form as the generator names it -> (virksomhedsformkode, kortBeskrivelse, langBeskrivelse)
FORM_CODES: dict[str, tuple[int, str, str]] = {
    "Enkeltmandsvirksomhed": (10, "ENK", "Enkeltmandsvirksomhed"),
    "I/S": (30, "I/S", "Interessentskab"),
    "K/S": (40, "K/S", "Kommanditselskab"),
    "A/S": (60, "A/S", "Aktieselskab"),
    "ApS": (80, "APS", "Anpartsselskab"),
    "P/S": (81, "P/S", "Partnerselskab"),
}
ACTIVE, CLOSED = "NORMAL", "OPHØRT"

Document = dict[str, Any]


def _keep_alive_seconds(value: str) -> float:
    match = re.fullmatch(r"(\d+)(ms|s|m|h|d)", value.strip())
    if not match:
        raise ValueError(f"failed to parse setting [scroll] with value [{value}]")
    number, unit = int(match.group(1)), match.group(2)
    return number * {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400}[unit]


def _stamp(day: date, rng: random.Random) -> str:
    """``2017-04-10T09:01:06.000+02:00``: CVR's timestamps, Danish local time."""
    offset = "+02:00" if 4 <= day.month <= 10 else "+01:00"
    seconds = rng.randint(8 * 3600, 17 * 3600)
    hh, mm, ss = seconds // 3600, seconds // 60 % 60, seconds % 60
    return f"{day.isoformat()}T{hh:02d}:{mm:02d}:{ss:02d}.000{offset}"


def _period(start: str | None, end: str | None = None) -> dict[str, Any]:
    return {"gyldigFra": start, "gyldigTil": end}


def company_documents(population: Population, seed: int) -> list[Document]:
    """The ``Vrvirksomhed`` documents, in index (``_doc``) order: the extract's order."""
    companies = cvr_companies.clean_companies(stream(seed, cvr_companies.NAME), population)
    rng = stream(seed, "services/cvr")
    by_id = {address.id: address for address in population.addresses}
    streets = sorted({address.street.name for address in population.addresses})
    vejkoder = {name: 10 * (i + 1) for i, name in enumerate(streets)}
    return [
        _document(company, by_id[str(company["adresseId"])], vejkoder, rng, unit)
        for unit, company in enumerate(companies, start=1)
    ]


def _address(
    address: Address, vejkoder: Mapping[str, int], start: str, updated: str
) -> dict[str, Any]:
    number = re.match(r"(\d+)([A-Z]?)", address.husnr)
    street = address.street
    return {
        "landekode": "DK",
        "fritekst": None,
        "vejkode": vejkoder[street.name],
        "kommune": {
            "kommuneKode": DEMO_KOMMUNEKODE,
            "kommuneNavn": DEMO_KOMMUNENAVN,
            "periode": _period("2007-01-01"),
            "sidstOpdateret": "2006-11-13T00:00:00.000+01:00",
        },
        "husnummerFra": int(number.group(1)) if number else None,
        "adresseId": address.id,
        "sidstValideret": updated,
        "husnummerTil": None,
        "bogstavFra": (number.group(2) or None) if number else None,
        "bogstavTil": None,
        "etage": address.etage or None,
        "sidedoer": address.doer or None,
        "conavn": None,
        "postboks": None,
        "vejnavn": street.name,
        "bynavn": None,
        "postnummer": int(street.postnr),
        "postdistrikt": street.postnrnavn,
        "periode": _period(start),
        "sidstOpdateret": updated,
    }


def _document(
    company: Mapping[str, Any],
    address: Address,
    vejkoder: Mapping[str, int],
    rng: random.Random,
    unit: int,
) -> Document:
    start = str(company["startdato"])
    stop = company["ophoersdato"]
    created = _stamp(date.fromisoformat(start), rng)
    updated = _stamp(date.fromisoformat(str(stop or start)), rng)
    code, short, long = FORM_CODES[str(company["virksomhedsform"])]
    name = {"navn": company["navn"], "periode": _period(start, stop), "sidstOpdateret": created}
    where = _address(address, vejkoder, start, created)
    industry = {
        "branchekode": company["branchekode"],
        "branchetekst": company["branchetekst"],
        "periode": _period(start, stop),
        "sidstOpdateret": created,
    }
    form = {
        "virksomhedsformkode": code,
        "kortBeskrivelse": short,
        "langBeskrivelse": long,
        "ansvarligDataleverandoer": "E&S",
        "periode": _period(start, stop),
        "sidstOpdateret": created,
    }
    status = {"status": ACTIVE, "periode": _period(start, stop), "sidstOpdateret": created}
    company_doc: Document = {
        "cvrNummer": company["cvrNummer"],
        "regNummer": [],
        "brancheAnsvarskode": None,
        "reklamebeskyttet": rng.random() < 0.3,
        "navne": [name],
        "binavne": [],
        "postadresse": [],
        "beliggenhedsadresse": [where],
        # Contact data is left out: a sole proprietor's phone and e-mail are a person's.
        "telefonNummer": [],
        "telefaxNummer": [],
        "elektroniskPost": [],
        "hjemmeside": [],
        "obligatoriskEmail": [],
        "livsforloeb": [{"periode": _period(start, stop), "sidstOpdateret": created}],
        "hovedbranche": [industry],
        "bibranche1": [],
        "bibranche2": [],
        "bibranche3": [],
        "status": [],
        "virksomhedsstatus": [status],
        "virksomhedsform": [form],
        "aarsbeskaeftigelse": [],
        "kvartalsbeskaeftigelse": [],
        "maanedsbeskaeftigelse": [],
        "attributter": [],
        "penheder": [],
        "deltagerRelation": [],  # participants are persons: never served by the demo
        "fusioner": [],
        "spaltninger": [],
        "virksomhedMetadata": {
            "nyesteNavn": name,
            "nyesteVirksomhedsform": form,
            "nyesteBeliggenhedsadresse": where,
            "nyesteHovedbranche": industry,
            "nyesteBibranche1": None,
            "nyesteBibranche2": None,
            "nyesteBibranche3": None,
            "nyesteStatus": None,
            "nyesteKontaktoplysninger": [],
            "antalPenheder": 0,
            "nyesteAarsbeskaeftigelse": None,
            "nyesteKvartalsbeskaeftigelse": None,
            "nyesteMaanedsbeskaeftigelse": None,
            "sammensatStatus": CLOSED if stop else ACTIVE,
            "stiftelsesDato": start,
            "virkningsDato": start,
        },
        "samtId": unit,
        "fejlRegistreret": False,
        "dataAdgang": 0,
        "enhedsNummer": 4_000_000_000 + unit,  # the company's own unit number, not a person's
        "enhedstype": "VIRKSOMHED",
        "sidstIndlaest": f"{EXTRACT_DATE.isoformat()}T02:15:00.000+01:00",
        "sidstOpdateret": updated,
        "fejlVedIndlaesning": False,
        "naermesteFremtidigeDato": None,
        "fejlBeskrivelse": None,
        "virkningsAktoer": "PO",
    }
    return {"Vrvirksomhed": company_doc}


# -- queries


class QueryError(ValueError):
    pass


def _values_at(document: Any, path: Sequence[str]) -> list[Any]:
    if not path:
        return document if isinstance(document, list) else [document]
    if isinstance(document, list):
        return [v for item in document for v in _values_at(item, path)]
    if isinstance(document, Mapping) and path[0] in document:
        return _values_at(document[path[0]], path[1:])
    return []


def _same(value: Any, wanted: Any) -> bool:
    # Elasticsearch coerces a term to the field's type: "350" finds 350 and the reverse.
    return value == wanted or (value is not None and str(value) == str(wanted))


def _term(document: Document, field: str, wanted: Sequence[Any]) -> bool:
    found = _values_at(document, field.split("."))
    return any(_same(value, w) for value in found for w in wanted)


def matches(document: Document, query: Mapping[str, Any]) -> bool:
    """Whether a ``_source`` document matches an Elasticsearch query (the subset above)."""
    if len(query) != 1:
        raise QueryError(f"[_na] query malformed, expected one query type, found {list(query)}")
    [(kind, spec)] = query.items()
    if kind == "match_all":
        return True
    if kind in ("term", "terms") and isinstance(spec, Mapping) and len(spec) == 1:
        [(field, value)] = spec.items()
        if kind == "term":
            value = value.get("value") if isinstance(value, Mapping) else value
            return _term(document, field, [value])
        if isinstance(value, list):
            return _term(document, field, value)
    if kind == "bool" and isinstance(spec, Mapping):
        unknown = set(spec) - {"must", "filter", "must_not"}
        if unknown:
            raise QueryError(f"[bool] query does not support [{sorted(unknown)[0]}]")

        def clauses(key: str) -> list[Mapping[str, Any]]:
            value = spec.get(key) or []
            return [value] if isinstance(value, Mapping) else list(value)

        return all(matches(document, q) for q in clauses("must") + clauses("filter")) and not any(
            matches(document, q) for q in clauses("must_not")
        )
    raise QueryError(f"no [query] registered for [{kind}]")


# -- the service


@dataclass
class _Context:
    hits: list[int]  # document positions
    position: int
    size: int
    keep_alive: float
    expires: float
    sorted: bool


def _error(status: int, kind: str, reason: str, **extra: Any) -> Answer:
    cause = {"type": kind, "reason": reason, **extra}
    body = {"error": {"root_cause": [cause], **cause}, "status": status}
    return Answer(status, JSON_TYPE, _json(body))


def _json(payload: Any) -> bytes:
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


class CvrService:
    """Answers the CVR Elasticsearch requests; scroll contexts are guarded by a lock."""

    def __init__(
        self,
        population: Population,
        seed: int,
        *,
        username: str,
        password: str,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.documents = company_documents(population, seed)
        token = base64.b64encode(f"{username}:{password}".encode()).decode("ascii")
        self._expected = f"Basic {token}"
        self.clock = clock
        self._contexts: dict[str, _Context] = {}
        self._ids = itertools.count(1)
        self._lock = threading.Lock()

    def handle(
        self, method: str, parts: list[str], query: Mapping[str, str], body: bytes, auth: str
    ) -> Answer:
        if not hmac.compare_digest(auth.encode(), self._expected.encode()):
            return self._unauthorised("/" + "/".join(parts), auth)
        try:
            request = json.loads(body.decode("utf-8")) if body.strip() else {}
        except (ValueError, UnicodeDecodeError) as exc:
            return _error(400, "parsing_exception", f"request body is not JSON: {exc}")
        if not isinstance(request, dict):
            return _error(400, "parsing_exception", "request body must be a JSON object")
        if parts[:1] == ["_search"]:
            if method == "DELETE":
                return self._clear(request, query)
            return self._scroll(request, query)
        index = parts[1]
        if index != INDEX:
            return _error(
                404,
                "index_not_found_exception",
                "no such index",
                **{"resource.type": "index_or_alias", "resource.id": index, "index": index},
            )
        return self._search(request, query)

    def _unauthorised(self, path: str, auth: str) -> Answer:
        reason = f"missing authentication token for REST request [{path}]"
        if auth.startswith("Basic "):
            try:
                user = base64.b64decode(auth[6:], validate=True).decode().partition(":")[0]
            except (ValueError, UnicodeDecodeError, binascii.Error):
                user = "?"
            reason = f"unable to authenticate user [{user}] for REST request [{path}]"
        header = {"WWW-Authenticate": 'Basic realm="security" charset="UTF-8"'}
        answer = _error(401, "security_exception", reason, header=header)
        return answer._replace(headers=header)

    def _search(self, request: Mapping[str, Any], query: Mapping[str, str]) -> Answer:
        try:
            size = int(request.get("size", query.get("size", 10)))
            start = int(request.get("from", query.get("from", 0)))
        except (TypeError, ValueError) as exc:
            return _error(400, "parsing_exception", f"size/from must be numbers: {exc}")
        if not 0 <= size <= MAX_SIZE:
            return _error(
                400, "illegal_argument_exception", f"size must be 0..{MAX_SIZE}, was [{size}]"
            )
        try:
            hits = [
                i
                for i, document in enumerate(self.documents)
                if matches(document, request.get("query") or {"match_all": {}})
            ]
        except QueryError as exc:
            return _error(400, "parsing_exception", str(exc))
        is_sorted = bool(request.get("sort"))
        scroll = query.get("scroll")
        if scroll is None:
            return self._page(hits[start : start + size], len(hits), is_sorted, start, None)
        try:
            keep_alive = _keep_alive_seconds(scroll)
        except ValueError as exc:
            return _error(400, "illegal_argument_exception", str(exc))
        with self._lock:
            self._expire()
            scroll_id = base64.b64encode(f"demo-scroll;{next(self._ids)}".encode()).decode()
            self._contexts[scroll_id] = _Context(
                hits, size, size, keep_alive, self.clock() + keep_alive, is_sorted
            )
        return self._page(hits[:size], len(hits), is_sorted, 0, scroll_id)

    def _scroll(self, request: Mapping[str, Any], query: Mapping[str, str]) -> Answer:
        scroll_id = request.get("scroll_id") or query.get("scroll_id")
        keep = request.get("scroll") or query.get("scroll")
        with self._lock:
            self._expire()
            context = self._contexts.get(str(scroll_id)) if scroll_id else None
            if context is None:
                return self._missing(scroll_id)
            if keep:
                try:
                    context.keep_alive = _keep_alive_seconds(str(keep))
                except ValueError as exc:
                    return _error(400, "illegal_argument_exception", str(exc))
            context.expires = self.clock() + context.keep_alive
            start = context.position
            chosen = context.hits[start : start + context.size]
            context.position += len(chosen)
        return self._page(chosen, len(context.hits), context.sorted, start, str(scroll_id))

    def _missing(self, scroll_id: Any) -> Answer:
        number = _context_number(scroll_id)
        reason = f"No search context found for id [{number}]"
        missing = {"type": "search_context_missing_exception", "reason": reason}
        body = {
            "error": {
                "root_cause": [missing],
                "type": "search_phase_execution_exception",
                "reason": "all shards failed",
                "phase": "query",
                "grouped": True,
                "failed_shards": [{"shard": -1, "index": None, "reason": missing}],
            },
            "status": 404,
        }
        return Answer(404, JSON_TYPE, _json(body))

    def _clear(self, request: Mapping[str, Any], query: Mapping[str, str]) -> Answer:
        ids = request.get("scroll_id") or query.get("scroll_id") or []
        ids = [ids] if isinstance(ids, str) else list(ids)
        with self._lock:
            freed = sum(self._contexts.pop(str(i), None) is not None for i in ids)
        status = 200 if freed else 404
        return Answer(status, JSON_TYPE, _json({"succeeded": True, "num_freed": freed}))

    def _expire(self) -> None:
        now = self.clock()
        for scroll_id in [k for k, c in self._contexts.items() if c.expires <= now]:
            del self._contexts[scroll_id]

    @property
    def open_scrolls(self) -> int:
        with self._lock:
            self._expire()
            return len(self._contexts)

    def _page(
        self, positions: list[int], total: int, is_sorted: bool, start: int, scroll_id: str | None
    ) -> Answer:
        hits = []
        for offset, position in enumerate(positions):
            document = self.documents[position]
            hit: dict[str, Any] = {
                "_index": INDEX_NAME,
                "_type": INDEX,
                "_id": str(document["Vrvirksomhed"]["enhedsNummer"]),
                "_score": None if is_sorted else 1.0,
                "_source": document,
            }
            if is_sorted:
                hit["sort"] = [start + offset]
            hits.append(hit)
        answer: dict[str, Any] = {} if scroll_id is None else {"_scroll_id": scroll_id}
        answer |= {
            "took": TOOK_MS,
            "timed_out": False,
            "_shards": SHARDS,
            "hits": {"total": total, "max_score": None if is_sorted else 1.0, "hits": hits},
        }
        return Answer(200, JSON_TYPE, _json(answer))


def _context_number(scroll_id: Any) -> str:
    try:
        return base64.b64decode(str(scroll_id), validate=True).decode().rsplit(";", 1)[-1]
    except (ValueError, UnicodeDecodeError, binascii.Error):
        return str(scroll_id)
