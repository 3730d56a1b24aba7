"""Auth strategies usable as `httpx.Auth`: API key, bearer token, HTTP Basic and the OAuth2
client-credentials grant.

Besides authenticating, each one names its secrets (`secret_values()`, and
`secret_params()` when the secret travels in the query) so that redaction can keep them out
of logs and error messages, and none shows them in its repr. Client certificates are not an
auth: they go to `make_client(cert=...)`.
"""

from __future__ import annotations

import base64
import threading
import time
from collections.abc import Callable, Generator, Iterator, Mapping
from typing import Literal
from urllib.parse import quote_plus

import httpx

from connectors.http.errors import TokenRequestError


class ApiKeyAuth(httpx.Auth):
    """An API key sent in a header (default `X-API-Key`) or a query parameter (`param=`)."""

    def __init__(self, key: str, *, header: str | None = None, param: str | None = None):
        if header and param:
            raise ValueError("ApiKeyAuth takes a header or a query parameter, not both")
        if not key:
            raise ValueError("ApiKeyAuth needs a non-empty key")
        self._key = key
        self.header = None if param else (header or "X-API-Key")
        self.param = param

    def auth_flow(self, request: httpx.Request) -> Iterator[httpx.Request]:
        if self.param:
            request.url = request.url.copy_set_param(self.param, self._key)
        else:
            request.headers[self.header or "X-API-Key"] = self._key
        yield request

    def secret_values(self) -> tuple[str, ...]:
        return (self._key,)

    def secret_params(self) -> tuple[str, ...]:
        return (self.param,) if self.param else ()

    def __repr__(self) -> str:
        where = f"param={self.param!r}" if self.param else f"header={self.header!r}"
        return f"ApiKeyAuth({where})"


class BearerAuth(httpx.Auth):
    """A fixed bearer token (`Authorization: Bearer <token>`)."""

    def __init__(self, token: str) -> None:
        self._token = token

    def auth_flow(self, request: httpx.Request) -> Iterator[httpx.Request]:
        request.headers["Authorization"] = f"Bearer {self._token}"
        yield request

    def secret_values(self) -> tuple[str, ...]:
        return (self._token,)

    def __repr__(self) -> str:
        return "BearerAuth(***)"


class BasicAuth(httpx.BasicAuth):
    """httpx's basic auth, plus the secret values we must keep out of messages."""

    def __init__(self, username: str, password: str) -> None:
        super().__init__(username, password)
        token = base64.b64encode(f"{username}:{password}".encode()).decode()
        self._secrets = (password, token)

    def secret_values(self) -> tuple[str, ...]:
        return self._secrets

    def __repr__(self) -> str:
        return "BasicAuth(***)"


class OAuth2ClientCredentials(httpx.Auth):
    """OAuth2 client-credentials grant (RFC 6749 §4.4).

    Fetches a token from `token_url` through the same client (so timeouts, TLS, proxies
    and the rate limiter apply), caches it until `leeway` seconds before it expires, and
    on a 401 fetches a fresh token and repeats the request once. Thread-safe.
    `client_auth="basic"` sends the client id/secret as HTTP Basic (the RFC's preference),
    `"body"` sends them as form fields.
    """

    requires_request_body = True

    def __init__(
        self,
        token_url: str,
        client_id: str,
        client_secret: str,
        scope: str | None = None,
        *,
        client_auth: Literal["basic", "body"] = "basic",
        leeway: float = 60.0,
        extra_params: Mapping[str, str] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.token_url = token_url
        self.client_id = client_id
        self._client_secret = client_secret
        self.scope = scope
        self.client_auth = client_auth
        self.leeway = leeway
        self.extra_params = dict(extra_params or {})
        self._clock = clock
        self._lock = threading.Lock()
        self._token: str | None = None
        self._expires_at: float | None = None
        self.tokens_fetched = 0

    def secret_values(self) -> tuple[str, ...]:
        pair = f"{quote_plus(self.client_id)}:{quote_plus(self._client_secret)}"
        basic = base64.b64encode(pair.encode()).decode()
        return tuple(s for s in (self._client_secret, basic, self._token) if s)

    def __repr__(self) -> str:
        return f"OAuth2ClientCredentials({self.token_url!r}, client_id={self.client_id!r})"

    def _valid_token(self) -> str | None:
        if self._token is None:
            return None
        if self._expires_at is not None and self._clock() >= self._expires_at:
            return None
        return self._token

    def _token_request(self, like: httpx.Request) -> httpx.Request:
        form = {"grant_type": "client_credentials", **self.extra_params}
        if self.scope:
            form["scope"] = self.scope
        headers = {"Accept": "application/json"}
        if "User-Agent" in like.headers:
            headers["User-Agent"] = like.headers["User-Agent"]
        if self.client_auth == "body":
            form |= {"client_id": self.client_id, "client_secret": self._client_secret}
        else:  # RFC 6749 §2.3.1: both form-encoded, then HTTP Basic
            pair = f"{quote_plus(self.client_id)}:{quote_plus(self._client_secret)}"
            headers["Authorization"] = "Basic " + base64.b64encode(pair.encode()).decode()
        return httpx.Request("POST", self.token_url, data=form, headers=headers)

    def _store(self, response: httpx.Response) -> str:
        response.read()
        if response.status_code != 200:
            raise TokenRequestError(
                response.status_code,
                _oauth_error_detail(response),
                response.headers.get("Retry-After"),
            )
        try:
            payload = response.json()
            token = payload["access_token"]
        except (ValueError, KeyError, TypeError):
            raise TokenRequestError(200, "the answer has no access_token") from None
        expires_in = payload.get("expires_in")
        self._token = str(token)
        self._expires_at = None
        if expires_in is not None:
            seconds = float(expires_in)
            self._expires_at = self._clock() + seconds - min(self.leeway, seconds / 2)
        self.tokens_fetched += 1
        return self._token

    def sync_auth_flow(
        self, request: httpx.Request
    ) -> Generator[httpx.Request, httpx.Response, None]:
        request.read()
        with self._lock:
            token = self._valid_token()
            if token is None:
                token = self._store((yield self._token_request(request)))
        request.headers["Authorization"] = f"Bearer {token}"
        response = yield request
        if response.status_code != 401:
            return
        with self._lock:
            if self._token == token:  # nobody refreshed it meanwhile
                self._token = None
                token = self._store((yield self._token_request(request)))
            else:
                token = self._valid_token() or self._store((yield self._token_request(request)))
        request.headers["Authorization"] = f"Bearer {token}"
        yield request

    def auth_flow(self, request: httpx.Request) -> Iterator[httpx.Request]:
        raise NotImplementedError("OAuth2ClientCredentials supports the sync client only")


def _oauth_error_detail(response: httpx.Response) -> str:
    # RFC 6749 §5.2 error fields only: a token endpoint may echo form fields elsewhere.
    try:
        payload = response.json()
    except ValueError:
        return f"HTTP {response.status_code}"
    if not isinstance(payload, dict):
        return f"HTTP {response.status_code}"
    parts = [str(payload.get(k)) for k in ("error", "error_description") if payload.get(k)]
    return ": ".join(parts) or f"HTTP {response.status_code}"
