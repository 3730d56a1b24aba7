"""CVR (Det Centrale Virksomhedsregister, the Danish company register), system-to-system
access: Erhvervsstyrelsen's Elasticsearch at `distribution.virk.dk`, HTTP Basic auth.

- `auth_from_env(env)`: `BasicAuth` from `SOURCES__CVR__USERNAME` / `SOURCES__CVR__PASSWORD`.
- `scroll(client, query, index="virksomhed")`: `POST /cvr-permanent/<index>/_search?scroll=1m`
  then `POST /_search/scroll`, one `CvrPage` per answer: the raw bytes (land them as they
  are), the hits, and the state to persist; `scroll(..., state=saved)` resumes after the
  last landed page (the scroll starts over and skips what was read: see ElasticsearchScroll).
- `parse_hits(raw)`: the hits of a landed answer, for replay without the network.
- `flatten_companies(hits)`: `Vrvirksomhed` hits as `CompanyTables`: one row per company
  with its current values, and long history tables (names, addresses, statuses, industries,
  forms, production units) with `valid_from`/`valid_to` Dates from CVR's
  `gyldigFra`/`gyldigTil` (inclusive last day; null `valid_to` = still valid).
- `company_lines(hits)`: the company rows (`COMPANY_SCHEMA`) as NDJSON bytes, one object per
  line with ISO dates: what a pipeline lands and reads as the parsed form of a scroll page
  (the raw page holds participants, who may be persons; these lines never do).

Privacy: CVR numbers and company data are public, but participants (*deltagere*: owners,
board members, founders, auditors) are often persons. `flatten_companies` never reads
`deltagerRelation`, so no person's name or `enhedsNummer` reaches these tables; c/o names
(`conavn`) and free-text address lines (`fritekst`) are dropped because they often name a
person. The raw pages still hold all of it: they belong in landing/bronze (restricted).
A sole proprietorship's (*enkeltmandsvirksomhed*) name and address usually are its owner's:
classify the tables accordingly downstream. The `deltager` index is deliberately not offered.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any, Literal

import httpx
import polars as pl

from connectors.formats.errors import FormatError
from connectors.http import BasicAuth, HttpClient
from connectors.paging import DEFAULT_MAX_PAGES, ElasticsearchScroll, State, paginate

# The documented endpoint is plain http; pass base_url= for https or a mirror.
CVR_URL = "http://distribution.virk.dk"
Index = Literal["virksomhed", "produktionsenhed"]

_DATETIME = pl.Datetime("us", "UTC")
_PERIOD = {"valid_from": pl.Date, "valid_to": pl.Date, "last_updated": _DATETIME}

COMPANY_SCHEMA: dict[str, pl.DataType] = {
    "cvr": pl.String(),
    "unit_number": pl.Int64(),  # enhedsNummer of the company itself (not of a person)
    "name": pl.String(),
    "status": pl.String(),
    "company_form_code": pl.String(),
    "company_form": pl.String(),
    "company_form_text": pl.String(),
    "industry_code": pl.String(),
    "industry_text": pl.String(),
    "kommune_code": pl.String(),
    "kommune_name": pl.String(),
    "street": pl.String(),
    "house_number": pl.String(),
    "floor": pl.String(),
    "door": pl.String(),
    "postcode": pl.String(),
    "city": pl.String(),
    "address_id": pl.String(),
    "address_text": pl.String(),
    "start_date": pl.Date(),
    "end_date": pl.Date(),
    "production_units": pl.Int64(),
    "advertising_protected": pl.Boolean(),  # reklamebeskyttet: no marketing contact
    "last_updated": _DATETIME,
}
NAME_SCHEMA = {"cvr": pl.String, "name": pl.String, **_PERIOD}
ADDRESS_SCHEMA = {
    "cvr": pl.String,
    **{k: pl.String for k in ("street", "house_number", "floor", "door", "postcode", "city")},
    **{k: pl.String for k in ("kommune_code", "kommune_name", "country", "address_id")},
    "address_text": pl.String,
    **_PERIOD,
}
# kind: "virksomhedsstatus" (NORMAL, UNDER KONKURS, ...) or "status" (coded, with credit info)
STATUS_SCHEMA = {"cvr": pl.String, "kind": pl.String, "code": pl.String, "status": pl.String}
STATUS_SCHEMA |= _PERIOD
# kind: "main" (hovedbranche) or "secondary1".."secondary3" (bibranche1-3); DB07 codes
INDUSTRY_SCHEMA = {"cvr": pl.String, "kind": pl.String, "industry_code": pl.String}
INDUSTRY_SCHEMA |= {"industry_text": pl.String, **_PERIOD}
FORM_SCHEMA = {"cvr": pl.String, "company_form_code": pl.String, "company_form": pl.String}
FORM_SCHEMA |= {"company_form_text": pl.String, **_PERIOD}
PRODUCTION_UNIT_SCHEMA = {"cvr": pl.String, "p_number": pl.String, **_PERIOD}

_INDUSTRY_KINDS = {
    "hovedbranche": "main",
    "bibranche1": "secondary1",
    "bibranche2": "secondary2",
    "bibranche3": "secondary3",
}


# -- fetching


def auth_from_env(env: Mapping[str, str], source: str = "CVR") -> BasicAuth:
    """Basic auth from `SOURCES__<SOURCE>__USERNAME` and `..._PASSWORD` (never from YAML)."""
    prefix = f"SOURCES__{source.upper()}__"
    missing = [f"{prefix}{k}" for k in ("USERNAME", "PASSWORD") if not env.get(f"{prefix}{k}")]
    if missing:
        raise ValueError(
            f"CVR credentials missing: set {' and '.join(missing)} in the environment "
            "(Erhvervsstyrelsen issues system-to-system users on request)"
        )
    return BasicAuth(env[f"{prefix}USERNAME"], env[f"{prefix}PASSWORD"])


def search_body(query: Mapping[str, Any] | None = None, *, size: int = 1000) -> dict[str, Any]:
    """The first request's body. Sorted by `_doc`: the cheapest order for a scroll, and a
    stable one, which restarting a scroll and skipping what was read relies on."""
    if not 1 <= size <= 3000:  # the most hits per page CVR's guide allows
        raise ValueError(f"size must be 1..3000, not {size}")
    return {"query": dict(query or {"match_all": {}}), "size": size, "sort": ["_doc"]}


@dataclass(frozen=True, eq=False)
class CvrPage:
    """One scroll answer. Land `raw`, then persist `state` (None: the scroll is done)."""

    number: int
    raw: bytes = field(repr=False)
    media_type: str
    hits: list[dict[str, Any]] = field(repr=False)
    state: State | None
    request: dict[str, Any]  # index and first-request body, for the landing manifest


def scroll(
    client: HttpClient,
    query: Mapping[str, Any] | None = None,
    *,
    index: Index = "virksomhed",
    size: int = 1000,
    state: Mapping[str, Any] | None = None,
    base_url: str = CVR_URL,
    keep_alive: str = "1m",
    max_pages: int = DEFAULT_MAX_PAGES,
    max_restarts: int = 5,
) -> Iterator[CvrPage]:
    """Every hit of `query` in `index`, one page per answer (see the module doc).

    The client carries the auth (`HttpClient(auth=auth_from_env(os.environ))`). The
    scroll contexts are cleared when the iteration ends, also when it is abandoned.
    """
    if index not in ("virksomhed", "produktionsenhed"):
        raise ValueError(f"index must be 'virksomhed' or 'produktionsenhed', not {index!r}")
    body = search_body(query, size=size)
    url = f"{base_url.rstrip('/')}/cvr-permanent/{index}/_search"
    first = client.build_request("POST", url, json=body)
    strategy = ElasticsearchScroll(keep_alive, max_pages=max_pages, max_restarts=max_restarts)
    # A plain function returning a generator: bad arguments fail here, not at first next().
    return _pages(client, first, strategy, state, {"index": index, "body": body})


def _pages(
    client: HttpClient,
    first: httpx.Request,
    strategy: ElasticsearchScroll,
    state: Mapping[str, Any] | None,
    described: dict[str, Any],
) -> Iterator[CvrPage]:
    for page in paginate(client, first, strategy, state=state):
        media_type = page.response.headers.get("Content-Type", "").split(";")[0].strip()
        yield CvrPage(
            number=page.number,
            raw=page.response.content,
            media_type=media_type.lower(),
            hits=page.records,
            state=page.state,
            request=described,
        )


def parse_hits(raw: bytes, *, source: str = "CVR answer") -> list[dict[str, Any]]:
    """The hits of a search or scroll answer as landed (`hits.hits`)."""
    try:
        hits = json.loads(raw)["hits"]["hits"]
    except (ValueError, KeyError, TypeError) as exc:
        raise FormatError(
            source,
            f"not an Elasticsearch search answer ({type(exc).__name__}: {exc})",
            "Check that the file is a CVR _search or _search/scroll answer",
        ) from exc
    if not isinstance(hits, list):
        raise FormatError(source, "hits.hits is not a list", "Check the file")
    return hits


# -- flattening


@dataclass(frozen=True)
class CompanyTables:
    """Company rows (current values) and their histories, keyed by `cvr` (8-digit string)."""

    companies: pl.DataFrame
    names: pl.DataFrame
    addresses: pl.DataFrame
    statuses: pl.DataFrame
    industries: pl.DataFrame
    forms: pl.DataFrame
    production_units: pl.DataFrame

    def as_dict(self) -> dict[str, pl.DataFrame]:
        return {name: getattr(self, name) for name in self.__dataclass_fields__}


def flatten_companies(
    hits: Iterable[Mapping[str, Any]], *, source: str = "CVR virksomhed"
) -> CompanyTables:
    """`Vrvirksomhed` hits (as in `CvrPage.hits` or `parse_hits`) as `CompanyTables`."""
    rows: dict[str, list[dict[str, Any]]] = {
        k: [] for k in CompanyTables.__dataclass_fields__ if k != "companies"
    }
    companies: list[dict[str, Any]] = []
    for position, hit in enumerate(hits):
        company = _company_of(hit, position, source)
        cvr = _cvr(company.get("cvrNummer"), position, source)
        companies.append(_current(cvr, company))
        rows["names"] += [
            {"cvr": cvr, "name": n.get("navn"), **_period(n)} for n in _items(company, "navne")
        ]
        rows["addresses"] += [
            {"cvr": cvr, **_address(a), **_period(a)}
            for a in _items(company, "beliggenhedsadresse")
        ]
        rows["statuses"] += [
            {"cvr": cvr, "kind": "virksomhedsstatus", "code": None, "status": s.get("status")}
            | _period(s)
            for s in _items(company, "virksomhedsstatus")
        ]
        rows["statuses"] += [
            {"cvr": cvr, "kind": "status", "code": _text(s.get("statuskode"))}
            | {"status": s.get("statustekst"), **_period(s)}
            for s in _items(company, "status")
        ]
        for key, kind in _INDUSTRY_KINDS.items():
            rows["industries"] += [
                {"cvr": cvr, "kind": kind, **_industry(b), **_period(b)}
                for b in _items(company, key)
            ]
        rows["forms"] += [
            {"cvr": cvr, **_form(f), **_period(f)} for f in _items(company, "virksomhedsform")
        ]
        rows["production_units"] += [
            {"cvr": cvr, "p_number": _text(p.get("pNummer")), **_period(p)}
            for p in _items(company, "penheder")
        ]
    schemas = {
        "names": NAME_SCHEMA,
        "addresses": ADDRESS_SCHEMA,
        "statuses": STATUS_SCHEMA,
        "industries": INDUSTRY_SCHEMA,
        "forms": FORM_SCHEMA,
        "production_units": PRODUCTION_UNIT_SCHEMA,
    }
    return CompanyTables(
        companies=pl.DataFrame(companies, schema=COMPANY_SCHEMA),
        **{
            name: pl.DataFrame(rows[name], schema=schema).sort(["cvr", "valid_from"])
            for name, schema in schemas.items()
        },
    )


def company_lines(hits: Iterable[Mapping[str, Any]], *, source: str = "CVR virksomhed") -> bytes:
    """`flatten_companies(hits).companies` as NDJSON: `COMPANY_SCHEMA`'s keys in order, dates
    as `YYYY-MM-DD`, timestamps as UTC ISO 8601 (`...Z`). Same hits, same bytes."""
    lines = []
    for row in flatten_companies(hits, source=source).companies.iter_rows(named=True):
        lines.append(json.dumps({k: _plain(v) for k, v in row.items()}, ensure_ascii=False))
    return "".join(f"{line}\n" for line in lines).encode("utf-8")


def _plain(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat().replace("+00:00", "Z")
    if isinstance(value, date):
        return value.isoformat()
    return value


def _company_of(hit: Mapping[str, Any], position: int, source: str) -> Mapping[str, Any]:
    company = (hit.get("_source") or {}).get("Vrvirksomhed") if isinstance(hit, Mapping) else None
    if not isinstance(company, Mapping):
        found = sorted(hit.get("_source") or {}) if isinstance(hit, Mapping) else type(hit)
        raise FormatError(
            source,
            f"hit {position} has no _source.Vrvirksomhed (found {found})",
            "Pass hits from the cvr-permanent/virksomhed index",
        )
    return company


def _cvr(value: Any, position: int, source: str) -> str:
    text = _text(value)
    if text is None or not text.isdigit() or len(text) != 8:
        raise FormatError(source, f"hit {position} has no 8-digit cvrNummer", "Check the hit")
    return text


def _current(cvr: str, company: Mapping[str, Any]) -> dict[str, Any]:
    """Current values: CVR's own `virksomhedMetadata.nyeste*`, else the newest period."""
    meta = company.get("virksomhedMetadata") or {}
    name = meta.get("nyesteNavn") or _newest(_items(company, "navne"))
    form = meta.get("nyesteVirksomhedsform") or _newest(_items(company, "virksomhedsform"))
    address = meta.get("nyesteBeliggenhedsadresse") or _newest(
        _items(company, "beliggenhedsadresse")
    )
    industry = meta.get("nyesteHovedbranche") or _newest(_items(company, "hovedbranche"))
    status = meta.get("sammensatStatus") or (
        _newest(_items(company, "virksomhedsstatus")) or {}
    ).get("status")
    # livsforloeb: the periods the company existed; the last one's end is its closing date
    life = [item.get("periode") or {} for item in _items(company, "livsforloeb")]
    life.sort(key=lambda period: period.get("gyldigFra") or "")
    start = meta.get("stiftelsesDato") or (life[0].get("gyldigFra") if life else None)
    end = life[-1].get("gyldigTil") if life else None
    units = meta.get("antalPenheder")
    address_fields = _address(address or {})
    del address_fields["country"]
    return {
        "cvr": cvr,
        "unit_number": company.get("enhedsNummer"),
        "name": (name or {}).get("navn"),
        "status": status,
        **_form(form or {}),
        **_industry(industry or {}),
        **address_fields,
        "start_date": _date(start),
        "end_date": _date(end),
        "production_units": units if units is not None else len(_items(company, "penheder")),
        "advertising_protected": company.get("reklamebeskyttet"),
        "last_updated": _datetime(company.get("sidstOpdateret")),
    }


def _items(company: Mapping[str, Any], key: str) -> list[Mapping[str, Any]]:
    return [item for item in company.get(key) or [] if isinstance(item, Mapping)]


def _from_key(item: Mapping[str, Any]) -> str:
    return (item.get("periode") or {}).get("gyldigFra") or ""


def _newest(items: list[Mapping[str, Any]]) -> Mapping[str, Any] | None:
    return max(items, key=_from_key) if items else None


def _period(item: Mapping[str, Any]) -> dict[str, Any]:
    period = item.get("periode") or {}
    return {
        "valid_from": _date(period.get("gyldigFra")),
        "valid_to": _date(period.get("gyldigTil")),
        "last_updated": _datetime(item.get("sidstOpdateret")),
    }


def _form(form: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "company_form_code": _text(form.get("virksomhedsformkode")),
        "company_form": form.get("kortBeskrivelse"),
        "company_form_text": form.get("langBeskrivelse"),
    }


def _industry(industry: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "industry_code": _text(industry.get("branchekode")),
        "industry_text": industry.get("branchetekst"),
    }


def _address(address: Mapping[str, Any]) -> dict[str, Any]:
    """An address without `conavn` (c/o name) and `fritekst`: both often name a person."""
    kommune = address.get("kommune") or {}
    code = _text(kommune.get("kommuneKode"))
    number = _house_number(address)
    fields = {
        "street": address.get("vejnavn"),
        "house_number": number,
        "floor": address.get("etage"),
        "door": address.get("sidedoer"),
        "postcode": _text(address.get("postnummer")),
        "city": address.get("postdistrikt") or address.get("bynavn"),
        "kommune_code": code.zfill(4) if code else None,  # kommunekode: 4 digits, 0-padded
        "kommune_name": kommune.get("kommuneNavn"),
        "country": address.get("landekode"),
        "address_id": address.get("adresseId"),
    }
    fields["address_text"] = _address_text(fields, address.get("postboks"))
    return fields


def _house_number(address: Mapping[str, Any]) -> str | None:
    first = f"{_text(address.get('husnummerFra')) or ''}{address.get('bogstavFra') or ''}"
    last = f"{_text(address.get('husnummerTil')) or ''}{address.get('bogstavTil') or ''}"
    if first and last and last != first:
        return f"{first}-{last}"
    return first or None


def _address_text(fields: Mapping[str, Any], postboks: Any) -> str | None:
    """The address as Danes write it: `Pilestræde 43, 3. tv, 1112 København K`."""
    line = " ".join(str(p) for p in (fields["street"], fields["house_number"]) if p)
    if fields["floor"] or fields["door"]:
        floor = f"{fields['floor']}." if fields["floor"] else ""
        line += ", " + " ".join(p for p in (floor, fields["door"]) if p)
    if postboks and not line:
        line = f"Postboks {postboks}"
    town = " ".join(str(p) for p in (fields["postcode"], fields["city"]) if p)
    text = ", ".join(p for p in (line, town) if p)
    return text or None


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


def _date(value: Any) -> date | None:
    return date.fromisoformat(str(value)[:10]) if value else None


def _datetime(value: Any) -> datetime | None:
    """CVR timestamps carry an offset (`2017-04-10T09:01:06.000+02:00`); stored as UTC."""
    if not value:
        return None
    parsed = datetime.fromisoformat(str(value))
    return parsed.astimezone(UTC) if parsed.tzinfo else parsed.replace(tzinfo=UTC)
