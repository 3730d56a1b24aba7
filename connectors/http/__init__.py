"""One shared HTTP client for every connector.

- `HttpSettings`: timeouts, retry policy, rate limit and User-Agent, frozen.
- `make_client(settings, auth=..., cert=...)`: a configured `httpx.Client` (timeouts, UA,
  redirects, TLS and client certificates, a per-host rate limiter in the transport).
- `HttpClient`: that client plus retries. Retries 429/500/502/503/504 and transport errors
  (connect/read errors and timeouts, connection resets, bodies shorter than Content-Length)
  with exponential backoff and full jitter, honours `Retry-After` (seconds or HTTP-date,
  capped), and raises one `HttpError` that says what failed and what to do.
- Auth strategies usable as `httpx.Auth`: `ApiKeyAuth`, `BasicAuth`, `BearerAuth`,
  `OAuth2ClientCredentials`; client certificates via `make_client(cert=...)`.
- `get_if_changed`: conditional GET with ETag / Last-Modified.

Secrets (keys, passwords, tokens) never appear in our logs or error messages: URLs are
redacted and every message is scrubbed of the auth's secret values.

Import from here; the modules are the layout, not the API: `settings`, `errors`,
`redaction`, `auth`, `ratelimit`, `client` (make_client), `hints` (what a failure means),
`retrying` (HttpClient) and `conditional` (get_if_changed).
"""

from connectors.http.auth import ApiKeyAuth, BasicAuth, BearerAuth, OAuth2ClientCredentials
from connectors.http.client import CertSpec, make_client
from connectors.http.conditional import Changed, Unchanged, Validators, get_if_changed
from connectors.http.errors import HttpError, TokenRequestError

# HttpError pickles by reference to this function (Dagster sends errors between
# processes); errors pickled before the split name it here, so it stays reachable here.
from connectors.http.errors import _rebuild_http_error as _rebuild_http_error
from connectors.http.ratelimit import RateLimitedTransport, RateLimiter
from connectors.http.redaction import REDACTED, SECRET_PARAM_NAMES, redact_url
from connectors.http.retrying import HttpClient, parse_retry_after
from connectors.http.settings import (
    PROJECT_URL,
    RETRY_STATUSES,
    HttpSettings,
    RateLimit,
    default_user_agent,
)

__all__ = [
    "PROJECT_URL",
    "REDACTED",
    "RETRY_STATUSES",
    "SECRET_PARAM_NAMES",
    "ApiKeyAuth",
    "BasicAuth",
    "BearerAuth",
    "CertSpec",
    "Changed",
    "HttpClient",
    "HttpError",
    "HttpSettings",
    "OAuth2ClientCredentials",
    "RateLimit",
    "RateLimitedTransport",
    "RateLimiter",
    "TokenRequestError",
    "Unchanged",
    "Validators",
    "default_user_agent",
    "get_if_changed",
    "make_client",
    "parse_retry_after",
    "redact_url",
]
