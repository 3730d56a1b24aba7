"""Whether the lake's store can commit Delta versions atomically, checked before anything is
written, with a message saying what to change where it cannot.

Delta commits are only safe where a commit file can be created if-absent, atomically. The lake
refuses configurations without that guarantee:
- local paths on network shares (NFS, SMB/CIFS, sshfs and other FUSE network mounts), found
  from the mount table of the path, and local paths the table readers cannot open;
- S3 services that ignore conditional PUT (`If-None-Match: *`), found by a probe run once per
  process and store: a marker object is PUT twice with that header, and the second PUT must
  be refused (HTTP 412). deltalake creates each commit file that way; a service that accepts
  the second PUT lets two loads write the same Delta version, silently losing one batch;
- pre-deltalake-1.0 S3 settings (`AWS_S3_ALLOW_UNSAFE_RENAME`, DynamoDB locking), which turn
  off exactly that guarantee (refused by `storage.storage_options`).
Azure Blob Storage honours conditional PUT by design; it is probed once per process only for
access (credentials, container, endpoint), so a mistake there is one line at the start.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import hmac
import os
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote, urlsplit

from lake.errors import ConfigError, without_colours
from lake.storage import (
    MAX_DETAIL,
    NO_AZURE_ACCOUNT,
    LakeLocation,
    azure_endpoint,
    export_connection_string,
    join_uri,
    parse_lake_uri,
    shown,
    storage_options,
    truthy,
)

# File systems where rename-if-absent is not atomic across clients (or not atomic at all).
NETWORK_FILE_SYSTEMS = frozenset(
    {
        "nfs",
        "nfs4",
        "cifs",
        "smb",
        "smb2",
        "smb3",
        "smbfs",
        "ncpfs",
        "afs",
        "glusterfs",
        "fuse.sshfs",
        "sshfs",
        "fuse.s3fs",
        "fuse.goofys",
        "fuse.rclone",
        "fuse.gcsfuse",
        "fuse.blobfuse",
        "fuse.blobfuse2",
        "fuse.mountpoint-s3",
        "fuse.davfs",
        "davfs",
    }
)


@dataclass(frozen=True)
class Mount:
    device: str
    mount_point: str
    fs_type: str


def parse_mounts(text: str) -> list[Mount]:
    """Rows of /proc/self/mounts (fstab format; spaces in paths are escaped as \\040)."""
    mounts = []
    for line in text.splitlines():
        fields = line.split()
        if len(fields) >= 3:
            device, point, fs_type = (_unescape_mount(f) for f in fields[:3])
            mounts.append(Mount(device, point, fs_type))
    return mounts


def _unescape_mount(field: str) -> str:
    for code, char in (("\\040", " "), ("\\011", "\t"), ("\\012", "\n"), ("\\134", "\\")):
        field = field.replace(code, char)
    return field


def mount_of(path: str | os.PathLike[str], mounts_text: str) -> Mount | None:
    """The mount holding `path` (absolute, symlinks resolved): the longest matching mount
    point, the last one mounted where several share it."""
    target = Path(path).parts
    best: Mount | None = None
    for mount in parse_mounts(mounts_text):
        point = Path(mount.mount_point).parts
        if target[: len(point)] == point and (
            best is None or len(point) >= len(Path(best.mount_point).parts)
        ):
            best = mount
    return best


def network_share(path: str | os.PathLike[str], mounts_text: str) -> Mount | None:
    """The network mount holding `path`, or None when it is on a local file system."""
    mount = mount_of(path, mounts_text)
    return mount if mount and mount.fs_type.lower() in NETWORK_FILE_SYSTEMS else None


def check_local_path(path: str | os.PathLike[str], mounts_text: str | None = None) -> None:
    """Refuse a local lake on a network share. Reads /proc/self/mounts unless given the text;
    without a mount table (not Linux) nothing can be told and nothing is refused."""
    real = os.path.realpath(path)  # symlinks of the existing part resolved, the rest kept
    if mounts_text is None:
        try:
            mounts_text = Path("/proc/self/mounts").read_text()
        except OSError:
            return
    share = network_share(real, mounts_text)
    if share:
        raise ConfigError(
            f"the lake at {path} is on a network share ({share.fs_type} {share.device} "
            f"mounted at {share.mount_point}): Delta commits need an atomic "
            "create-if-absent, which network file systems do not guarantee, so concurrent "
            "loads could overwrite each other's commits. Put KOMMUNELAKE_HOME on a local "
            "disk, or keep the lake in object storage with KOMMUNELAKE_LAKE_URI=s3://… or az://…"
        )


# deltalake percent-encodes these (and non-ASCII) in the file URIs of a local table, and
# polars looks for `Demo%20Kommune` literally: nothing written there can be read back.
_UNREADABLE_IN_PATHS = frozenset(' "#%<>?[\\]^`{|}')


def check_path_characters(path: str | os.PathLike[str]) -> None:
    """Refuse a local lake whose path has a character the table readers cannot handle."""
    text = os.fspath(path)
    bad = sorted({c for c in text if c in _UNREADABLE_IN_PATHS or not " " < c < "\x7f"})
    if bad:
        raise ConfigError(
            f"the lake at {text} has {', '.join(map(repr, bad))} in its path, which the Delta "
            "readers cannot open (deltalake percent-encodes it and polars then finds no "
            "files). Put KOMMUNELAKE_HOME in a path of ASCII letters, digits and - _ . /"
        )


_checked: set[tuple[str, ...]] = set()
_checked_lock = threading.Lock()


def require_atomic(uri: str, *, mounts_text: str | None = None) -> None:
    """Refuse a lake location where Delta commits would not be atomic (see the module doc).

    Local: the mount table. S3: old settings, then the conditional-PUT probe once per process
    and endpoint+bucket (a marker object under `<uri>/_atomic_probe/`, deleted after).
    Azure: conditional PUT is part of the Blob API; only the account must be known."""
    location = parse_lake_uri(uri)
    if location.kind == "local":
        check_path_characters(location.uri)
        check_local_path(location.uri, mounts_text)
        return
    if location.kind == "azure":
        require_azure_access(uri)
        return
    options = storage_options(uri)  # refuses unsafe settings first
    key = ("s3", options.get("aws_endpoint_url", ""), location.container)
    with _checked_lock:
        if key in _checked:
            return
        probe_conditional_put(uri, options)
        _checked.add(key)


def require_azure_access(uri: str) -> None:
    """Refuse an Azure lake that cannot be read (no account, credential, container or
    endpoint), in one line; probed once per process and account+endpoint+container. It only
    lists, so a reader with a read-only SAS token passes."""
    # Without it deltalake fails deep in the first read ("Generic MicrosoftAzure error:
    # Account must be specified"), which the CLI can only show as an internal error.
    options = storage_options(uri)
    account = options.get("azure_storage_account_name")
    if not account:
        raise ConfigError(NO_AZURE_ACCOUNT)
    _refuse_path_style_endpoint(uri, options)
    export_connection_string()
    key = ("azure", account, azure_endpoint(options) or "", parse_lake_uri(uri).container)
    with _checked_lock:
        if key not in _checked:
            probe_azure_access(uri, options)
            _checked.add(key)


def _refuse_path_style_endpoint(uri: str, options: Mapping[str, str]) -> None:
    """Refuse an endpoint with the account in its path (`http://127.0.0.1:10000/acct`, as
    Azurite is addressed): the start probe and a table's first commit pass through it, but
    deltalake 1.6 then fails every table at its second version ("Invalid table version: 1")."""
    if truthy(options.get("azure_storage_use_emulator")):
        return
    configured = urlsplit(options.get("azure_endpoint", ""))
    if configured.netloc and configured.path.strip("/"):
        raise ConfigError(
            f"Azure lake at {shown(uri)}: the endpoint {configured.scheme}://{configured.netloc}"
            f"{configured.path} has a path, which deltalake cannot commit through past a "
            "table's first version. For Azurite set AZURE_STORAGE_USE_EMULATOR=true and "
            f"AZURITE_BLOB_STORAGE_URL={configured.scheme}://{configured.netloc} (or a "
            "connection string `UseDevelopmentStorage=true`) instead of AZURE_STORAGE_ENDPOINT"
            " or BlobEndpoint; a cloud endpoint names the account in its host"
        )


# Seconds to wait before the probe's second and third try: S3 answers 503 SlowDown or 500
# InternalError now and then, and drops connections; one such answer at the start of a load
# must not refuse the lake (nor be read as a service that ignores conditional PUT).
PROBE_RETRY_DELAYS = (0.5, 1.5)


def probe_conditional_put(uri: str, options: Mapping[str, str] | None = None) -> None:
    """PUT a marker object under `<uri>/_atomic_probe/` twice with `If-None-Match: *`.

    The first PUT must succeed and the second must be refused (412 Precondition Failed, or
    409 while a concurrent conditional write is in flight): that refusal is what deltalake
    relies on to create each commit file only once. A service that accepts the second PUT
    would let two loads write the same Delta version, and one batch would be lost silently.
    Errors a store gives now and then (5xx, a dropped connection) are tried again
    (PROBE_RETRY_DELAYS). The request is signed with AWS Signature V4 from the lake's
    storage options."""
    import httpx

    opts = storage_options(uri) if options is None else options
    location = parse_lake_uri(uri)
    signer = _S3Signer.from_options(opts, location.container)
    try:
        with httpx.Client(timeout=httpx.Timeout(10.0), follow_redirects=False) as client:
            first, second = _probe_twice(client, signer, location.prefix)
    except httpx.HTTPError as error:
        raise ConfigError(
            f"cannot reach the lake at {uri} ({type(error).__name__}): check AWS_ENDPOINT_URL "
            "and the network"
        ) from error
    if first in (401, 403):
        raise ConfigError(
            f"the S3 service refused writing to {uri} (HTTP {first}): check the AWS_* "
            "credentials allow s3:PutObject on the lake prefix"
        )
    if first == 404:
        raise ConfigError(f"bucket {location.container!r} not found: create it first ({uri})")
    failing = next((s for s in (first, second) if _transient(s)), None)
    if failing is not None:
        raise ConfigError(
            f"the S3 service behind {uri} kept answering HTTP {failing} (a server error or "
            f"throttling) while the lake was being checked, {len(PROBE_RETRY_DELAYS) + 1} "
            "times: run the command again later, and check the service's health if it persists"
        )
    if not 200 <= first < 300 or second not in (409, 412):
        raise ConfigError(
            f"the S3 service behind {uri} ignores conditional PUT (If-None-Match: *): a "
            f"second create of the same object answered HTTP {second} instead of 412, so "
            "concurrent loads could overwrite each other's Delta commits and lose batches "
            "silently. Use a service that supports conditional writes (AWS S3, MinIO since "
            "2024, Ceph RGW since Reef), or keep the lake on a local disk by unsetting "
            "KOMMUNELAKE_LAKE_URI"
        )


def _probe_twice(client, signer: _S3Signer, prefix: str) -> tuple[int, int]:
    """(status of the first create, status of the second) of one probe object, each tried
    again on a server error or a dropped connection."""
    import httpx

    urls: list[str] = []

    def create_new() -> int:
        # A fresh name each try: one that an earlier try stored, with its answer lost,
        # would be refused as existing, which says nothing about the service.
        key = "/".join(p for p in (prefix, "_atomic_probe", uuid.uuid4().hex) if p)
        urls.append(signer.object_url(key))
        return _create(client, signer, urls[-1])

    try:
        first = _retried(create_new, retry_on=(409, 412))
        second = 0
        if 200 <= first < 300:
            second = _retried(lambda: _create(client, signer, urls[-1]), retry_on=())
        return first, second
    finally:
        for url in urls:
            with contextlib.suppress(httpx.HTTPError):  # best effort: a 11-byte leftover
                client.delete(url, headers=signer.headers("DELETE", url, b""))


def _create(client, signer: _S3Signer, url: str) -> int:
    headers = signer.headers("PUT", url, b"kommunelake", {"if-none-match": "*"})
    return client.put(url, content=b"kommunelake", headers=headers).status_code


def _retried(put: Callable[[], int], *, retry_on: tuple[int, ...]) -> int:
    """`put()`'s status, tried again after PROBE_RETRY_DELAYS while it is a server error,
    one of `retry_on`, or a dropped connection (raised when the last try drops too)."""
    import httpx

    for delay in PROBE_RETRY_DELAYS:
        try:
            status = put()
            if not (_transient(status) or status in retry_on):
                return status
        except httpx.TransportError:
            pass
        time.sleep(delay)
    return put()


def _transient(status: int) -> bool:
    return status >= 500


def probe_azure_access(uri: str, options: Mapping[str, str]) -> None:
    """List the lake's root once, through deltalake with the lake's options, so missing or
    wrong credentials, a missing container or an unreachable endpoint are one clear line
    instead of an error deep in the first table read. With no key, SAS token or client
    secret set, Azure's credential chain (a managed identity) is what gets tried."""
    from deltalake import DeltaTable

    try:
        DeltaTable.is_deltatable(join_uri(uri, "_access_probe"), storage_options=dict(options))
    except OSError as error:
        detail = _error_chain(str(error))
        what = _azure_access_mistake(detail, parse_lake_uri(uri), options)
        raise ConfigError(f"Azure lake at {uri}: {what} ({detail})") from None


def _azure_access_mistake(detail: str, location: LakeLocation, options: Mapping[str, str]) -> str:
    """What to change, from the error of the access probe and the settings that caused it."""
    account = options.get("azure_storage_account_name", "")
    emulator = truthy(options.get("azure_storage_use_emulator"))
    endpoint = azure_endpoint(options)
    if "token request" in detail:
        return (
            "no Azure credential worked: set AZURE_STORAGE_ACCOUNT_KEY, "
            "AZURE_STORAGE_SAS_TOKEN or AZURE_CLIENT_ID/AZURE_CLIENT_SECRET/"
            "AZURE_TENANT_ID, or run where a managed identity is available"
        )
    if "Invalid Access Key" in detail:
        return (
            "AZURE_STORAGE_ACCOUNT_KEY is not an account key (a base64 text, as the "
            "storage account's Access keys page shows it): copy it again"
        )
    if "URL scheme is not allowed" in detail:
        return (
            f"the endpoint {endpoint} is plain http, which is refused unless "
            "AZURE_ALLOW_HTTP=true is set (for an emulator or a private network only)"
        )
    if "404 Not Found" in detail:
        configured = urlsplit(options.get("azure_endpoint", ""))
        if (
            not emulator
            and configured.netloc
            and not configured.path.strip("/")
            and not configured.netloc.startswith(f"{account}.")
        ):
            # object_store puts the container right after a custom endpoint, so an
            # emulator-style host (Azurite: http://127.0.0.1:10000) takes it for the account.
            return (
                f"container {location.container!r} not found at {endpoint}: an endpoint whose "
                "host does not name the account is an emulator such as Azurite, which needs "
                f"AZURE_STORAGE_USE_EMULATOR=true and AZURITE_BLOB_STORAGE_URL={endpoint} "
                "instead of AZURE_STORAGE_ENDPOINT; otherwise create the container first"
            )
        return f"container {location.container!r} not found: create it first"
    if "403 Forbidden" in detail or "401 Unauthorized" in detail:
        return (
            "Azure refused the credentials: check AZURE_STORAGE_ACCOUNT_KEY, "
            "AZURE_STORAGE_SAS_TOKEN or the client's role on the container"
        )
    if emulator:
        # The emulator's address comes from AZURITE_BLOB_STORAGE_URL; an AZURE_STORAGE_ENDPOINT
        # is not used while AZURE_STORAGE_USE_EMULATOR is set.
        return (
            f"cannot reach the emulator at {endpoint}: set AZURITE_BLOB_STORAGE_URL to where "
            "Azurite's blob service listens, or unset AZURE_STORAGE_USE_EMULATOR to use "
            "AZURE_STORAGE_ENDPOINT"
        )
    return "cannot reach it: check AZURE_STORAGE_ENDPOINT and the network"


def _error_chain(text: str) -> str:
    """object_store's multi-line, colour-coded cause chain as one plain line."""
    plain = without_colours(text)
    parts = [p.strip().lstrip("↳").strip() for p in plain.splitlines()]
    # the service's XML error body follows the status line; the status says enough
    return "; ".join(p for p in parts if p and not p.startswith("<"))[:MAX_DETAIL]


@dataclass(frozen=True)
class _S3Signer:
    """AWS Signature Version 4 for single S3 requests (the probe needs no SDK)."""

    access_key: str
    secret_key: str = field(repr=False)
    session_token: str | None = field(repr=False)
    region: str
    endpoint: str  # scheme://host[:port] (path style) or "" for AWS (virtual host style)
    bucket: str
    virtual_hosted: bool

    @classmethod
    def from_options(cls, opts: Mapping[str, str], bucket: str) -> _S3Signer:
        access, secret = opts.get("aws_access_key_id"), opts.get("aws_secret_access_key")
        token = opts.get("aws_session_token")
        if not (access and secret):
            access, secret, token = _credential_chain()
        endpoint = opts.get("aws_endpoint_url", "").rstrip("/")
        if endpoint and "://" not in endpoint:
            endpoint = f"https://{endpoint}"
        return cls(
            access,
            secret,
            token,
            opts.get("aws_region", "us-east-1"),
            endpoint,
            bucket,
            truthy(opts.get("aws_virtual_hosted_style_request")) or not endpoint,
        )

    def object_url(self, key: str) -> str:
        path = quote(key, safe="/-_.~")
        if not self.endpoint:
            return f"https://{self.bucket}.s3.{self.region}.amazonaws.com/{path}"
        if self.virtual_hosted:
            parts = urlsplit(self.endpoint)
            return f"{parts.scheme}://{self.bucket}.{parts.netloc}/{path}"
        return f"{self.endpoint}/{quote(self.bucket, safe='')}/{path}"

    def headers(
        self,
        method: str,
        url: str,
        body: bytes,
        extra: Mapping[str, str] | None = None,
        now: dt.datetime | None = None,
    ) -> dict[str, str]:
        now = now or dt.datetime.now(dt.UTC)
        stamp, day = now.strftime("%Y%m%dT%H%M%SZ"), now.strftime("%Y%m%d")
        parts = urlsplit(url)
        headers = {
            "host": parts.netloc,
            "x-amz-content-sha256": hashlib.sha256(body).hexdigest(),
            "x-amz-date": stamp,
            **{k.lower(): v for k, v in (extra or {}).items()},
        }
        if self.session_token:
            headers["x-amz-security-token"] = self.session_token
        signed = ";".join(sorted(headers))
        canonical = "\n".join(
            [
                method,
                parts.path or "/",
                parts.query,
                "".join(f"{k}:{headers[k].strip()}\n" for k in sorted(headers)),
                signed,
                headers["x-amz-content-sha256"],
            ]
        )
        scope = f"{day}/{self.region}/s3/aws4_request"
        to_sign = "\n".join(
            ["AWS4-HMAC-SHA256", stamp, scope, hashlib.sha256(canonical.encode()).hexdigest()]
        )
        key = f"AWS4{self.secret_key}".encode()
        for part in (day, self.region, "s3", "aws4_request"):
            key = hmac.new(key, part.encode(), hashlib.sha256).digest()
        signature = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
        headers["authorization"] = (
            f"AWS4-HMAC-SHA256 Credential={self.access_key}/{scope}, "
            f"SignedHeaders={signed}, Signature={signature}"
        )
        del headers["host"]  # httpx sets it from the URL
        return headers


def _credential_chain() -> tuple[str, str, str | None]:
    """Credentials from profiles, SSO or instance roles, through botocore when installed."""
    try:
        import botocore.session
    except ImportError:
        botocore = None
    credentials = botocore.session.get_session().get_credentials() if botocore else None
    if credentials is None:
        raise ConfigError(
            "no AWS credentials to check the S3 lake with: set AWS_ACCESS_KEY_ID and "
            "AWS_SECRET_ACCESS_KEY (or install boto3 so profiles and instance roles are used)"
        )
    frozen = credentials.get_frozen_credentials()
    return frozen.access_key, frozen.secret_key, frozen.token


__all__ = [
    "NETWORK_FILE_SYSTEMS",
    "Mount",
    "check_local_path",
    "check_path_characters",
    "mount_of",
    "network_share",
    "parse_mounts",
    "probe_azure_access",
    "probe_conditional_put",
    "require_atomic",
    "require_azure_access",
]
