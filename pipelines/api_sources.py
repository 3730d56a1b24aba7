"""API datasets: pages from a register, statistics, company or open-data API, landed like
delivered files.

Each answer's raw bytes land in landing (content-addressed, with the manifest row) before
anything parses them; the dataset's `format:` block then reads a landed page exactly as it
would read a file, so contracts, quarantine, checks and silver are the file path's own.
After each landed page its paging state is saved (lake/cursors.py): a run killed mid-way
resumes after the last landed page, and a page fetched twice is one landing and one batch.

Some answers are received but are not a batch of the dataset; they land beside it under
`<dataset>.<part>` (never loaded into silver, kept for replay and the catalog):

- `<dataset>.metadata`: a CKAN dataset's `package_show` answer (title, licence, publisher,
  resources), which the catalog reads (pipelines/catalog.py);
- `<dataset>.raw`: a CVR scroll answer as received (it holds participants, who may be
  persons), whose batch is the company rows `connectors.cvr.company_lines` makes of the hits
  it delivered (NDJSON, no person data); and any answer without records (an empty last page).

Source blocks (`source:` in the dataset YAML) and their settings; any key can be overridden
from the environment as SOURCES__<NAME>__<KEY> (secrets only come from there):

    type: datafordeler   register, entity, fields, where?, first?       API_KEY, BASE_URL
    type: statbank       table, variables, lang?, format? (CSV)         BASE_URL
    type: cvr            query?, size? (1000); format: {type: ndjson}   USERNAME, PASSWORD,
                                                                        BASE_URL
    type: ckan           portal, package, resource? | resource_format?, API_KEY?, BASE_URL
                         max_mb? (200)                                  (the portal)
    type: rest           see connectors/rest.py                         per its auth, URL

<NAME> is the block's `name:`, else the type (DATAFORDELER, STATBANK, CVR, CKAN).
"""

from __future__ import annotations

import logging
import os
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any

import httpx

from connectors import ckan, cvr, datafordeler, statbank
from connectors.http import HttpClient
from connectors.rest import RestSource
from lake import cursors
from lake.errors import ConfigError
from lake.home import Home
from lake.landing import land
from pipelines.connector_logs import mask_connector_logs
from pipelines.specs import API_SOURCES, DatasetSpec

log = logging.getLogger("kommunelake.api")

_DEFAULT_NAMES = {kind: kind for kind in API_SOURCES if kind != "rest"}
METADATA, RAW = "metadata", "raw"  # parts landed beside a dataset, never loaded
DEFAULT_MAX_MB = 200


@dataclass(frozen=True)
class Landing:
    """Bytes to land: a batch of the dataset (`part` None) or a part kept beside it."""

    data: bytes
    media_type: str
    suffix: str
    part: str | None = None


@dataclass(frozen=True)
class Answer:
    landings: tuple[Landing, ...]
    state: dict[str, Any] | None  # None: the source has nothing after this page


def part_dataset(dataset: str, part: str) -> str:
    """The landing manifest's dataset name for a part kept beside `dataset`."""
    return f"{dataset}.{part}"


def _page(raw: bytes, records: int) -> Landing:
    """A page of records as a batch; a page without records is kept beside the dataset
    instead (a batch without rows would only be rejected for missing columns)."""
    return Landing(raw, "application/json", ".json", None if records else RAW)


def is_api(spec: DatasetSpec) -> bool:
    return spec.source.get("type") in API_SOURCES


def source_name(spec: DatasetSpec) -> str:
    kind = spec.source["type"]
    return str(spec.source.get("name") or _DEFAULT_NAMES.get(kind) or spec.name)


def setting(spec: DatasetSpec, key: str, env: Mapping[str, str], default: Any = None) -> Any:
    """A source setting: SOURCES__<NAME>__<KEY> from the environment, else the YAML's."""
    variable = f"SOURCES__{source_name(spec).upper()}__{key.upper()}"
    return env.get(variable) or spec.source.get(key.lower(), default)


def fetch_into_landing(spec: DatasetSpec, home: Home, env: Mapping[str, str] | None = None) -> int:
    """Land every new page of an API dataset; returns how many landings were new."""
    env = os.environ if env is None else env
    mask_connector_logs()  # a retry warning names the URL, which may hold a CPR number
    cursor = cursors.latest(home, spec.name)
    resuming = cursor is not None and not cursor.finished
    run = cursor.run if resuming and cursor else uuid.uuid4().hex[:12]
    page = cursor.page if resuming and cursor else 0
    if resuming:
        log.info("%s: resuming run %s after page %d", spec.name, run, page)
    # A finished REST run's state carries its incremental cursor into the next run.
    start = (
        cursor.state if cursor is not None and (resuming or spec.source["type"] == "rest") else None
    )
    new = 0
    for answer in _answers(spec, env, start):
        page += 1
        is_new, sha = False, None
        for landing in answer.landings:
            part = f".{landing.part}" if landing.part else ""
            landed, fresh = land(
                home.landing_uri,
                home.manifest_uri,
                dataset=part_dataset(spec.name, landing.part) if landing.part else spec.name,
                source=f"api:{source_name(spec)}",
                data=landing.data,
                original_name=f"{spec.name}-{run}-p{page:04d}{part}{landing.suffix}",
                media_type=landing.media_type,
            )
            is_new |= fresh
            if landing.part is None or sha is None:
                sha = landed.sha256  # the batch's hash, else the part's
            new += fresh and landing.part is None
        finished = _finished(spec, answer.state)
        # A page landed before needs no resume point of its own; a run's end is recorded
        # unless it repeats the previous run's end exactly (an unchanged re-run adds nothing).
        repeat_of_last_end = (
            not resuming
            and not new
            and cursor is not None
            and cursor.finished
            and cursor.state == answer.state
        )
        if is_new or (finished and not repeat_of_last_end):
            cursors.save(home, spec.name, run, page, answer.state, sha, finished=finished)
    log.info("%s: %d page(s) fetched, %d new", spec.name, page, new)
    return new


def _finished(spec: DatasetSpec, state: dict[str, Any] | None) -> bool:
    if spec.source["type"] == "rest":
        return state is None or state.get("paging") is None
    return state is None


def _answers(
    spec: DatasetSpec, env: Mapping[str, str], state: dict[str, Any] | None
) -> Iterator[Answer]:
    kind = spec.source["type"]
    if kind == "datafordeler":
        yield from _datafordeler(spec, env, state)
    elif kind == "statbank":
        yield from _statbank(spec, env)
    elif kind == "cvr":
        yield from _cvr(spec, env, state)
    elif kind == "ckan":
        yield from _ckan(spec, env)
    else:
        config = {k: v for k, v in spec.source.items() if k != "type"}
        config["url"] = setting(spec, "url", env, config.get("url"))
        for page in RestSource.from_config(config, env).pages(state):
            yield Answer((_page(page.raw, len(page.records)),), dict(page.state))


def _datafordeler(
    spec: DatasetSpec, env: Mapping[str, str], state: dict[str, Any] | None
) -> Iterator[Answer]:
    src = spec.source
    missing = [k for k in ("register", "entity", "fields") if not src.get(k)]
    if missing:
        raise ConfigError(f"{spec.name}: the datafordeler source needs {', '.join(missing)}")
    key = setting(spec, "api_key", env)
    if not key:
        raise ConfigError(
            f"{spec.name}: no Datafordeler API key: set SOURCES__"
            f"{source_name(spec).upper()}__API_KEY in the environment"
        )
    query = datafordeler.build_query(src["entity"], src["fields"], where=src.get("where"))
    with HttpClient(auth=datafordeler.auth(key)) as client:
        for page in datafordeler.graphql_pages(
            client,
            src["register"],
            src["entity"],
            query,
            first=int(src.get("first", datafordeler.MAX_FIRST)),
            state=state,
            base_url=setting(spec, "base_url", env, datafordeler.GRAPHQL_URL),
        ):
            yield Answer((_page(page.raw, len(page.records)),), page.state)


def _statbank(spec: DatasetSpec, env: Mapping[str, str]) -> Iterator[Answer]:
    src = spec.source
    body = statbank.data_request(
        src["table"],
        src.get("variables", {}),
        lang=src.get("lang", "da"),
        fmt=src.get("format", "CSV"),
    )
    with HttpClient() as client:
        response = statbank.fetch_raw(
            client, body, base_url=setting(spec, "base_url", env, statbank.STATBANK_URL)
        )
    csv = body["format"] == "csv"
    media_type, suffix = ("text/csv", ".csv") if csv else ("application/json", ".json")
    yield Answer((Landing(response.content, media_type, suffix),), None)


def _cvr(
    spec: DatasetSpec, env: Mapping[str, str], state: dict[str, Any] | None
) -> Iterator[Answer]:
    src = spec.source
    index = src.get("index", "virksomhed")
    if index != "virksomhed":
        raise ConfigError(
            f"{spec.name}: the cvr source reads companies (index: virksomhed), not {index!r}"
        )
    if spec.format.get("type") != "ndjson":
        raise ConfigError(
            f"{spec.name}: a cvr dataset loads the company rows made of each answer; "
            "set `format: {type: ndjson}`"
        )
    try:
        auth = cvr.auth_from_env(env, source_name(spec))
    except ValueError as error:
        raise ConfigError(f"{spec.name}: {error}") from error
    with HttpClient(auth=auth) as client:
        for page in cvr.scroll(
            client,
            src.get("query"),
            index="virksomhed",
            size=int(src.get("size", 1000)),
            state=state,
            base_url=setting(spec, "base_url", env, cvr.CVR_URL),
        ):
            landings = [Landing(page.raw, page.media_type or "application/json", ".json", RAW)]
            if page.hits:
                lines = cvr.company_lines(page.hits, source=f"{spec.name} page {page.number}")
                landings.append(Landing(lines, "application/x-ndjson", ".ndjson"))
            yield Answer(tuple(landings), page.state)


def _ckan(spec: DatasetSpec, env: Mapping[str, str]) -> Iterator[Answer]:
    src = spec.source
    portal = setting(spec, "base_url", env, src.get("portal"))
    missing = [k for k, v in (("portal", portal), ("package", src.get("package"))) if not v]
    if missing:
        raise ConfigError(f"{spec.name}: the ckan source needs {', '.join(missing)}")
    auth = ckan.auth_from_env(env, source_name(spec))
    with HttpClient(auth=auth) as client:
        shown = ckan.package_show(client, portal, str(src["package"]))
        resource = ckan.choose_resource(
            shown.record, resource=src.get("resource"), format=src.get("resource_format")
        )
        assert resource.url is not None  # choose_resource offers only resources with a URL
        # A file uploaded to the portal is linked under its public address; fetch it through
        # the address configured for the portal (the same, unless a mirror or proxy is used).
        url = httpx.URL(ckan.via_portal(resource.url, ckan.site_url(shown.raw), portal))
        download = ckan.download_resource(
            client,
            str(url),
            max_bytes=int(float(src.get("max_mb", DEFAULT_MAX_MB)) * 2**20),
            # a file on another host must not get the portal's key
            send_auth=auth is not None and url.host == httpx.URL(portal).host,
        )
    assert download.content is not None  # no `dest`: the bytes come back in memory
    suffix = PurePosixPath(url.path).suffix.lower() or f".{(resource.format or 'bin').lower()}"
    media_type = download.media_type or resource.media_type or "application/octet-stream"
    metadata = Landing(shown.raw, "application/json", ".json", METADATA)
    yield Answer((metadata, Landing(download.content, media_type, suffix)), None)
