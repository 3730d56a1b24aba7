"""Statistics Denmark StatBank (`api.statbank.dk/v1`): table metadata and data as a long table.

- `table_info(client, table, lang="da")`: `POST {base}/tableinfo` -> `TableInfo` (variables,
  their values with labels, which one is time), with the raw bytes for landing.
- `fetch(client, table, variables, lang="da", fmt="JSONSTAT" | "CSV")`: `POST {base}/data`
  -> `Extract`: the raw bytes, their media type, the POST body (for the landing manifest) and
  a LONG polars table: one row per cell, one String column per variable code plus
  `<code>_text` labels, `period_start`/`period_end` Dates from the time code, `value`
  Float64 (null for missing/confidential markers) and `status` (the marker, else null).
- `parse_jsonstat` / `parse_csv` / `parse_period`: the same parsing without the network.

What the real service does (see shared/fixtures/real/dst): the time variable is `Tid` in
tableinfo and JSON-stat but `TID` in CSV headers and in requests, so columns are named by
the code *as requested* (matched case-insensitively), else as the format names them.
JSON-stat is version 1.x (`{"dataset": ...}`) with an extra one-value `ContentsCode`
dimension that CSV does not have; it is dropped unless requested or holding several values.
CSV with the default value presentation holds *labels* ("Total"), not codes, behind a
UTF-8 BOM, CRLF and `;`: codes are recovered from the request (one selected value, or a
label that is a code) or from a `TableInfo` in the same language (`info=`).

All requests go through the shared `HttpClient` (retries, rate limit, User-Agent); bodies
are UTF-8 JSON so codes like `OVERTRÆD` travel as they are.
"""

from __future__ import annotations

import csv
import io
import itertools
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any, Literal

import httpx
import polars as pl

from connectors.formats.errors import FormatError
from connectors.http import HttpClient, HttpError
from connectors.jsonstat import MISSING_SYMBOLS, JsonStatError, cell_statuses, cell_values

STATBANK_URL = "https://api.statbank.dk/v1"

# Cells StatBank (and PX tables generally) write instead of a number: not available /
# confidential / not applicable. The value becomes null, the marker goes to `status`.
MISSING_MARKERS = frozenset({"..", "...", "....", ":", "-", "x", "X", ""})

_FORMATS = {"JSONSTAT": "jsonstat", "CSV": "csv"}


class StatbankError(Exception):
    """StatBank refused a request; carries the service's own message when it gave one."""

    def __init__(self, message: str, *, code: str | None = None, status: int | None = None):
        self.message = message
        self.code = code
        self.status = status
        super().__init__(message)


@dataclass(frozen=True)
class Value:
    id: str
    text: str


@dataclass(frozen=True)
class Variable:
    id: str
    text: str
    values: tuple[Value, ...]
    time: bool = False
    elimination: bool = False

    def label_of(self, code: str) -> str | None:
        return next((v.text for v in self.values if v.id == code), None)


@dataclass(frozen=True)
class TableInfo:
    id: str
    text: str
    unit: str | None
    updated: datetime | None
    variables: tuple[Variable, ...]
    description: str | None = None
    suppressed_value: str | None = None  # what StatBank shows for suppressed cells
    lang: str = "da"
    raw: bytes = field(default=b"", repr=False, compare=False)

    def variable(self, code: str) -> Variable:
        """The variable with this code, case-insensitively (`TID` finds `Tid`)."""
        for variable in self.variables:
            if variable.id.casefold() == code.casefold():
                return variable
        known = ", ".join(v.id for v in self.variables)
        raise KeyError(f"{self.id} has no variable {code!r} (it has {known})")

    @property
    def time_variable(self) -> Variable | None:
        return next((v for v in self.variables if v.time), None)


@dataclass(frozen=True, eq=False)
class Extract:
    raw: bytes = field(repr=False)
    media_type: str
    request: dict[str, Any]
    table: pl.DataFrame


# -- requests


def _post(client: HttpClient, url: str, body: dict[str, Any], what: str) -> Any:
    content = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    headers = {"Content-Type": "application/json; charset=utf-8"}
    try:
        return client.request("POST", url, content=content, headers=headers)
    except HttpError as exc:
        if exc.status is None or exc.transient:
            raise
        message, code = _service_message(exc.reason)
        raise StatbankError(
            f"StatBank refused {what}: {message} (HTTP {exc.status} from {exc.url})",
            code=code,
            status=exc.status,
        ) from exc


def _service_message(reason: str) -> tuple[str, str | None]:
    """The service's message from the first line of an error body, as HttpError keeps it."""
    start = reason.find("{")
    if start >= 0:
        try:
            payload = json.loads(reason[start:])
        except ValueError:
            payload = None
        if isinstance(payload, dict):
            message = payload.get("message") or payload.get("Message") or payload.get("error")
            code = payload.get("errorTypeCode")
            if message:
                return str(message), str(code) if code else None
    return reason, None


def table_info(
    client: HttpClient, table: str, lang: str = "da", *, base_url: str = STATBANK_URL
) -> TableInfo:
    """`POST {base_url}/tableinfo` with `{"table", "format": "JSON", "lang"}`."""
    body = {"table": table, "format": "JSON", "lang": lang}
    response = _post(client, f"{base_url.rstrip('/')}/tableinfo", body, f"tableinfo {table}")
    return parse_table_info(response.content, lang=lang)


def parse_table_info(raw: bytes, *, lang: str = "da") -> TableInfo:
    source = "StatBank tableinfo"
    try:
        payload = json.loads(raw.decode("utf-8-sig"))
        variables = tuple(
            Variable(
                id=str(v["id"]),
                text=str(v.get("text", "")),
                values=tuple(
                    Value(str(x["id"]), str(x.get("text", ""))) for x in v.get("values", [])
                ),
                time=bool(v.get("time", False)),
                elimination=bool(v.get("elimination", False)),
            )
            for v in payload["variables"]
        )
        updated = payload.get("updated")
        return TableInfo(
            id=str(payload["id"]),
            text=str(payload.get("text", "")),
            unit=payload.get("unit"),
            updated=datetime.fromisoformat(updated) if updated else None,
            variables=variables,
            description=payload.get("description"),
            suppressed_value=payload.get("suppressedDataValue"),
            lang=lang,
            raw=raw,
        )
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise FormatError(
            source,
            f"not a tableinfo answer ({type(exc).__name__}: {exc})",
            "Check the table id and that the request asked for format JSON",
        ) from exc


def data_request(
    table: str,
    variables: Mapping[str, Sequence[str]],
    *,
    lang: str = "da",
    fmt: Literal["JSONSTAT", "CSV"] = "JSONSTAT",
) -> dict[str, Any]:
    """The POST body for `/data`, as the cassettes record it (format in lower case)."""
    try:
        wire = _FORMATS[fmt.upper()]
    except KeyError:
        raise ValueError(f"fmt must be 'JSONSTAT' or 'CSV', not {fmt!r}") from None
    return {
        "table": table,
        "lang": lang,
        "format": wire,
        "valuePresentation": "Default",
        "variables": [
            {"code": code, "values": [str(v) for v in values]} for code, values in variables.items()
        ],
    }


def fetch_raw(
    client: HttpClient, body: dict[str, Any], *, base_url: str = STATBANK_URL
) -> httpx.Response:
    """`POST {base_url}/data` with a `data_request` body; the answer as received, for
    landing it before anything parses it. Raises StatbankError with the service's message."""
    return _post(client, f"{base_url.rstrip('/')}/data", body, f"data for {body['table']}")


def fetch(
    client: HttpClient,
    table: str,
    variables: Mapping[str, Sequence[str]],
    *,
    lang: str = "da",
    fmt: Literal["JSONSTAT", "CSV"] = "JSONSTAT",
    info: TableInfo | None = None,
    base_url: str = STATBANK_URL,
) -> Extract:
    """`POST {base_url}/data` and the answer as a long table (see the module doc).

    `info` (a `TableInfo` in the same `lang`) lets CSV labels be turned back into codes when
    a variable has several selected values.
    """
    body = data_request(table, variables, lang=lang, fmt=fmt)
    response = fetch_raw(client, body, base_url=base_url)
    raw = response.content
    media_type = response.headers.get("Content-Type", "").split(";")[0].strip().lower()
    if body["format"] == "csv":
        frame = parse_csv(raw, table=table, variables=variables, info=info)
    else:
        frame = parse_jsonstat(raw, table=table, variables=variables)
    return Extract(raw=raw, media_type=media_type, request=body, table=frame)


# -- time codes

_PERIOD = re.compile(r"(?P<year>\d{4})(?:(?P<kind>[KHM])(?P<n>\d{1,2}))?")
# Several years as one period (`2007:2009`, e.g. the three-year cohorts of RECIDIV1-12).
_YEARS = re.compile(r"(?P<first>\d{4}):(?P<last>\d{4})")


def parse_period(code: str, *, source: str = "StatBank") -> tuple[date, date]:
    """First and last day of a StatBank time code: `2023`, `2023H1`, `2023K1`, `2023M01`,
    or years `2007:2009`."""
    match = _PERIOD.fullmatch(code.strip())
    years = _YEARS.fullmatch(code.strip())
    problem = None
    if years is not None and int(years["first"]) <= int(years["last"]):
        return date(int(years["first"]), 1, 1), date(int(years["last"]), 12, 31)
    if years is not None:
        problem = "the first year is after the last"
    elif match is None:
        problem = "unknown format"
    else:
        year = int(match["year"])
        kind, n = match["kind"], int(match["n"] or 0)
        if kind is None:
            return date(year, 1, 1), date(year, 12, 31)
        months, count = {"H": (6, 2), "K": (3, 4), "M": (1, 12)}[kind]
        if kind == "M" and len(match["n"]) != 2:
            problem = "months have two digits"
        elif not 1 <= n <= count:
            problem = f"{kind}{n} is out of range 1-{count}"
        else:
            first_month = (n - 1) * months + 1
            start = date(year, first_month, 1)
            after = first_month + months
            end = (date(year + 1, 1, 1) if after > 12 else date(year, after, 1)) - timedelta(1)
            return start, end
    raise FormatError(
        source,
        f"unknown time code {code!r} ({problem})",
        "Expected YYYY, YYYYHn (half-year), YYYYKn (quarter), YYYYMmm (month) or YYYY:YYYY (years)",
    )


# -- long tables


def _column_names(names: Sequence[str], variables: Mapping[str, Sequence[str]]) -> list[str]:
    requested = {code.casefold(): code for code in variables}
    return [requested.get(name.casefold(), name) for name in names]


def _finish(
    columns: dict[str, list[Any]],
    variable_names: list[str],
    time_name: str | None,
    values: list[float | None],
    status: list[str | None],
    source: str,
) -> pl.DataFrame:
    n = len(values)
    data: dict[str, pl.Series] = {}
    for name in variable_names:
        data[name] = pl.Series(name, columns[name], dtype=pl.String)
        if f"{name}_text" in columns:
            data[f"{name}_text"] = pl.Series(f"{name}_text", columns[f"{name}_text"], pl.String)
    starts: list[date | None] = [None] * n
    ends: list[date | None] = [None] * n
    if time_name is not None:
        cache: dict[str, tuple[date, date]] = {}
        for i, code in enumerate(columns[time_name]):
            if code not in cache:
                cache[code] = parse_period(code, source=source)
            starts[i], ends[i] = cache[code]
    data["period_start"] = pl.Series("period_start", starts, dtype=pl.Date)
    data["period_end"] = pl.Series("period_end", ends, dtype=pl.Date)
    data["value"] = pl.Series("value", values, dtype=pl.Float64)
    data["status"] = pl.Series("status", status, dtype=pl.String)
    return pl.DataFrame(list(data.values()))


def parse_jsonstat(
    raw: bytes, *, table: str, variables: Mapping[str, Sequence[str]] | None = None
) -> pl.DataFrame:
    """A JSON-stat dataset (1.x `{"dataset": ...}` as StatBank sends, or 2.0) as a long table."""
    source = f"StatBank {table} JSONSTAT"
    variables = variables or {}
    try:
        payload = json.loads(raw.decode("utf-8-sig"))
        dataset = payload.get("dataset", payload)
        dims = dataset["dimension"]
        ids = list(dataset.get("id") or dims["id"])
        sizes = [int(s) for s in (dataset.get("size") or dims["size"])]
        role = dataset.get("role") or dims.get("role") or {}
        codes, labels = [], []
        for dim_id in ids:
            category = dims[dim_id]["category"]
            index = category.get("index")
            if index is None:
                order = list(category["label"])
            elif isinstance(index, list):
                order = [str(c) for c in index]
            else:
                order = sorted(index, key=lambda c: index[c])
            codes.append(order)
            labels.append(category.get("label") or {})
        raw_values = dataset["value"]
        raw_status = dataset.get("status")
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise FormatError(
            source,
            f"not a JSON-stat dataset ({type(exc).__name__}: {exc})",
            "Check that the request asked for format JSONSTAT",
        ) from exc
    if [len(c) for c in codes] != sizes:
        raise FormatError(source, f"sizes {sizes} do not match the categories", "Fetch again")
    total = 1
    for size in sizes:
        total *= size
    names = _column_names(ids, variables)
    requested = {code.casefold() for code in variables}
    keep = [
        i
        for i, dim_id in enumerate(ids)
        if not (dim_id == "ContentsCode" and sizes[i] == 1 and dim_id.casefold() not in requested)
    ]
    # Without role metadata, StatBank's time variable is still `Tid` (as parse_csv assumes):
    # leaving it unrecognised would give every row null period dates without a word.
    time_ids = set(role.get("time") or [i for i in ids if i.casefold() == "tid"])
    time_name = next((names[i] for i in keep if ids[i] in time_ids), None)

    columns: dict[str, list[Any]] = {}
    for i in keep:
        columns[names[i]] = []
        columns[f"{names[i]}_text"] = []
    for combination in itertools.product(*(range(s) for s in sizes)):
        for i in keep:
            code = codes[i][combination[i]]
            columns[names[i]].append(code)
            columns[f"{names[i]}_text"].append(labels[i].get(code))

    try:  # a value array of the wrong length would shift or drop cells without a word
        cells = cell_values(raw_values, total)
        markers = cell_statuses(raw_status, total)
    except JsonStatError as exc:
        raise FormatError(source, str(exc), "Fetch again; report it if it persists") from None
    values: list[float | None] = []
    status: list[str | None] = []
    for position, (value, marker) in enumerate(zip(cells, markers, strict=True)):
        if isinstance(value, str):  # some writers put markers in the value array
            number, text_marker = _number(value, source)
            value, marker = number, marker or text_marker
        if value is not None and not isinstance(value, int | float):
            raise FormatError(source, f"cell {position} is {value!r}", "Not a number")
        if marker in MISSING_SYMBOLS:  # as Statistics Norway's JSON-stat is read
            value = None  # a placeholder sent beside "confidential" is not a figure to sum
        values.append(None if value is None else float(value))
        status.append(None if marker is None else str(marker))
    return _finish(columns, [names[i] for i in keep], time_name, values, status, source)


def _number(cell: str, source: str) -> tuple[float | None, str | None]:
    text = cell.strip()
    if text in MISSING_MARKERS:
        return None, text
    cleaned = text.replace("\u00a0", "").replace(" ", "")
    if "," in cleaned and "." in cleaned:  # the later one is the decimal mark
        thousands = "." if cleaned.rfind(",") > cleaned.rfind(".") else ","
        cleaned = cleaned.replace(thousands, "")
    cleaned = cleaned.replace(",", ".")
    try:
        return float(cleaned), None
    except ValueError:
        raise FormatError(
            source, f"cell {cell!r} is neither a number nor a known marker", "Fetch again"
        ) from None


def parse_csv(
    raw: bytes,
    *,
    table: str,
    variables: Mapping[str, Sequence[str]] | None = None,
    info: TableInfo | None = None,
) -> pl.DataFrame:
    """StatBank CSV (`;`, BOM, CRLF, last column the value) as a long table.

    Cells hold labels; each is turned into its code by `info` (same language), else by the
    request (the one selected value, or a selected code equal to the label). The time
    column's labels are its codes, except in English, where quarters read `2024Q1` for the
    code `2024K1`.
    """
    source = f"StatBank {table} CSV"
    variables = variables or {}
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise FormatError(source, f"not UTF-8 ({exc})", "Fetch again") from exc
    rows = [row for row in csv.reader(io.StringIO(text, newline=""), delimiter=";") if row]
    if not rows or len(rows[0]) < 2:
        raise FormatError(source, "no header with variables and a value column", "Fetch again")
    header, body = rows[0], rows[1:]
    names = _column_names(header[:-1], variables)
    time_code = info.time_variable.id if info and info.time_variable else "Tid"
    time_name = next((n for n in names if n.casefold() == time_code.casefold()), None)

    columns: dict[str, list[Any]] = {}
    resolvers = {}
    for name in names:
        columns[name], columns[f"{name}_text"] = [], []
        if name == time_name:
            resolvers[name] = _time_resolver(info)
        else:
            resolvers[name] = _resolver(name, variables, info, source)
    values: list[float | None] = []
    status: list[str | None] = []
    for line, row in enumerate(body, start=2):
        if len(row) != len(header):
            raise FormatError(source, f"{len(row)} fields, header has {len(header)}", "", line=line)
        for name, cell in zip(names, row[:-1], strict=True):
            columns[f"{name}_text"].append(cell)
            columns[name].append(resolvers[name](cell, line))
        value, marker = _number(row[-1], source)
        values.append(value)
        status.append(marker)
    return _finish(columns, names, time_name, values, status, source)


# English labels write a quarter with Q where its code has K (`2024Q1` is `2024K1`).
_ENGLISH_QUARTER = re.compile(r"(\d{4})Q([1-4])")


def _time_resolver(info: TableInfo | None) -> Any:
    """Time labels to codes: by `info`'s time variable, else the label is the code, except
    an English quarter label, whose code is known without asking."""
    by_label: dict[str, str] = {}
    if info is not None and info.time_variable is not None:
        by_label = {value.text: value.id for value in info.time_variable.values}

    def resolve(label: str, line: int) -> str:
        if label in by_label:
            return by_label[label]
        quarter = _ENGLISH_QUARTER.fullmatch(label.strip())
        return f"{quarter[1]}K{quarter[2]}" if quarter else label

    return resolve


def _resolver(
    name: str, variables: Mapping[str, Sequence[str]], info: TableInfo | None, source: str
) -> Any:
    selected = [v for v in variables.get(name, []) if "*" not in v and not v.startswith(("<", ">"))]
    by_label: dict[str, list[str]] = {}
    if info is not None:
        try:
            variable = info.variable(name)
        except KeyError:
            variable = None
        if variable is not None:
            for value in variable.values:
                if not selected or value.id in selected:
                    by_label.setdefault(value.text, []).append(value.id)

    def resolve(label: str, line: int) -> str:
        found = by_label.get(label, [])
        if len(found) == 1:
            return found[0]
        if not found and len(selected) == 1 and len(variables.get(name, [])) == 1:
            return selected[0]
        if not found and label in selected:
            return label
        how = "several codes have" if found else "no selected code has"
        raise FormatError(
            source,
            f"cannot tell the {name} code of label {label!r}: {how} it",
            "Pass info=table_info(client, table, lang=<same lang>) or use fmt='JSONSTAT'",
            line=line,
        )

    return resolve
