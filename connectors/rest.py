"""A generic REST source declared in a dataset's YAML, so a vendor API needs no Python:

    source:
      type: rest
      name: vendor_x            # secrets come from SOURCES__VENDOR_X__<KEY>
      url: https://api.vendor.example/v2/cases
      params: {status: open}
      auth: {type: bearer}
      paging: {type: offset, limit: 500}
      records_path: data.items
      incremental: {cursor_field: updated_at, param: updated_since}

`RestSource.from_config(mapping, env)` checks the mapping (unknown keys, secrets written in
the YAML, secrets missing from the environment: each error names the YAML key and the
variable to set), then `pages(state)` yields every page's raw bytes, records and the state
to resume from; the pages land as they came and the dataset's `format:` block reads them
like files. HTTP (retries, timeouts, redaction) is `connectors.http`; paging is
`connectors.paging`.
"""

from __future__ import annotations

import dataclasses
import os
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx

# The JSON reader's rendering of one value as text; shared so API and file records type alike.
from connectors.http import (
    SECRET_PARAM_NAMES,
    ApiKeyAuth,
    BasicAuth,
    BearerAuth,
    HttpClient,
    HttpSettings,
    OAuth2ClientCredentials,
    redact_url,
)
from connectors.paging import (
    Cursor,
    ElasticsearchScroll,
    GraphQLRelay,
    LinkHeader,
    Offset,
    PageNumber,
    Paginator,
    PostBodyPage,
    State,
    Strategy,
    get_path,
    paginate,
)
from connectors.paging.records import read_json, records_at

SOURCE_KEYS = {
    "type",
    "name",
    "url",
    "method",
    "params",
    "headers",
    "body",
    "auth",
    "paging",
    "records_path",
    "incremental",
}
INCREMENTAL_KEYS = {"cursor_field", "param", "initial"}
# auth type -> (keys allowed in the YAML, secrets read from SOURCES__<NAME>__<KEY>)
AUTH_KEYS: dict[str, tuple[set[str], tuple[str, ...]]] = {
    "api_key": ({"type", "header", "param"}, ("API_KEY",)),
    "basic": ({"type"}, ("USERNAME", "PASSWORD")),
    "bearer": ({"type"}, ("TOKEN",)),
    "oauth2": ({"type", "token_url", "scope", "client_auth"}, ("CLIENT_ID", "CLIENT_SECRET")),
}
# Words that mark a value as a credential when they appear as a YAML key.
_SECRET_WORDS = {"key", "api_key", "apikey", "token", "password", "secret", "client_secret"}
_SECRET_WORDS |= {"client_id", "username", "user", "authorization"}


class Single(Strategy):
    """`paging: {type: none}`: one request, one page."""

    max_pages = 1
    records_path: str | None = None

    def __init__(self, *, records_path: str | None = None) -> None:
        self.records_path = records_path

    def initial_state(self) -> State:
        return {}

    def build_request(self, first: httpx.Request, state: Mapping[str, Any]) -> httpx.Request:
        return first

    def parse(
        self, response: httpx.Response, state: Mapping[str, Any]
    ) -> tuple[list[Any], State | None]:
        return records_at(response, read_json(response), self.records_path), None


PAGING: dict[str, type[Any]] = {
    "none": Single,
    "offset": Offset,
    "page_number": PageNumber,
    "cursor": Cursor,
    "link_header": LinkHeader,
    "graphql_relay": GraphQLRelay,
    "es_scroll": ElasticsearchScroll,
    "post_body": PostBodyPage,
}
_POST_PAGING = {"graphql_relay", "es_scroll", "post_body"}


class RestConfigError(ValueError):
    """A `type: rest` source block that cannot work: which key, what is wrong, what to do."""


@dataclass(frozen=True)
class Incremental:
    """Only records changed since the last run: the highest `cursor_field` seen is kept in
    the state and sent as query parameter `param` on the next run."""

    cursor_field: str
    param: str
    initial: Any = None


@dataclass(frozen=True)
class RestPage:
    number: int
    raw: bytes  # the answer as received, for landing
    records: list[Any]
    state: State  # persist it; `pages(state)` resumes after this page
    url: str  # redacted: safe for manifests and logs


@dataclass(frozen=True)
class RestSource:
    name: str
    url: str
    paginator: Paginator
    method: str = "GET"
    params: Mapping[str, Any] = field(default_factory=dict)
    headers: Mapping[str, str] = field(default_factory=dict)
    body: Any = None
    auth: httpx.Auth | None = field(default=None, repr=False)
    incremental: Incremental | None = None
    settings: HttpSettings = field(default_factory=HttpSettings)

    @classmethod
    def from_config(
        cls,
        mapping: Mapping[str, Any],
        env: Mapping[str, str] | None = None,
        *,
        settings: HttpSettings | None = None,
    ) -> RestSource:
        """Check a dataset's `source:` block and build the source (env: os.environ)."""
        return _build(mapping, os.environ if env is None else env, settings or HttpSettings())

    def client(self) -> HttpClient:
        return HttpClient(self.settings, auth=self.auth)

    def pages(self, state: Mapping[str, Any] | None = None) -> Iterator[RestPage]:
        """Every page from `state` on (None: a new run). The state of a finished run has
        `paging: None`; given again, it starts a new run from the incremental cursor."""
        state = dict(state or {})
        resuming = state.get("paging") is not None
        if self.incremental is None:
            since = None
        elif resuming:
            since = state.get("since")
        else:
            since = state.get("cursor_max", self.incremental.initial)
        cursor_max = state.get("cursor_max", self.incremental and self.incremental.initial)
        params = dict(self.params)
        if self.incremental is not None and since is not None:
            params[self.incremental.param] = since
        # Merged into the URL's own query: httpx's `params=` would replace it, and a URL
        # written with a filter (`.../cases?district=D1`) would lose it without a word.
        url = httpx.URL(self.url).copy_merge_params(params)
        with self.client() as client:
            first = client.build_request(self.method, url, headers=self.headers, json=self.body)
            resume = state["paging"] if resuming else None
            for page in paginate(client, first, self.paginator, state=resume):
                if self.incremental is not None:
                    cursor_max = _highest(self.incremental.cursor_field, page.records, cursor_max)
                following: State = {"paging": page.state}
                if self.incremental is not None:
                    following |= {"since": since, "cursor_max": cursor_max}
                yield RestPage(
                    page.number,
                    page.response.content,
                    page.records,
                    following,
                    self._redacted(page.response.request.url),
                )

    def _redacted(self, url: httpx.URL) -> str:
        secret_params = getattr(self.auth, "secret_params", None)
        return redact_url(url, secret_params() if secret_params else ())


def _highest(path: str, records: list[Any], current: Any) -> Any:
    best = current
    for record in records:
        try:
            value = get_path(record, path)
        except KeyError:
            continue
        if value is None:
            continue
        try:
            if best is None or value > best:
                best = value
        except TypeError:
            raise RestConfigError(
                f"incremental.cursor_field {path!r}: cannot compare {value!r} with {best!r}; "
                "the cursor field must hold values of one type (ISO timestamps or numbers)"
            ) from None
    return best


# -- checking the YAML
def _fail(key: str, problem: str, fix: str) -> RestConfigError:
    return RestConfigError(f"source.{key}: {problem}. {fix}")


def _mapping(config: Mapping[str, Any], key: str) -> dict[str, Any]:
    value = config.get(key) or {}
    if not isinstance(value, Mapping):
        raise _fail(key, f"must be a mapping, not {type(value).__name__}", "Fix the YAML")
    return dict(value)


def _unknown(given: Mapping[str, Any], allowed: set[str], where: str) -> None:
    extra = sorted(set(given) - allowed)
    if extra:
        raise _fail(
            f"{where}.{extra[0]}" if where else extra[0],
            "unknown key",
            f"Allowed here: {', '.join(sorted(allowed))}",
        )


def _no_secrets_in(values: Mapping[str, Any], where: str, variable: str) -> None:
    for key in values:
        if str(key).lower() in _SECRET_WORDS | SECRET_PARAM_NAMES:
            raise _fail(
                f"{where}.{key}",
                "credentials must not be written in the dataset YAML (it is committed and "
                "shown in the catalog)",
                f"Remove it and set the environment variable {variable}",
            )


def _env_name(name: str, key: str) -> str:
    return f"SOURCES__{name.upper()}__{key}"


def _build(config: Mapping[str, Any], env: Mapping[str, str], settings: HttpSettings) -> RestSource:
    _unknown(config, SOURCE_KEYS, "")
    if config.get("type", "rest") != "rest":
        raise _fail("type", f"is {config.get('type')!r}, not 'rest'", "Use type: rest")
    name = config.get("name")
    if not isinstance(name, str) or not re.fullmatch(r"[a-z][a-z0-9_]*", name):
        raise _fail(
            "name",
            f"{name!r} is not a source name",
            "Use lower-case letters, digits and _ (it names SOURCES__<NAME>__<KEY>)",
        )
    url = config.get("url")
    if not isinstance(url, str) or not url.startswith(("https://", "http://")):
        raise _fail("url", f"{url!r} is not an http(s) URL", "Give the endpoint's full URL")
    if httpx.URL(url).userinfo:
        raise _fail("url", "holds a user name or password", "Use auth: {type: basic} instead")
    hint = _env_name(name, "<KEY>")
    params = _mapping(config, "params")
    headers = {str(k): str(v) for k, v in _mapping(config, "headers").items()}
    _no_secrets_in(params, "params", hint)
    _no_secrets_in(headers, "headers", hint)
    _no_secrets_in(dict(httpx.URL(url).params), "url", hint)

    paging = _mapping(config, "paging") or {"type": "none"}
    kind = paging.get("type", "none")
    default_method = "POST" if kind in _POST_PAGING else "GET"
    method = str(config.get("method", default_method)).upper()
    if method not in ("GET", "POST"):
        raise _fail("method", f"{method!r} is not supported", "Use GET or POST")
    body = config.get("body")
    if body is not None and method != "POST":
        raise _fail("body", "is only sent with POST", "Set method: POST or remove body")
    if kind == "graphql_relay" and not (isinstance(body, Mapping) and "query" in body):
        raise _fail("body", "graphql_relay needs body.query", "Put the GraphQL query in body")
    return RestSource(
        name=name,
        url=url,
        paginator=_paginator(paging, config.get("records_path")),
        method=method,
        params=params,
        headers=headers,
        body=body,
        auth=_auth(_mapping(config, "auth"), name, env),
        incremental=_incremental(config),
        settings=settings,
    )


def _paginator(paging: dict[str, Any], records_path: Any) -> Paginator:
    kind = paging.pop("type", "none")
    if kind not in PAGING:
        raise _fail("paging.type", f"unknown paging {kind!r}", f"Use one of {sorted(PAGING)}")
    if records_path is not None and not isinstance(records_path, str):
        raise _fail("records_path", "must be a dot path like data.items", "Fix the YAML")
    strategy = PAGING[kind]
    if kind == "none":
        _unknown(paging, set(), "paging")
        return Single(records_path=records_path)
    fields = {f.name: f for f in dataclasses.fields(strategy) if f.name not in ("_",)}
    _unknown(paging, set(fields) - {"records_path"}, "paging")
    for key, value in paging.items():
        _check_type(f"paging.{key}", value, str(fields[key].type))
    if records_path is not None:
        paging["records_path"] = records_path
    try:
        return strategy(**paging)  # type: ignore[no-any-return]
    except TypeError as error:  # a required option missing, e.g. connection_path
        raise _fail("paging", str(error).split(".")[-1], f"See the {kind} options") from None


def _check_type(key: str, value: Any, annotation: str) -> None:
    kinds = {"int": int, "bool": bool, "str": str, "float": float}
    wanted = [kinds[t.strip()] for t in annotation.split("|") if t.strip() in kinds]
    if value is None and "None" in annotation:
        return
    ok = any(isinstance(value, t) and not (t is int and isinstance(value, bool)) for t in wanted)
    if wanted and not ok:
        raise _fail(key, f"{value!r} is not {annotation}", "Fix the YAML")


def _auth(auth: dict[str, Any], name: str, env: Mapping[str, str]) -> httpx.Auth | None:
    if not auth:
        return None
    kind = auth.get("type")
    if kind not in AUTH_KEYS:
        raise _fail("auth.type", f"unknown auth {kind!r}", f"Use one of {sorted(AUTH_KEYS)}")
    allowed, secret_keys = AUTH_KEYS[kind]
    for key in auth:
        if key not in allowed and str(key).lower() in _SECRET_WORDS | SECRET_PARAM_NAMES:
            variables = " and ".join(_env_name(name, s) for s in secret_keys)
            raise _fail(
                f"auth.{key}",
                "credentials must not be written in the dataset YAML (it is committed and "
                "shown in the catalog)",
                f"Remove it; {kind} auth reads {variables} from the environment",
            )
    _unknown(auth, allowed, "auth")
    secrets = {}
    for key in secret_keys:
        variable = _env_name(name, key)
        value = env.get(variable, "")
        if not value:
            raise _fail(
                "auth",
                f"{kind} auth needs {key.lower()}, which is not in the environment",
                f"Set the environment variable {variable}",
            )
        secrets[key] = value
    if kind == "api_key":
        return ApiKeyAuth(secrets["API_KEY"], header=auth.get("header"), param=auth.get("param"))
    if kind == "basic":
        return BasicAuth(secrets["USERNAME"], secrets["PASSWORD"])
    if kind == "bearer":
        return BearerAuth(secrets["TOKEN"])
    token_url = auth.get("token_url")
    if not isinstance(token_url, str) or not token_url.startswith(("https://", "http://")):
        raise _fail("auth.token_url", "oauth2 needs the token endpoint's URL", "Add it")
    return OAuth2ClientCredentials(
        token_url,
        secrets["CLIENT_ID"],
        secrets["CLIENT_SECRET"],
        auth.get("scope"),
        client_auth=auth.get("client_auth", "basic"),
    )


def _incremental(config: Mapping[str, Any]) -> Incremental | None:
    incremental = _mapping(config, "incremental")
    if not incremental:
        return None
    _unknown(incremental, INCREMENTAL_KEYS, "incremental")
    for key in ("cursor_field", "param"):
        if not isinstance(incremental.get(key), str) or not incremental[key]:
            raise _fail(f"incremental.{key}", "is missing", "Name the record field and param")
    return Incremental(**incremental)
