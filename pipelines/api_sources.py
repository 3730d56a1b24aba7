"""API datasets: pages from a register or statistics API, landed like delivered files.

Each answer's raw bytes land in landing (content-addressed, with the manifest row) before
anything parses them; the dataset's `format:` block then reads a landed page exactly as it
would read a file, so contracts, quarantine, checks and silver are the file path's own.
After each landed page its paging state is saved (lake/cursors.py): a run killed mid-way
resumes after the last landed page, and a page fetched twice is one landing and one batch.

Source blocks (`source:` in the dataset YAML) and their settings; any key can be overridden
from the environment as SOURCES__<NAME>__<KEY> (secrets only come from there):

    type: datafordeler   register, entity, fields, where?, first?       API_KEY, BASE_URL
    type: statbank       table, variables, lang?, format? (CSV)         BASE_URL
    type: rest           see connectors/rest.py                          per its auth
"""

from __future__ import annotations

import logging
import os
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from connectors import datafordeler, statbank
from connectors.http import HttpClient
from connectors.rest import RestSource
from lake import cursors
from lake.errors import ConfigError
from lake.home import Home
from lake.landing import land
from pipelines.specs import DatasetSpec

log = logging.getLogger("kommunelake.api")

API_SOURCES = ("datafordeler", "statbank", "rest")
_DEFAULT_NAMES = {"datafordeler": "datafordeler", "statbank": "statbank"}


@dataclass(frozen=True)
class Answer:
    raw: bytes
    state: dict[str, Any] | None  # None: the source has nothing after this page
    media_type: str
    suffix: str


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
        landed, is_new = land(
            home.landing,
            home.manifest_uri,
            dataset=spec.name,
            source=f"api:{source_name(spec)}",
            data=answer.raw,
            original_name=f"{spec.name}-{run}-p{page:04d}{answer.suffix}",
            media_type=answer.media_type,
        )
        new += is_new
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
            cursors.save(home, spec.name, run, page, answer.state, landed.sha256, finished=finished)
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
    else:
        config = {k: v for k, v in spec.source.items() if k != "type"}
        for page in RestSource.from_config(config, env).pages(state):
            yield Answer(page.raw, dict(page.state), "application/json", ".json")


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
            yield Answer(page.raw, page.state, "application/json", ".json")


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
    yield Answer(
        response.content,
        None,
        "text/csv" if csv else "application/json",
        ".csv" if csv else ".json",
    )
