"""Client certificates (mTLS) against a TLS server on 127.0.0.1 that requires one.

The venv has no `cryptography`, so a CA, a server and a client certificate are made with the
`openssl` command-line tool into a temporary folder (skipped, saying so, if it is missing).
Danish register services (e.g. CPR, parts of Datafordeler) authenticate systems this way.
"""

from __future__ import annotations

import shutil
import ssl
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from connectors.http import HttpClient, HttpError, HttpSettings, make_client
from tests.connectors.fakeserver import FakeServer, Reply, Request
from tests.helpers import wait_until

SETTINGS = HttpSettings(connect_timeout=2, read_timeout=2, max_attempts=1)
RETRYING = HttpSettings(connect_timeout=2, read_timeout=2, max_attempts=3, backoff_base=0)


@dataclass(frozen=True)
class Pki:
    ca: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path
    client_pem: Path  # certificate and key in one file
    stranger_cert: Path  # signed by another CA
    stranger_key: Path


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=30)


def _leaf(folder: Path, name: str, ca: str, usage: str, san: str | None = None) -> None:
    ext = folder / f"{name}.ext"
    lines = [
        "basicConstraints=critical,CA:FALSE",
        "keyUsage=critical,digitalSignature",
        f"extendedKeyUsage={usage}",
        "subjectKeyIdentifier=hash",
        "authorityKeyIdentifier=keyid,issuer",
    ]
    if san:
        lines.append(f"subjectAltName={san}")
    ext.write_text("\n".join(lines) + "\n")
    _openssl(
        "req",
        "-new",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
        "-keyout",
        f"{name}.key",
        "-out",
        f"{name}.csr",
        "-subj",
        f"/CN={name}",
        cwd=folder,
    )
    _openssl(
        "x509",
        "-req",
        "-in",
        f"{name}.csr",
        "-CA",
        f"{ca}.pem",
        "-CAkey",
        f"{ca}.key",
        "-CAcreateserial",
        "-days",
        "2",
        "-sha256",
        "-extfile",
        ext.name,
        "-out",
        f"{name}.pem",
        cwd=folder,
    )


def _ca(folder: Path, name: str) -> None:
    _openssl(
        "req",
        "-x509",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
        "-keyout",
        f"{name}.key",
        "-out",
        f"{name}.pem",
        "-days",
        "2",
        "-subj",
        f"/CN={name}",
        "-addext",
        "basicConstraints=critical,CA:TRUE",
        "-addext",
        "keyUsage=critical,keyCertSign,cRLSign",
        cwd=folder,
    )


@pytest.fixture(scope="module")
def pki(tmp_path_factory) -> Pki:
    if shutil.which("openssl") is None:
        pytest.skip("mTLS not tested: neither `cryptography` nor the openssl CLI is available")
    folder = tmp_path_factory.mktemp("pki")
    _ca(folder, "test-ca")
    _ca(folder, "other-ca")
    _leaf(folder, "server", "test-ca", "serverAuth", san="IP:127.0.0.1")
    _leaf(folder, "kommune-client", "test-ca", "clientAuth")
    _leaf(folder, "stranger", "other-ca", "clientAuth")
    combined = folder / "kommune-client-combined.pem"
    combined.write_text(
        (folder / "kommune-client.pem").read_text() + (folder / "kommune-client.key").read_text()
    )
    return Pki(
        ca=folder / "test-ca.pem",
        server_cert=folder / "server.pem",
        server_key=folder / "server.key",
        client_cert=folder / "kommune-client.pem",
        client_key=folder / "kommune-client.key",
        client_pem=combined,
        stranger_cert=folder / "stranger.pem",
        stranger_key=folder / "stranger.key",
    )


@pytest.fixture
def tls_server(pki: Pki):
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(pki.server_cert, pki.server_key)
    context.verify_mode = ssl.CERT_REQUIRED  # no client certificate, no connection
    context.load_verify_locations(pki.ca)
    server = FakeServer(tls=context)

    @server.route("GET", "/cpr/ping")
    def ping(request: Request) -> Reply:
        return Reply.json({"ok": True})

    with server:
        yield server


def _get(server: FakeServer, settings: HttpSettings = SETTINGS, **kwargs) -> HttpClient:
    client = HttpClient(settings, base_url=server.url, **kwargs)
    try:
        return client.get("/cpr/ping")
    finally:
        client.close()


def test_a_client_certificate_opens_the_door(tls_server, pki):
    response = _get(tls_server, cert=(pki.client_cert, pki.client_key), ca_bundle=pki.ca)
    assert response.json() == {"ok": True}
    assert tls_server.tls_failures == []


def test_a_combined_pem_file_works_too(tls_server, pki):
    assert _get(tls_server, cert=pki.client_pem, ca_bundle=pki.ca).status_code == 200


def test_without_a_client_certificate_the_server_refuses(tls_server, pki):
    with pytest.raises(HttpError) as caught:
        _get(tls_server, ca_bundle=pki.ca, settings=RETRYING)
    assert caught.value.status is None and caught.value.attempts == 1  # no use repeating
    assert "refused our client certificate" in str(caught.value)
    assert tls_server.count() == 0  # never got as far as an HTTP request
    # Under TLS 1.3 the client may read the server's alert before the server's handler thread
    # has recorded its side of the failed handshake.
    wait_until(lambda: tls_server.tls_failures, "the server to record the handshake", 5)


def test_a_certificate_from_another_ca_is_refused(tls_server, pki):
    with pytest.raises(HttpError, match="refused our client certificate"):
        _get(tls_server, cert=(pki.stranger_cert, pki.stranger_key), ca_bundle=pki.ca)
    assert tls_server.count() == 0


def test_the_server_is_verified_against_the_public_cas_by_default(tls_server, pki):
    with pytest.raises(HttpError, match=r"CERTIFICATE_VERIFY_FAILED.*ca_bundle=") as caught:
        _get(tls_server, cert=(pki.client_cert, pki.client_key), settings=RETRYING)
    assert caught.value.attempts == 1


def test_make_client_builds_one_ssl_context_without_httpx_deprecations(pki, recwarn):
    client = make_client(SETTINGS, cert=(pki.client_cert, pki.client_key), ca_bundle=pki.ca)
    client.close()
    assert [w for w in recwarn if issubclass(w.category, DeprecationWarning)] == []
