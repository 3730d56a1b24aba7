"""Conditional GET with ETag / Last-Modified: no download when the service says the
version we hold is current. The caller persists the `Validators` between runs.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import Any, Literal

import httpx

from connectors.http.retrying import HttpClient


@dataclass(frozen=True)
class Validators:
    """What the service said identifies this version; persist it for the next run."""

    etag: str | None = None
    last_modified: str | None = None

    def as_dict(self) -> dict[str, str | None]:
        return {"etag": self.etag, "last_modified": self.last_modified}


@dataclass(frozen=True)
class Unchanged:
    """304 Not Modified: the version we hold is current."""

    validators: Validators
    changed: Literal[False] = False


@dataclass(frozen=True)
class Changed:
    """A new (or first) version, with the validators to send next time."""

    response: httpx.Response
    validators: Validators
    changed: Literal[True] = True


def get_if_changed(
    client: HttpClient,
    url: str | httpx.URL,
    *,
    etag: str | None = None,
    last_modified: str | datetime | None = None,
    params: Mapping[str, Any] | None = None,
    headers: Mapping[str, str] | None = None,
) -> Changed | Unchanged:
    """GET with If-None-Match / If-Modified-Since. A service that ignores them just
    answers 200, which comes back as Changed (landing's content hash still dedupes)."""
    if isinstance(last_modified, datetime):
        last_modified = format_datetime(last_modified.astimezone(UTC), usegmt=True)
    conditional = dict(headers or {})
    if etag:
        conditional["If-None-Match"] = etag
    if last_modified:
        conditional["If-Modified-Since"] = last_modified
    response = client.request("GET", url, params=params, headers=conditional)
    if response.status_code == 304:
        return Unchanged(
            Validators(
                response.headers.get("ETag", etag),
                response.headers.get("Last-Modified", last_modified),
            )
        )
    return Changed(
        response,
        Validators(response.headers.get("ETag"), response.headers.get("Last-Modified")),
    )
