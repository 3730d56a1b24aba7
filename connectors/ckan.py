"""CKAN open-data portals (the action API, `<portal>/api/3/action/<action>`): dataset
metadata for the catalog, and the datasets' files.

- `package_search(client, portal, q=..., fq=...)`: `GET .../package_search` paged with
  `start`/`rows`, one `SearchPage` per answer: raw bytes (land them), the packages as
  received, their `DatasetRecord`s and the state to persist (`state=` resumes).
  A match count that changes between pages stops the search (`CkanError`): the offsets
  no longer line up, so a dataset could be skipped or repeated.
- `package_show(client, portal, package_id)`: `GET .../package_show?id=` -> `PackageShow`.
- `dataset_record(package, portal=..., languages=(...))`: a package as a catalog-friendly
  `DatasetRecord` (title, description, organization, license, tags, modified, resources with
  url/format/size). Portals such as opendata.swiss give titles as `{"de": .., "fr": ..}`:
  the first non-empty of `languages` wins, then the portal's own order.
- `choose_resource(record, resource=..., format=...)`: the one file of a dataset to load: by
  resource id or name, else the only one of a format (`CSV`), else the only one.
- `site_url(raw)`: the portal's public address as its answer writes it (CKAN's `site_url`,
  the root of the `help` link); `via_portal(url, site, portal)`: a link under that address
  rewritten to the address we reach the portal at (a mirror, a proxy, a local test portal).
- `download_resource(client, url, max_bytes=...)`: a resource file, streamed into memory or
  to a file (written beside it, moved into place when complete), refused beyond `max_bytes`.
- `auth_from_env(env, source)`: the optional API key (`SOURCES__<SOURCE>__API_KEY`), sent as
  CKAN expects in the `Authorization` header; public portals need none.

CKAN reports failures as `{"success": false, "error": {"__type": ..., "message": ...}}`,
usually with HTTP 403/404/409: these become one `CkanError` with the portal's own words.
Maintainer and author fields are left out of the records: they are often a person's name
and e-mail; the organization is the catalog's owner of a dataset.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from connectors.formats.errors import FormatError
from connectors.http import ApiKeyAuth, HttpClient, HttpError, redact_url
from connectors.paging import DEFAULT_MAX_PAGES, Offset, State, paginate

MAX_ROWS = 1000  # CKAN's default ckan.search.rows_max: a larger `rows` is a 409

_HINTS = {
    "Not Found Error": "Check the dataset id or name on the portal",
    "Authorization Error": (
        "The dataset is private or the API key lacks access: check SOURCES__<SOURCE>__API_KEY"
    ),
    "Validation Error": "Check the request parameters against the portal's API docs",
    "Search Query Error": "Check the q/fq syntax (Solr query syntax)",
    "Search Error": "Check the q/fq/sort parameters (Solr query syntax)",
}


class CkanError(Exception):
    """The portal refused an action (`success: false`), in its own words, on one line."""

    def __init__(
        self,
        message: str,
        *,
        action: str,
        error_type: str | None = None,
        status: int | None = None,
    ) -> None:
        self.action = action
        self.error_type = error_type
        self.status = status
        super().__init__(message)


class DownloadTooLargeError(CkanError):
    """A resource file larger than the caller's `max_bytes`; nothing was kept."""


# -- records


@dataclass(frozen=True)
class ResourceRecord:
    id: str | None
    name: str | None
    description: str | None
    url: str | None
    format: str | None
    media_type: str | None
    size: int | None  # bytes; None when unknown (portals write null or 0 for that)
    modified: datetime | None
    rights: str | None  # a per-file licence/rights statement, where the portal has one


@dataclass(frozen=True)
class DatasetRecord:
    """What the catalog shows about an open-data dataset."""

    portal: str
    id: str
    name: str
    title: str | None
    description: str | None
    organization: str | None
    organization_name: str | None  # the portal's slug for it
    license: str | None  # title, else id, else the resources' common rights statement
    license_id: str | None
    tags: tuple[str, ...]
    created: datetime | None
    modified: datetime | None  # DCAT `modified` where the portal has it, else metadata's
    metadata_modified: datetime | None
    landing_page: str  # the dataset's page on the portal
    source_url: str | None  # the publisher's own page, CKAN `url`
    resources: tuple[ResourceRecord, ...]

    def as_dict(self) -> dict[str, Any]:
        """JSON-able (ISO 8601 timestamps), for the catalog tables."""

        def plain(value: Any) -> Any:
            if isinstance(value, datetime):
                return value.isoformat()
            if isinstance(value, list | tuple):
                return [plain(v) for v in value]
            if isinstance(value, dict):
                return {k: plain(v) for k, v in value.items()}
            return value

        return plain(asdict(self))


def dataset_record(
    package: Mapping[str, Any], *, portal: str, languages: Sequence[str] = ("da", "en")
) -> DatasetRecord:
    """A CKAN package dict (from package_search or package_show) as a `DatasetRecord`."""
    portal = portal.rstrip("/")
    try:
        name = str(package["name"])
        organization = package.get("organization") or {}
        resources = tuple(
            _resource(r, languages) for r in package.get("resources") or [] if isinstance(r, dict)
        )
        rights = {r.rights for r in resources if r.rights}
        license_id = package.get("license_id") or None
        license = _local(package.get("license_title"), languages) or license_id
        if license is None and len(rights) == 1:
            license = rights.pop()
        metadata_modified = _timestamp(package.get("metadata_modified"))
        return DatasetRecord(
            portal=portal,
            id=str(package["id"]),
            name=name,
            title=_local(package.get("title"), languages)
            or _local(package.get("display_name"), languages),
            description=_local(package.get("notes"), languages)
            or _local(package.get("description"), languages),
            organization=_local(organization.get("title"), languages)
            or _local(organization.get("display_name"), languages),
            organization_name=organization.get("name"),
            license=license,
            license_id=license_id,
            tags=tuple(
                str(t.get("display_name") or t["name"])
                for t in package.get("tags") or []
                if isinstance(t, dict) and (t.get("display_name") or t.get("name"))
            ),
            created=_timestamp(package.get("metadata_created")),
            modified=_timestamp(package.get("modified")) or metadata_modified,
            metadata_modified=metadata_modified,
            landing_page=f"{portal}/dataset/{name}",
            source_url=package.get("url") or None,
            resources=resources,
        )
    except (KeyError, TypeError, AttributeError, ValueError) as exc:
        which = package.get("name") if isinstance(package, Mapping) else None
        raise FormatError(
            f"CKAN package {which or '?'} from {portal}",
            f"not a CKAN package ({type(exc).__name__}: {exc})",
            "Check that the answer comes from package_search or package_show",
        ) from exc


def _resource(resource: Mapping[str, Any], languages: Sequence[str]) -> ResourceRecord:
    size = resource.get("size") or resource.get("byte_size")
    media_type = resource.get("mimetype") or resource.get("media_type")
    return ResourceRecord(
        id=resource.get("id"),
        name=_local(resource.get("name"), languages) or _local(resource.get("title"), languages),
        description=_local(resource.get("description"), languages),
        url=resource.get("url") or resource.get("download_url") or None,
        format=_local(resource.get("format"), languages),
        media_type=media_type or None,
        size=int(size) if size and int(size) > 0 else None,
        modified=_timestamp(resource.get("modified") or resource.get("last_modified")),
        rights=_local(resource.get("rights") or resource.get("license"), languages),
    )


def _local(value: Any, languages: Sequence[str]) -> str | None:
    """A plain or multilingual (`{"de": .., "fr": ..}`) text, stripped; None when empty."""
    if isinstance(value, Mapping):
        ordered = [value.get(lang) for lang in languages] + list(value.values())
        return next((t for t in (_local(v, ()) for v in ordered) if t), None)
    if value is None:
        return None
    text = str(value).strip()
    return text or None


def _timestamp(value: Any) -> datetime | None:
    """CKAN writes naive UTC timestamps (`2021-01-15T10:25:28.638659`)."""
    if not value:
        return None
    parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    return parsed.astimezone(UTC) if parsed.tzinfo else parsed.replace(tzinfo=UTC)


# -- actions


def auth_from_env(env: Mapping[str, str], source: str) -> ApiKeyAuth | None:
    """`SOURCES__<SOURCE>__API_KEY` as CKAN's Authorization header; None when unset."""
    key = env.get(f"SOURCES__{source.upper()}__API_KEY")
    return ApiKeyAuth(key, header="Authorization") if key else None


def action_url(portal: str, action: str) -> str:
    return f"{portal.rstrip('/')}/api/3/action/{action}"


def parse_action(raw: bytes, *, action: str, where: str = "CKAN") -> Any:
    """The `result` of an action answer; `CkanError` for `success: false`."""
    try:
        body = json.loads(raw)
    except ValueError as exc:
        raise FormatError(
            f"{where} {action}", f"the answer is not JSON ({exc})", "Check the portal URL"
        ) from exc
    if not isinstance(body, dict) or "success" not in body:
        raise FormatError(
            f"{where} {action}",
            "not a CKAN action answer (no 'success')",
            "Check that the portal URL is the CKAN root (…/api/3/action/ is added)",
        )
    if body["success"] is not True:
        raise _refused(action, where, body.get("error"), None)
    return body.get("result")


def _refused(action: str, where: str, error: Any, status: int | None) -> CkanError:
    error = error if isinstance(error, dict) else {"message": str(error or "no reason given")}
    error_type = error.get("__type")
    message = error.get("message")
    details = "; ".join(
        f"{k}: {' '.join(map(str, v)) if isinstance(v, list) else v}"
        for k, v in error.items()
        if k not in ("__type", "message")
    )
    said = ": ".join(str(p) for p in (error_type, message) if p) or "no reason given"
    if details:
        said += f" ({details})"
    http = f" (HTTP {status})" if status else ""
    hint = _HINTS.get(str(error_type), "Check the request against the portal's API docs")
    return CkanError(
        f"CKAN {action} at {where} refused: {said}{http}. {hint}",
        action=action,
        error_type=error_type,
        status=status,
    )


def _from_http_error(exc: HttpError, action: str, where: str) -> Exception:
    """A 4xx with CKAN's error body as a CkanError; anything else stays an HttpError.

    HttpError keeps the body's first line (cut at 200 characters), which is all of CKAN's
    compact JSON error; a cut one still yields its type and message.
    """
    if exc.status is None or exc.transient or exc.status < 400:
        return exc
    start = exc.reason.find("{")
    if start < 0:
        return exc
    text = exc.reason[start:]
    try:
        error = json.loads(text).get("error")
    except (ValueError, AttributeError):
        found = {
            key: match.group(1)
            for key in ("__type", "message")
            if (match := re.search(rf'"{key}":\s*"((?:[^"\\]|\\.)*)"?', text))
        }
        # a JSON string's escapes (\u00f8, \") as text; a cut one stays as it is
        for key, value in found.items():
            with contextlib.suppress(ValueError):
                found[key] = json.loads(f'"{value}"')
        error = found or None
    if not error:
        return exc
    return _refused(action, f"{where} ({exc.url})", error, exc.status)


def _host(portal: str) -> str:
    return httpx.URL(portal).host or portal


@dataclass(frozen=True, eq=False)
class SearchPage:
    """One package_search answer. Land `raw`, then persist `state` (None: done)."""

    number: int
    raw: bytes = field(repr=False)
    count: int  # the portal's total for the query
    packages: list[dict[str, Any]] = field(repr=False)
    records: list[DatasetRecord] = field(repr=False)
    state: State | None
    request: dict[str, Any]  # the query parameters, for the landing manifest


@dataclass(frozen=True)
class _CkanOffset(Offset):
    """`start`/`rows` paging that first checks CKAN's `success` flag."""

    action: str = "package_search"
    where: str = "CKAN"

    def parse(
        self, response: httpx.Response, state: Mapping[str, Any]
    ) -> tuple[list[Any], State | None]:
        parse_action(response.content, action=self.action, where=self.where)
        return super().parse(response, state)


def package_search(
    client: HttpClient,
    portal: str,
    *,
    q: str | None = None,
    fq: str | None = None,
    rows: int = 100,
    sort: str = "name asc",
    state: Mapping[str, Any] | None = None,
    languages: Sequence[str] = ("da", "en"),
    max_pages: int = DEFAULT_MAX_PAGES,
) -> Iterator[SearchPage]:
    """Every package matching `q`/`fq`, `rows` per answer.

    The default sort is by name, not CKAN's (score, then last modified): an order that a
    dataset edited during the load cannot change, so offset paging neither skips nor repeats.
    """
    if not 1 <= rows <= MAX_ROWS:
        raise ValueError(f"rows must be 1..{MAX_ROWS}, not {rows}")
    params = {k: v for k, v in {"q": q, "fq": fq, "sort": sort}.items() if v is not None}
    where = _host(portal)
    first = client.build_request("GET", action_url(portal, "package_search"), params=params)
    strategy = _CkanOffset(
        "start",
        "rows",
        rows,
        "result.count",
        records_path="result.results",
        max_pages=max_pages,
        where=where,
    )
    request = {"action": "package_search", **params, "rows": rows}
    # A plain function returning a generator: bad arguments fail here, not at first next().
    return _search_pages(client, first, strategy, state, portal, languages, request)


def _search_pages(
    client: HttpClient,
    first: httpx.Request,
    strategy: _CkanOffset,
    state: Mapping[str, Any] | None,
    portal: str,
    languages: Sequence[str],
    request: dict[str, Any],
) -> Iterator[SearchPage]:
    first_count: int | None = None
    try:
        for page in paginate(client, first, strategy, state=state):
            count = int(json.loads(page.response.content)["result"]["count"])
            if first_count is None:
                first_count = count
            elif count != first_count:
                # Offsets count from the start of a list that just grew or shrank: the pages
                # already yielded and the next one overlap or leave a gap.
                raise CkanError(
                    f"CKAN package_search at {strategy.where}: the number of matching "
                    f"datasets changed from {first_count} to {count} while paging (page "
                    f"{page.number}), so a dataset may have been skipped or repeated. "
                    "Run the search again from the start",
                    action="package_search",
                )
            yield SearchPage(
                number=page.number,
                raw=page.response.content,
                count=count,
                packages=page.records,
                records=[
                    dataset_record(p, portal=portal, languages=languages) for p in page.records
                ],
                state=page.state,
                request=request,
            )
    except HttpError as exc:
        raise _from_http_error(exc, "package_search", strategy.where) from exc


@dataclass(frozen=True, eq=False)
class PackageShow:
    raw: bytes = field(repr=False)
    package: dict[str, Any] = field(repr=False)
    record: DatasetRecord


def package_show(
    client: HttpClient,
    portal: str,
    package_id: str,
    *,
    languages: Sequence[str] = ("da", "en"),
) -> PackageShow:
    """One dataset by id or name."""
    where = _host(portal)
    try:
        response = client.get(action_url(portal, "package_show"), params={"id": package_id})
    except HttpError as exc:
        raise _from_http_error(exc, f"package_show {package_id!r}", where) from exc
    package = parse_action(response.content, action=f"package_show {package_id!r}", where=where)
    if not isinstance(package, dict):
        raise FormatError(f"{where} package_show", "result is not a package", "Check the id")
    record = dataset_record(package, portal=portal, languages=languages)
    return PackageShow(raw=response.content, package=package, record=record)


# -- files


def site_url(raw: bytes) -> str | None:
    """The portal's public address (CKAN's `site_url`) from an action answer's `help` link,
    e.g. `https://ckan.opendata.swiss`; None when the answer has no such link."""
    try:
        link = json.loads(raw).get("help")
    except (ValueError, AttributeError):
        return None
    if not isinstance(link, str) or "/api/3/action/" not in link:
        return None
    return link.split("/api/3/action/")[0].rstrip("/")


def via_portal(url: str, site: str | None, portal: str) -> str:
    """`url` fetched through `portal` when it is a link under the portal's own `site`
    address (a file uploaded to the portal); any other URL (another host) as it is."""
    portal = portal.rstrip("/")
    if not site or site == portal or not url.startswith(f"{site}/"):
        return url
    return portal + url[len(site) :]


def choose_resource(
    record: DatasetRecord, *, resource: str | None = None, format: str | None = None
) -> ResourceRecord:
    """The dataset's file to load: `resource` (an id or a name), else the only resource of
    `format` (case-insensitive), else the only resource; CkanError when that is not one file."""
    candidates = [r for r in record.resources if r.url]
    if resource is not None:
        chosen = [r for r in candidates if resource in (r.id, r.name)]
        wanted = f"resource {resource!r}"
    elif format is not None:
        chosen = [r for r in candidates if (r.format or "").casefold() == format.casefold()]
        wanted = f"a {format} resource"
    else:
        chosen, wanted = candidates, "a resource"
    if len(chosen) == 1:
        return chosen[0]
    offered = ", ".join(f"{r.name or r.id} ({r.format or '?'})" for r in candidates) or "none"
    problem = "has no" if not chosen else f"has {len(chosen)} matching"
    raise CkanError(
        f"CKAN dataset {record.name!r} at {record.portal} {problem} {wanted} (resources: "
        f"{offered}). Name the file with `resource:` (its id or name) in the dataset YAML",
        action="package_show",
    )


@dataclass(frozen=True, eq=False)
class Download:
    url: str  # redacted
    size: int
    sha256: str
    media_type: str | None
    content: bytes | None = field(repr=False)  # when no `dest` was given
    path: Path | None  # the complete file, when `dest` was given


def download_resource(
    client: HttpClient,
    url: str,
    *,
    max_bytes: int,
    dest: str | Path | None = None,
    send_auth: bool = False,
    chunk_size: int = 1 << 16,
    sleep: Callable[[float], None] = time.sleep,
) -> Download:
    """GET a resource file, streamed, refusing more than `max_bytes` (decoded) bytes.

    With `dest`, the bytes go to `<dest>.part` and are moved to `dest` only when complete, so
    a reader never sees half a file; else they are returned in memory. Retries like the
    shared client (429/5xx/transport errors, Retry-After), starting the file over.
    Resource URLs often point at other hosts than the portal, so the client's credentials
    are sent only with `send_auth=True` (a private file on the portal itself).
    """
    if max_bytes < 0:
        raise ValueError("max_bytes must be >= 0")
    request = client.build_request("GET", url)
    settings = client.settings
    for attempt in range(1, settings.max_attempts + 1):
        last = attempt == settings.max_attempts
        try:
            return _stream(client, request, attempt, max_bytes, dest, send_auth, chunk_size)
        except _Retry as retry:
            if last:
                raise retry.error from None
            sleep(client.delay(attempt, retry.retry_after))
    raise AssertionError("unreachable: the loop returns or raises")  # pragma: no cover


class _Retry(Exception):
    def __init__(self, error: HttpError, retry_after: str | None = None) -> None:
        self.error = error
        self.retry_after = retry_after


def _stream(
    client: HttpClient,
    request: httpx.Request,
    attempt: int,
    max_bytes: int,
    dest: str | Path | None,
    send_auth: bool,
    chunk_size: int,
) -> Download:
    shown = redact_url(request.url)
    auth: Any = httpx.USE_CLIENT_DEFAULT if send_auth else None
    target = Path(dest) if dest is not None else None
    partial = target.with_name(target.name + ".part") if target else None
    digest, size, buffer = hashlib.sha256(), 0, bytearray()

    def failed(reason: str, status: int | None, transient: bool, hint: str) -> HttpError:
        return HttpError(
            "GET",
            shown,
            status=status,
            attempts=attempt,
            reason=reason,
            hint=hint,
            transient=transient,
        )

    try:
        response = client.client.send(request, stream=True, auth=auth)
    except httpx.TransportError as exc:
        reason = f"no response ({type(exc).__name__})"
        raise _Retry(failed(reason, None, True, "Check the network path")) from exc
    try:
        status = response.status_code
        if status in client.settings.retry_statuses:
            error = failed(f"HTTP {status}", status, True, "The file host kept failing; try later")
            raise _Retry(error, response.headers.get("Retry-After"))
        if status >= 400:
            raise failed(
                f"HTTP {status} {response.reason_phrase}",
                status,
                False,
                "Check the resource URL in the portal; it may have moved",
            )
        # Refuse before reading when the server says so; a compressed body's length is not
        # the file's, so only the count of decoded bytes below decides for those.
        declared = response.headers.get("Content-Length", "")
        encoded = response.headers.get("Content-Encoding", "identity") != "identity"
        if declared.isdigit() and not encoded and int(declared) > max_bytes:
            raise _too_large(shown, f"it declares {int(declared)} bytes", max_bytes)
        sink = partial.open("wb") if partial else None
        try:
            for chunk in response.iter_bytes(chunk_size):
                size += len(chunk)
                if size > max_bytes:  # also catches servers that understate or compress
                    raise _too_large(shown, f"it sent more than {max_bytes} bytes", max_bytes)
                digest.update(chunk)
                if sink:
                    sink.write(chunk)
                else:
                    buffer += chunk
        except httpx.TransportError as exc:
            reason = f"the file was cut off after {size} bytes ({type(exc).__name__})"
            raise _Retry(failed(reason, None, True, "Check the network path")) from exc
        finally:
            if sink:
                sink.close()
        if partial and target:
            os.replace(partial, target)
    except BaseException:
        if partial:
            with contextlib.suppress(FileNotFoundError):
                partial.unlink()
        raise
    finally:
        response.close()
    media_type = response.headers.get("Content-Type", "").split(";")[0].strip().lower() or None
    return Download(
        url=shown,
        size=size,
        sha256=digest.hexdigest(),
        media_type=media_type,
        content=None if target else bytes(buffer),
        path=target,
    )


def _too_large(shown: str, how: str, max_bytes: int) -> DownloadTooLargeError:
    return DownloadTooLargeError(
        f"GET {shown}: the file is larger than max_bytes={max_bytes} ({how}); nothing was "
        "kept. Raise max_bytes for this dataset if the file is really that large",
        action="download",
    )
