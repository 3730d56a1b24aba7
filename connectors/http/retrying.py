"""`HttpClient`: the shared client plus retries.

Retries 429/500/502/503/504 and transport errors (connect/read errors and timeouts,
connection resets, bodies shorter than Content-Length) with exponential backoff and full
jitter, honours `Retry-After` (seconds or HTTP-date, capped), and raises one `HttpError`
that says what failed and what to do, with the auth's secrets scrubbed from it.
"""

from __future__ import annotations

import logging
import random as _random
import re
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any

import httpx

from connectors.http.client import CertSpec, make_client
from connectors.http.errors import HttpError, TokenRequestError
from connectors.http.hints import first_line, hint_for_status, permanent_problem
from connectors.http.ratelimit import RateLimiter
from connectors.http.redaction import auth_secret_params, auth_secrets, redact_url, scrub
from connectors.http.settings import HttpSettings

# The package's name, as before it was split into modules: logging config that names
# "connectors.http" keeps matching these records exactly.
log = logging.getLogger("connectors.http")

# A request that is not idempotent is repeated only when the server surely did not act on it.
_REFUSED_STATUSES = frozenset({429, 503})
_NOT_SENT_ERRORS = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """Seconds to wait from a Retry-After value: delta-seconds or an HTTP-date.

    None when absent or unreadable; 0 for a date in the past. Not capped: see
    `HttpSettings.retry_after_cap`.
    """
    if value is None or not value.strip():
        return None
    text = value.strip()
    if re.fullmatch(r"\d+(\.\d+)?", text):
        return float(text)
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:  # "-0000" or no zone: HTTP-dates are always GMT
        when = when.replace(tzinfo=UTC)
    now = now or datetime.now(UTC)
    return max(0.0, (when - now).total_seconds())


class HttpClient:
    """The shared client with retries. Keyword-only methods; use as a context manager.

    `sleep`, `random` and `now` are injectable so tests run fast and deterministic.
    Pass `client=` to wrap an httpx.Client you made with `make_client`; otherwise the
    remaining arguments go to `make_client`.
    """

    def __init__(
        self,
        settings: HttpSettings | None = None,
        *,
        client: httpx.Client | None = None,
        auth: httpx.Auth | None = None,
        cert: CertSpec | None = None,
        ca_bundle: str | Path | None = None,
        base_url: str = "",
        headers: Mapping[str, str] | None = None,
        limiter: RateLimiter | None = None,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
        random: Callable[[], float] = _random.random,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.settings = settings or HttpSettings()
        building = (auth, cert, ca_bundle, limiter, transport, base_url, headers)
        if client is not None and any(building):
            raise ValueError("pass either client= or the arguments to build one, not both")
        self.client = client or make_client(
            self.settings,
            auth=auth,
            cert=cert,
            ca_bundle=ca_bundle,
            base_url=base_url,
            headers=headers,
            limiter=limiter,
            transport=transport,
        )
        self._sleep = sleep
        self._random = random
        self._now = now

    # -- plumbing
    def __enter__(self) -> HttpClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.client.close()

    def build_request(
        self,
        method: str,
        url: str | httpx.URL,
        *,
        params: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
        json: Any = None,
        content: bytes | None = None,
        data: Mapping[str, Any] | None = None,
    ) -> httpx.Request:
        """A request with this client's base URL and default headers (User-Agent)."""
        return self.client.build_request(
            method, url, params=params, headers=headers, json=json, content=content, data=data
        )

    def request(
        self,
        method: str,
        url: str | httpx.URL,
        *,
        params: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
        json: Any = None,
        content: bytes | None = None,
        data: Mapping[str, Any] | None = None,
        idempotent: bool = True,
    ) -> httpx.Response:
        request = self.build_request(
            method, url, params=params, headers=headers, json=json, content=content, data=data
        )
        return self.send(request, idempotent=idempotent)

    def get(
        self,
        url: str | httpx.URL,
        *,
        params: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> httpx.Response:
        return self.request("GET", url, params=params, headers=headers)

    def post(
        self,
        url: str | httpx.URL,
        *,
        json: Any = None,
        params: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> httpx.Response:
        return self.request("POST", url, json=json, params=params, headers=headers)

    # -- the retry loop
    def send(self, request: httpx.Request, *, idempotent: bool = True) -> httpx.Response:
        """Send with retries; the returned response is read and has status < 400.

        `idempotent=False` (e.g. advancing an Elasticsearch scroll) repeats the request
        only when the server surely did not act on it: connect errors, 429 and 503.
        """
        settings = self.settings
        for attempt in range(1, settings.max_attempts + 1):
            last = attempt == settings.max_attempts
            try:
                response = self.client.send(request)
            except httpx.TransportError as exc:
                permanent = permanent_problem(exc)
                if permanent is not None:
                    raise self._permanent_error(request, attempt, exc, permanent) from exc
                retryable = idempotent or isinstance(exc, _NOT_SENT_ERRORS)
                reason = f"no complete response ({type(exc).__name__}: {exc})"
                if last or not retryable:
                    raise self._transport_error(request, attempt, reason, retryable) from exc
                self._wait(request, attempt, reason, None)
                continue
            except TokenRequestError as exc:
                if exc.status not in settings.retry_statuses or last:
                    raise self._token_error(request, attempt, exc) from None
                self._wait(request, attempt, f"token endpoint {exc.status}", exc.retry_after)
                continue
            status = response.status_code
            if status < 400:
                return response
            retryable = status in settings.retry_statuses and (
                idempotent or status in _REFUSED_STATUSES
            )
            if not retryable or last:
                raise self._status_error(request, response, attempt)
            retry_after = response.headers.get("Retry-After")
            response.close()
            self._wait(request, attempt, f"HTTP {status}", retry_after)
        raise AssertionError("unreachable: the loop returns or raises")  # pragma: no cover

    def delay(self, attempt: int, retry_after: str | None = None) -> float:
        """Seconds to wait after failed attempt `attempt` (1-based)."""
        settings = self.settings
        told = parse_retry_after(retry_after, now=self._now())
        if told is not None:
            return min(told, settings.retry_after_cap)
        ceiling = min(settings.backoff_cap, settings.backoff_base * 2 ** (attempt - 1))
        return self._random() * ceiling  # full jitter

    def _wait(
        self, request: httpx.Request, attempt: int, reason: str, retry_after: str | None
    ) -> None:
        seconds = self.delay(attempt, retry_after)
        log.warning(
            "%s %s: %s; attempt %d of %d, retrying in %.2f s",
            request.method,
            self._url(request),
            self._clean(reason),
            attempt,
            self.settings.max_attempts,
            seconds,
        )
        self._sleep(seconds)

    # -- messages
    def _secrets(self) -> tuple[str, ...]:
        return auth_secrets(self.client.auth)

    def _url(self, request: httpx.Request) -> str:
        return redact_url(request.url, auth_secret_params(self.client.auth))

    def _clean(self, text: str) -> str:
        return scrub(text, self._secrets())

    def _transport_error(
        self, request: httpx.Request, attempts: int, reason: str, retried: bool
    ) -> HttpError:
        s = self.settings
        if retried:
            hint = (
                f"Check the network path to {request.url.host} (DNS, proxy, firewall), or "
                f"raise the timeouts (connect {s.connect_timeout:g} s, read {s.read_timeout:g} s)"
            )
        else:
            hint = (
                "The server may have acted on the request, so it was not repeated "
                "automatically: start the operation again"
            )
        return HttpError(
            request.method,
            self._url(request),
            status=None,
            attempts=attempts,
            reason=self._clean(reason),
            hint=hint,
            transient=True,
        )

    def _permanent_error(
        self, request: httpx.Request, attempts: int, exc: Exception, hint: str
    ) -> HttpError:
        return HttpError(
            request.method,
            self._url(request),
            status=None,
            attempts=attempts,
            reason=self._clean(f"{type(exc).__name__}: {exc}"),
            hint=hint,
            transient=False,
        )

    def _status_error(
        self, request: httpx.Request, response: httpx.Response, attempts: int
    ) -> HttpError:
        status = response.status_code
        reason = f"HTTP {status} {response.reason_phrase}".rstrip()
        if status not in self.settings.retry_statuses:
            body = first_line(response)
            if body:
                reason += f": {body}"
        response.close()
        return HttpError(
            request.method,
            self._url(request),
            status=status,
            attempts=attempts,
            reason=self._clean(reason),
            hint=hint_for_status(status, request.url.host),
            transient=status in self.settings.retry_statuses,
        )

    def _token_error(
        self, request: httpx.Request, attempts: int, exc: TokenRequestError
    ) -> HttpError:
        transient = exc.status in self.settings.retry_statuses
        hint = (
            hint_for_status(exc.status, request.url.host)
            if transient
            else "The token endpoint refused the client: check client_id, client_secret "
            "and scope for this source"
        )
        return HttpError(
            request.method,
            self._url(request),
            status=exc.status,
            attempts=attempts,
            reason=self._clean(f"could not get an OAuth2 token: {exc}"),
            hint=hint,
            transient=transient,
        )
