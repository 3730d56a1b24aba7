"""`make_client`: a configured `httpx.Client` (timeouts, User-Agent, redirects, TLS and
client certificates, the per-host rate limiter, auth).

No retries at this level: `HttpClient` (in `retrying`) wraps such a client and adds them.
"""

from __future__ import annotations

import ssl
from collections.abc import Mapping
from pathlib import Path

import httpx

from connectors.http.ratelimit import RateLimitedTransport, RateLimiter
from connectors.http.redaction import auth_secret_params, redact_httpx_logs
from connectors.http.settings import HttpSettings

CertSpec = str | Path | tuple[str | Path, str | Path] | tuple[str | Path, str | Path, str]


def _ssl_context(
    cert: CertSpec | None, ca_bundle: str | Path | None, trust_env: bool
) -> ssl.SSLContext | None:
    if cert is None and ca_bundle is None:
        return None
    if ca_bundle is not None:
        context = ssl.create_default_context(cafile=str(ca_bundle))
    else:
        context = httpx.create_ssl_context(verify=True, trust_env=trust_env)
    if cert is not None:
        if isinstance(cert, tuple):
            certfile, keyfile, *password = cert
            context.load_cert_chain(str(certfile), str(keyfile), *password)
        else:
            context.load_cert_chain(str(cert))
    return context


def make_client(
    settings: HttpSettings | None = None,
    *,
    auth: httpx.Auth | None = None,
    cert: CertSpec | None = None,
    ca_bundle: str | Path | None = None,
    base_url: str = "",
    headers: Mapping[str, str] | None = None,
    limiter: RateLimiter | None = None,
    transport: httpx.BaseTransport | None = None,
) -> httpx.Client:
    """A configured httpx.Client: timeouts, User-Agent, redirects, TLS, rate limit, auth.

    `cert` is a client certificate for mTLS: a PEM path holding cert and key, or
    `(certfile, keyfile[, password])`. `ca_bundle` trusts a private CA instead of the
    public ones. No retries here: use `HttpClient` for those.
    """
    settings = settings or HttpSettings()
    if transport is not None and (cert is not None or ca_bundle is not None):
        raise ValueError(
            "cert= and ca_bundle= configure the default transport: not with transport="
        )
    context = _ssl_context(cert, ca_bundle, settings.trust_env)
    verify: ssl.SSLContext | bool = context if context is not None else True
    inner = transport or httpx.HTTPTransport(verify=verify, trust_env=settings.trust_env)
    if limiter is None and settings.rate_limit is not None:
        limiter = RateLimiter.from_settings(settings.rate_limit)
    if limiter is not None:
        inner = RateLimitedTransport(inner, limiter)
    redact_httpx_logs(auth_secret_params(auth))
    return httpx.Client(
        auth=auth,
        base_url=base_url,
        headers={"User-Agent": settings.user_agent, **(headers or {})},
        timeout=settings.timeout,
        follow_redirects=settings.follow_redirects,
        transport=inner,
        trust_env=settings.trust_env,
    )
