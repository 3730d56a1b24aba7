"""The next page's request, rebuilt from the first one (which `client.build_request` made,
with the base URL and default headers) with another URL, extra query parameters or a
changed JSON body.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import httpx

from connectors.http import redact_url
from connectors.paging.core import PagingError

# httpx derives these from the new URL and body; copied, they would describe the old ones.
_DROPPED_HEADERS = {"host", "content-length", "transfer-encoding"}


def rebuild(
    request: httpx.Request,
    *,
    method: str | None = None,
    url: httpx.URL | str | None = None,
    params: Mapping[str, Any] | None = None,
    body: Any = ...,
) -> httpx.Request:
    """A copy of `request` with another URL, extra query parameters or a new JSON body."""
    target = httpx.URL(url) if url is not None else request.url
    if params:
        target = target.copy_merge_params(params)
    headers = [
        (name, value)
        for name, value in request.headers.multi_items()
        if name.lower() not in _DROPPED_HEADERS
    ]
    if body is ...:
        return httpx.Request(
            method or request.method, target, headers=headers, content=request.read() or None
        )
    return httpx.Request(method or request.method, target, headers=headers, json=body)


def json_body(request: httpx.Request) -> dict[str, Any]:
    """The first request's JSON object body, which POST strategies page through; {} if none."""
    content = request.read()
    if not content:
        return {}
    try:
        body = json.loads(content)
    except ValueError:
        raise PagingError(
            f"{request.method} {redact_url(request.url)}: the first request's body is not "
            "JSON; build it with json={...}"
        ) from None
    if not isinstance(body, dict):
        raise PagingError(f"{request.method} {redact_url(request.url)}: body is not an object")
    return body


def set_path(body: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    """A deep-enough copy of `body` with `value` at the dot path."""
    head, _, rest = path.partition(".")
    copy = dict(body)
    if rest:
        inner = copy.get(head)
        copy[head] = set_path(inner if isinstance(inner, dict) else {}, rest, value)
    elif value is None:
        copy.pop(head, None)
    else:
        copy[head] = value
    return copy
