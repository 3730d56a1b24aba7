"""Statistics Norway (and other PxWeb) tables as long polars tables.

- v0 (PxWebApi 1, `https://data.ssb.no/api/v0`): `query()` POSTs
  `{"query": [...], "response": {"format": "json-stat2"}}` to `{base}/{lang}/table/{id}`.
- v2 (PxWebApi 2, `https://data.ssb.no/api/pxwebapi/v2`): `config()` reads `/config`,
  `metadata()` reads `/tables/{id}/metadata`, `data()` GETs `/tables/{id}/data` with
  `valueCodes[<dim>]=a,b` and `outputFormat=json-stat2` (POSTs the selection when the URL
  would be too long).
- `plan()` splits a selection so that each request asks for at most `max_cells` cells;
  `fetch_all()` runs that plan through an `HttpClient` whose rate limit comes from `/config`
  and concatenates the long tables.

Selections are explicit code lists (`{"Region": ["0301", "1103"], "Tid": ["2024"]}`);
PxWeb wildcards (`*`, `top(n)`) cannot be planned: expand them from `metadata()` first.
Each answer must hold exactly the codes asked for by `item` (a revised table that lost a
code is refused, not loaded short); `agg:`/`vs:` selections answer in their own codes.
Long tables come from `connectors.jsonstat.to_long` (status symbols → null value).
"""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import quote

import httpx
import polars as pl

from connectors.http import HttpClient, HttpSettings, RateLimit, RateLimiter
from connectors.jsonstat import dimensions, to_long

DEFAULT_MAX_CELLS = 800_000
DEFAULT_MAX_CALLS = 30
DEFAULT_TIME_WINDOW = 60.0

Selections = Mapping[str, Sequence[str]]


class PxWebError(ValueError):
    """A request the PxWeb API cannot answer as asked, or an answer we cannot use."""


class PlanError(PxWebError):
    """No split keeps every request under the cell limit."""


@dataclass(frozen=True)
class PxConfig:
    """The service's limits (v2 `/config`: maxDataCells, maxCallsPerTimeWindow, timeWindow)."""

    max_cells: int = DEFAULT_MAX_CELLS
    max_calls: int = DEFAULT_MAX_CALLS
    time_window: float = DEFAULT_TIME_WINDOW

    @property
    def rate_limit(self) -> RateLimit:
        return RateLimit(self.max_calls, self.time_window)


@dataclass(frozen=True)
class PxResult:
    raw: bytes  # the answer's bytes as received, for the raw layer
    table: pl.DataFrame  # long: <dim>, <dim>_label, value, status


def _json(response: httpx.Response, what: str) -> Any:
    try:
        return response.json()
    except ValueError:
        raise PxWebError(f"{what}: the answer is not JSON ({response.text[:120]!r})") from None


def _result(response: httpx.Response, what: str) -> PxResult:
    return PxResult(response.content, to_long(_json(response, what)))


# -- v0 (PxWebApi 1)
def query_body(selections: Selections, filters: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The v0 POST body; `filters` gives a dimension's filter (default "item")."""
    filters = filters or {}
    unknown = set(filters) - set(selections)
    if unknown:
        raise PxWebError(f"filters for dimensions not selected: {sorted(unknown)}")
    return {
        "query": [
            {"code": code, "selection": {"filter": filters.get(code, "item"), "values": list(v)}}
            for code, v in selections.items()
        ],
        "response": {"format": "json-stat2"},
    }


def query(
    client: HttpClient,
    base: str,
    table: str,
    selections: Selections,
    lang: str = "no",
    *,
    filters: Mapping[str, str] | None = None,
) -> PxResult:
    """POST a v0 query for json-stat2; `base` like `https://data.ssb.no/api/v0`."""
    url = f"{base.rstrip('/')}/{quote(lang)}/table/{quote(table)}"
    response = client.post(url, json=query_body(selections, filters))
    return _result(response, f"PxWeb v0 table {table}")


# -- v2 (PxWebApi 2)
def config(client: HttpClient, base: str) -> PxConfig:
    """The limits from v2 `/config`, with SSB's documented defaults for absent fields."""
    payload = _json(client.get(f"{base.rstrip('/')}/config"), "PxWeb /config")
    if not isinstance(payload, dict):
        raise PxWebError("PxWeb /config: the answer is not a JSON object")

    def number(key: str, default: float) -> float:
        value = payload.get(key)
        if value is None:
            return default
        if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
            raise PxWebError(f"PxWeb /config: {key} = {value!r} is not a positive number")
        return value

    return PxConfig(
        max_cells=int(number("maxDataCells", DEFAULT_MAX_CELLS)),
        max_calls=int(number("maxCallsPerTimeWindow", DEFAULT_MAX_CALLS)),
        time_window=float(number("timeWindow", DEFAULT_TIME_WINDOW)),
    )


def metadata(client: HttpClient, base: str, table: str, lang: str = "no") -> dict[str, Any]:
    """The v2 metadata document (json-stat2 with `value: []`); see `jsonstat.dimensions`."""
    url = f"{base.rstrip('/')}/tables/{quote(table)}/metadata"
    params = {"lang": lang, "outputFormat": "json-stat2"}
    doc = _json(client.get(url, params=params), f"PxWeb v2 metadata {table}")
    dimensions(doc)  # fails early on a document we could not plan with
    return doc


# PxWebApi 2 answers GETs of up to 2,100 characters; a longer selection (hundreds of
# kommune codes) goes in a POST body, which the same endpoint reads as the same selection.
MAX_GET_URL = 2_100


def data(
    client: HttpClient, base: str, table: str, selections: Selections, lang: str = "no"
) -> PxResult:
    """v2 data as json-stat2 for explicit value codes per dimension: a GET with
    `valueCodes[<dim>]=a,b`, or a POST of `{"selection": [...]}` when that URL would be
    longer than MAX_GET_URL or a code holds a comma."""
    url = f"{base.rstrip('/')}/tables/{quote(table)}/data"
    params: dict[str, str] = {"lang": lang, "outputFormat": "json-stat2"}
    codes = {f"valueCodes[{code}]": ",".join(values) for code, values in selections.items()}
    commas = any("," in v for values in selections.values() for v in values)
    what = f"PxWeb v2 table {table}"
    if not commas and len(str(client.build_request("GET", url, params=params | codes).url)) <= (
        MAX_GET_URL
    ):
        return _result(client.get(url, params=params | codes), what)
    body = {
        "selection": [
            {"variableCode": code, "valueCodes": list(values)}
            for code, values in selections.items()
        ]
    }
    return _result(client.post(url, params=params, json=body), what)


def _check_answered(
    answer: pl.DataFrame, selection: Selections, filters: Mapping[str, str], table: str
) -> None:
    """Each value code asked for by `item` is in the answer, and no other: a piece that
    leaves cells out would otherwise pass as a smaller table. Other filters (`agg:`, `vs:`)
    answer in codes of their own, so they cannot be compared."""
    for code, values in selection.items():
        if filters.get(code, "item") != "item" or code not in answer.columns:
            continue
        got = set(answer[code].unique().to_list())
        missing = [v for v in values if v not in got]
        extra = sorted(got - set(values), key=str)
        if missing or extra:
            said = "; ".join(
                part
                for part in (
                    f"missing {_few(missing)}" if missing else "",
                    f"not asked for {_few(extra)}" if extra else "",
                )
                if part
            )
            raise PxWebError(
                f"table {table}: the answer for {code} does not match the request ({said}). "
                "Check the codes against metadata(); the table may have been revised"
            )


def _few(codes: Sequence[Any]) -> str:
    shown = ", ".join(map(str, codes[:5]))
    return f"{shown} and {len(codes) - 5} more" if len(codes) > 5 else shown


# -- planning
def cells(selections: Selections) -> int:
    return math.prod(len(v) for v in selections.values())


def _chunks(values: Sequence[str], size: int) -> list[list[str]]:
    """Contiguous, near-equal parts of at most `size` values each."""
    parts = math.ceil(len(values) / size)
    base, extra = divmod(len(values), parts)
    out, start = [], 0
    for part in range(parts):
        end = start + base + (1 if part < extra else 0)
        out.append(list(values[start:end]))
        start = end
    return out


def plan(
    selections: Selections, max_cells: int, *, pinned: Collection[str] = ()
) -> list[dict[str, list[str]]]:
    """Requests whose cell products are each ≤ max_cells and together cover `selections`
    exactly once. Splits the largest unpinned dimension first, then the next as needed;
    a `pinned` dimension (e.g. time, to keep a series in one answer) is never split.
    Every request keeps the caller's dimension order and value order.
    """
    if max_cells < 1:
        raise PlanError(f"max_cells must be >= 1, not {max_cells}")
    unknown = set(pinned) - set(selections)
    if unknown:
        raise PlanError(f"pinned dimensions not in the selection: {sorted(unknown)}")
    for code, values in selections.items():
        if len(set(values)) != len(values):
            raise PlanError(f"dimension {code!r} lists a value twice")
    width = {code: len(v) for code, v in selections.items()}
    if math.prod(width.values()) <= max_cells:
        return [{code: list(v) for code, v in selections.items()}]
    floor = math.prod(width[c] for c in pinned) if pinned else 1
    if floor > max_cells:
        raise PlanError(
            f"the pinned dimensions {sorted(pinned)} alone make {floor} cells, over the "
            f"limit of {max_cells}: unpin one or select fewer values"
        )
    splittable = sorted(
        (c for c in selections if c not in pinned), key=lambda c: width[c], reverse=True
    )
    for code in splittable:
        others = math.prod(w for c, w in width.items() if c != code)
        width[code] = max(1, min(width[code], max_cells // max(others, 1)))
        if math.prod(width.values()) <= max_cells:
            break
    parts = [_chunks(list(v), width[c]) if v else [[]] for c, v in selections.items()]
    requests: list[dict[str, list[str]]] = [{}]
    for code, chunks in zip(selections, parts, strict=True):
        requests = [{**r, code: chunk} for r in requests for chunk in chunks]
    return requests


# -- running a plan
def fetch_all(
    base: str,
    table: str,
    selections: Selections,
    *,
    api: Literal["v0", "v2"] = "v2",
    lang: str = "no",
    pinned: Collection[str] = (),
    settings: HttpSettings | None = None,
    limits: PxConfig | None = None,
    filters: Mapping[str, str] | None = None,
    **client_kwargs: Any,
) -> tuple[pl.DataFrame, PxConfig, list[dict[str, list[str]]]]:
    """Fetch a whole selection in planned requests: (long table, limits used, plan).

    v2 reads the limits from `{base}/config` unless `limits` is given; v0 has no `/config`,
    so it uses `limits` or SSB's 800,000 cells / 30 calls per 60 s. Every request, the
    `/config` call included, goes through one `HttpClient` paced by those limits.
    `client_kwargs` go to `HttpClient` (e.g. `transport=`, `sleep=`).
    """
    settings = settings or HttpSettings()
    # One client, one limiter: the /config call counts in the same window as the data
    # calls; the limiter starts at SSB's documented pace and takes /config's once read.
    first = limits.rate_limit if limits else settings.rate_limit or PxConfig().rate_limit
    limiter = RateLimiter(first.requests, first.per_seconds)
    frames: list[pl.DataFrame] = []
    with HttpClient(settings, limiter=limiter, **client_kwargs) as client:
        if limits is None and api == "v2":
            limits = config(client, base)
            limiter.limit = limits.rate_limit
        limits = limits or PxConfig()
        requests = plan(selections, limits.max_cells, pinned=pinned)
        for selection in requests:
            if api == "v2":
                result = data(client, base, table, selection, lang)
            else:
                result = query(client, base, table, selection, lang, filters=filters)
            _check_answered(result.table, selection, filters or {}, table)
            frames.append(result.table)
    combined = pl.concat(frames, how="vertical") if frames else pl.DataFrame()
    keys = [
        c for c in combined.columns if c not in ("value", "status") and not c.endswith("_label")
    ]
    if combined.height and combined.select(keys).is_duplicated().any():
        raise PxWebError(f"table {table}: the answers overlap (duplicate cells)")
    return combined, limits, requests
