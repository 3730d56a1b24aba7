"""SFTP pickup: copy a vendor's pushed exports from an SFTP folder into the dataset's drop folder.

The drop folder does the rest: files are landed by content hash (the same bytes twice load
once) and bad files are rejected there. This module only has to get the bytes across safely:

* the server's host key is always checked, against a known_hosts file or a SHA256 fingerprint
  (asyncssh accepts *any* host key when told ``known_hosts=None``, so that is never passed
  unless a test asks for it with ``accept_any_host_key``);
* a file is written to a hidden temp file beside its final name and renamed into place, so a
  half-finished download never looks like an export;
* files still being uploaded (modified in the last ``settle_seconds``) are left for next time;
* a file already present locally with the same size and mtime is not downloaded again;
* with ``delete_after`` the remote file is removed only once the local copy has its size.

Secrets (password, private key) come only from environment variables and never appear in a
repr, a log line or an error message.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import fnmatch
import hashlib
import json
import logging
import os
import posixpath
import stat
import tempfile
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncssh

from connectors.files import PARTIAL_SUFFIXES

log = logging.getLogger(__name__)

_CHUNK = 1 << 20
_SETTINGS_KEYS = (
    "type",
    "host",
    "port",
    "username",
    "remote_dir",
    "pattern",
    "known_hosts",
    "host_key",
    "delete_after",
    "settle_seconds",
    "connect_timeout",
    "io_timeout",
)
_SECRET_KEYS = ("password", "private_key", "passphrase")


class SftpError(Exception):
    """An SFTP pickup failed; the message is one line: host, what failed, what to do."""


@dataclass(frozen=True)
class SftpSource:
    """Where and how to pick up files by SFTP.

    Host key checking is mandatory: give ``known_hosts`` (path to an OpenSSH known_hosts file;
    a non-standard port is written ``[host]:port`` there) or ``host_key`` (the server's
    ``SHA256:...`` fingerprint, as printed by ``ssh-keygen -lf``). ``accept_any_host_key`` turns
    the check off and exists **only for tests**; never set it for a real vendor.

    ``private_key`` is a path to a key file, or the key text itself (``-----BEGIN ...``).
    ``settle_seconds``: remote files modified more recently than this are skipped (they may
    still be uploading). ``io_timeout`` bounds every single SFTP request, ``connect_timeout``
    the connection including login. Seconds throughout.
    """

    host: str
    username: str
    remote_dir: str
    port: int = 22
    pattern: str | tuple[str, ...] = "*"
    password: str | None = field(default=None, repr=False)
    private_key: str | None = field(default=None, repr=False)
    known_hosts: str | None = None
    host_key: str | None = None
    accept_any_host_key: bool = False  # tests only: accepts any server, i.e. no protection
    connect_timeout: float = 15.0
    io_timeout: float = 60.0
    delete_after: bool = False
    settle_seconds: float = 10.0

    def __post_init__(self) -> None:
        if not self.host or not self.username or not self.remote_dir:
            raise ValueError("SFTP source needs host, username and remote_dir")
        if not 0 < self.port < 65536:
            raise ValueError(f"SFTP port must be 1-65535, not {self.port}")
        if self.connect_timeout <= 0 or self.io_timeout <= 0:
            raise ValueError("connect_timeout and io_timeout must be > 0 seconds")
        if self.settle_seconds < 0:
            raise ValueError("settle_seconds must be >= 0")
        if self.known_hosts and self.host_key:
            raise ValueError("give known_hosts or host_key for the SFTP host key, not both")
        if self.host_key and not self.host_key.startswith("SHA256:"):
            raise ValueError(
                "host_key must be the server's SHA256 fingerprint ('SHA256:...'; "
                "ssh-keyscan HOST | ssh-keygen -lf -)"
            )

    @property
    def patterns(self) -> tuple[str, ...]:
        return (self.pattern,) if isinstance(self.pattern, str) else tuple(self.pattern)

    @property
    def where(self) -> str:
        return f"{self.host}:{self.port}"


def from_settings(dataset: str, settings: Mapping[str, Any], env: Mapping[str, str]) -> SftpSource:
    """An SftpSource from a dataset YAML's ``source:`` block; secrets only from ``env``.

    The password comes from ``SOURCES__<DATASET>__PASSWORD`` and the private key (path or key
    text) from ``SOURCES__<DATASET>__PRIVATE_KEY``; a password or key in the YAML is refused.
    """
    where = f"{dataset}.yaml source:"
    prefix = f"SOURCES__{dataset.upper()}__"
    for key in _SECRET_KEYS:
        if key in settings:
            raise ValueError(
                f"{where}: {key!r} must not be in the YAML; remove it and set the environment "
                f"variable {prefix}{key.upper()} instead"
            )
    if settings.get("type") != "sftp":
        raise ValueError(f"{where}: type must be 'sftp', not {settings.get('type')!r}")
    unknown = sorted(str(k) for k in settings if k not in _SETTINGS_KEYS)
    if unknown:
        raise ValueError(f"{where}: unknown key(s) {unknown}; allowed: {', '.join(_SETTINGS_KEYS)}")
    for key in ("host", "username", "remote_dir"):
        if not settings.get(key):
            raise ValueError(f"{where}: missing required key {key!r}")
    if not settings.get("known_hosts") and not settings.get("host_key"):
        raise ValueError(
            f"{where}: missing required key 'known_hosts' (path to a known_hosts file) or "
            "'host_key' (the server's SHA256 fingerprint); unknown host keys are never accepted"
        )
    password = env.get(f"{prefix}PASSWORD") or None
    private_key = env.get(f"{prefix}PRIVATE_KEY") or None
    if password is None and private_key is None:
        raise ValueError(
            f"{where}: no credentials; set {prefix}PASSWORD or {prefix}PRIVATE_KEY "
            "in the environment"
        )
    pattern = settings.get("pattern", "*")
    try:
        return SftpSource(
            host=str(settings["host"]),
            port=int(settings.get("port", 22)),
            username=str(settings["username"]),
            remote_dir=str(settings["remote_dir"]),
            pattern=pattern if isinstance(pattern, str) else tuple(str(p) for p in pattern),
            password=password,
            private_key=private_key,
            known_hosts=settings.get("known_hosts"),
            host_key=settings.get("host_key"),
            delete_after=_bool(settings.get("delete_after", False), where, "delete_after"),
            settle_seconds=float(settings.get("settle_seconds", 10.0)),
            connect_timeout=float(settings.get("connect_timeout", 15.0)),
            io_timeout=float(settings.get("io_timeout", 60.0)),
        )
    except (TypeError, ValueError) as error:
        raise ValueError(f"{where}: {error}") from None


def _bool(value: Any, where: str, key: str) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"{where}: {key} must be true or false, not {value!r}")
    return value


def pull(
    source: SftpSource,
    target: Path,
    *,
    now: float | None = None,
    record: Path | None = None,
    shown: Callable[[str], str] = str,
) -> list[Path]:
    """Download new, settled files matching the pattern into ``target``; the new local paths.

    `shown` is how a remote file's name may appear in log lines and errors: the pipeline
    passes `lake.privacy.shown_name`, as per-citizen exports are often named after the
    citizen's CPR number.

    With `record` (a JSON file), a remote file fetched once is not fetched again while its
    size and mtime stay the same, even when its local copy is gone: a file the pipeline
    rejected (moved to rejected/) or someone deleted would otherwise come back on every
    pickup, unless the source deletes it on the server (`delete_after`). The record keeps a
    digest of each name, not the name.

    Synchronous. Runs its own event loop, so it works from any thread; called from inside a
    running event loop it runs in a worker thread instead.
    """
    target = Path(target)
    fetched = _Fetched(record)
    try:
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return asyncio.run(_pull(source, target, now, fetched, shown))
        with concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="sftp-pull") as pool:
            return pool.submit(asyncio.run, _pull(source, target, now, fetched, shown)).result()
    finally:
        fetched.save()


class _Fetched:
    """The remote files fetched before, as name digest -> [size, mtime] (see `pull`)."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self.files: dict[str, list[int]] = {}
        if path is not None and path.exists():
            self.files = json.loads(path.read_text(encoding="utf-8"))
        self._changed = False

    def before(self, name: str, attrs: asyncssh.SFTPAttrs) -> bool:
        return self.files.get(_digest(name)) == [attrs.size, int(attrs.mtime)]

    def add(self, name: str, attrs: asyncssh.SFTPAttrs) -> None:
        self.files[_digest(name)] = [attrs.size, int(attrs.mtime)]
        self._changed = True

    def save(self) -> None:
        if self.path is None or not self._changed:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        partial = self.path.with_name(self.path.name + ".tmp")
        partial.write_text(json.dumps(self.files), encoding="utf-8")
        os.replace(partial, self.path)


def _digest(name: str) -> str:
    return hashlib.sha256(name.encode()).hexdigest()[:32]


class _Client(asyncssh.SSHClient):
    """Checks a fingerprint-pinned host key and remembers the key the server offered."""

    def __init__(self, fingerprint: str | None) -> None:
        self.fingerprint = fingerprint
        self.offered: str | None = None

    def validate_host_public_key(
        self, host: str, addr: str, port: int, key: asyncssh.SSHKey
    ) -> bool:
        self.offered = key.get_fingerprint("sha256")
        return self.fingerprint is not None and self.offered == self.fingerprint


class _Step:
    """What the pickup is doing now, for the error message."""

    def __init__(self) -> None:
        self.what = "connecting"
        self.path = ""


async def _pull(
    source: SftpSource,
    target: Path,
    now: float | None,
    fetched: _Fetched,
    shown: Callable[[str], str],
) -> list[Path]:
    step = _Step()
    client = _Client(source.host_key)
    try:
        options = _connect_options(source)
        async with asyncssh.connect(
            source.host, source.port, client_factory=lambda: client, **options
        ) as conn:
            step.what = "starting SFTP"
            async with asyncio.timeout(source.io_timeout):
                sftp = await conn.start_sftp_client()
            async with sftp:
                return await _pick_up(sftp, source, target, now, step, fetched, shown)
    except SftpError:
        raise
    except Exception as error:
        raise SftpError(_redact(_explain(error, source, step, client), source)) from error


def _connect_options(source: SftpSource) -> dict[str, Any]:
    if source.accept_any_host_key:
        known_hosts: Any = None  # asyncssh: no host key check at all (tests only)
    elif source.known_hosts:
        path = Path(source.known_hosts).expanduser()
        if not path.is_file():
            raise SftpError(
                f"SFTP {source.where}: known_hosts file {path} not found; create it "
                f"(ssh-keyscan -p {source.port} {source.host}, checked with the vendor) or fix "
                "the known_hosts setting"
            )
        known_hosts = str(path)
    elif source.host_key:
        # Non-empty but matching nothing: every key goes to _Client.validate_host_public_key.
        # (An empty value would make asyncssh fall back to ~/.ssh/known_hosts.)
        known_hosts = ([], [], [])
    else:
        raise SftpError(
            f"SFTP {source.where}: no host key to check against; set known_hosts or host_key "
            "(unknown host keys are never accepted)"
        )
    client_keys: Any = None
    if source.private_key:
        text = source.private_key.strip()
        try:
            if text.startswith("-----BEGIN"):
                client_keys = [asyncssh.import_private_key(text)]
            else:
                client_keys = [asyncssh.read_private_key(Path(text).expanduser())]
        except (OSError, asyncssh.KeyImportError) as error:
            kind = "not readable" if isinstance(error, OSError) else "not a valid private key"
            raise SftpError(
                f"SFTP {source.where}: the private key is {kind}; check SOURCES__<DATASET>__"
                "PRIVATE_KEY (a path to an unencrypted key file, or the key text)"
            ) from None
    return {
        "username": source.username,
        "password": source.password,
        "client_keys": client_keys,
        "known_hosts": known_hosts,
        "connect_timeout": source.connect_timeout,
        # Nothing from the machine's own SSH setup: no ~/.ssh/config, agent, default keys or GSS.
        "config": [],
        "agent_path": None,
        "gss_host": None,
        "preferred_auth": ("publickey", "keyboard-interactive", "password"),
    }


async def _pick_up(
    sftp: asyncssh.SFTPClient,
    source: SftpSource,
    target: Path,
    now: float | None,
    step: _Step,
    fetched: _Fetched,
    shown: Callable[[str], str],
) -> list[Path]:
    step.what, step.path = "listing", source.remote_dir
    async with asyncio.timeout(source.io_timeout):
        entries = await sftp.readdir(source.remote_dir)
    now = time.time() if now is None else now
    target.mkdir(parents=True, exist_ok=True)
    new: list[Path] = []
    for entry in sorted(entries, key=lambda e: str(e.filename)):
        name = str(entry.filename)
        attrs = entry.attrs
        if not _wanted(name, attrs, source):
            continue
        if now - attrs.mtime < source.settle_seconds:
            log.info(
                "sftp %s: %s changed %.0fs ago; left to settle",
                source.where,
                shown(name),
                now - attrs.mtime,
            )
            continue
        remote = posixpath.join(source.remote_dir, name)
        local = target / name
        if _same(local, attrs):
            log.debug("sftp %s: %s already here", source.where, shown(name))
        elif fetched.before(name, attrs):
            log.debug(
                "sftp %s: %s fetched before (rejected or removed here)", source.where, shown(name)
            )
            continue
        else:
            step.what, step.path = "downloading", shown(remote)
            if not await _download(sftp, source, remote, local, attrs, shown):
                continue
            new.append(local)
            log.info("sftp %s: fetched %s (%d bytes)", source.where, shown(name), attrs.size)
        fetched.add(name, attrs)
        if source.delete_after and _same(local, attrs):
            step.what, step.path = "deleting", shown(remote)
            try:
                async with asyncio.timeout(source.io_timeout):
                    await sftp.remove(remote)
            except asyncssh.SFTPError as error:
                # The server refused this one file (another account's, read-only): it is
                # fetched and recorded, so stopping here would only keep the files listed
                # after it from arriving, on every pickup while it stays.
                log.warning(
                    "%s",
                    _redact(
                        f"sftp {source.where}: {error.reason or 'error'} deleting "
                        f"{shown(remote)!r} after fetching it; it stays on the server (not "
                        "fetched again while unchanged): ask the vendor for delete rights, or "
                        "set delete_after: false",
                        source,
                    ),
                )
                continue
            log.info("sftp %s: deleted %s on the server", source.where, shown(remote))
    return new


def _wanted(name: str, attrs: asyncssh.SFTPAttrs, source: SftpSource) -> bool:
    """A regular file (no directory, no symlink), a plain name that is not hidden and not an
    upload in progress (.part, .tmp, ...), matching the pattern (case-insensitive)."""
    if not name or name.startswith(".") or "/" in name or "\\" in name or "\0" in name:
        return False
    if name.lower().endswith(PARTIAL_SUFFIXES):
        return False
    if attrs.permissions is not None:
        regular = stat.S_ISREG(attrs.permissions)
    else:
        regular = attrs.type == asyncssh.FILEXFER_TYPE_REGULAR
    if not regular or attrs.size is None or attrs.mtime is None:
        return False
    return any(fnmatch.fnmatch(name.lower(), p.lower()) for p in source.patterns)


def _same(local: Path, attrs: asyncssh.SFTPAttrs) -> bool:
    try:
        st = local.stat()
    except FileNotFoundError:
        return False
    return st.st_size == attrs.size and int(st.st_mtime) == int(attrs.mtime)


async def _download(
    sftp: asyncssh.SFTPClient,
    source: SftpSource,
    remote: str,
    local: Path,
    attrs: asyncssh.SFTPAttrs,
    shown: Callable[[str], str],
) -> bool:
    """Copy to a hidden temp file beside `local`, check its size, then rename into place."""
    # Not named after the file: for a name near the file system's limit (255 bytes) the
    # temp name would be too long, and the error would end the whole pickup.
    fd, tmp = tempfile.mkstemp(dir=local.parent, prefix=".sftp-", suffix=".part")
    try:
        size = 0
        with os.fdopen(fd, "wb") as out:
            async with asyncio.timeout(source.io_timeout):
                handle = await sftp.open(remote, "rb")
            async with handle:
                while True:
                    async with asyncio.timeout(source.io_timeout):
                        block = await handle.read(_CHUNK)
                    if not block:
                        break
                    out.write(block)
                    size += len(block)
            out.flush()
            os.fsync(out.fileno())
        if size != attrs.size:
            log.warning(
                "sftp %s: %s is %d bytes, listed as %d; changed while downloading, left for "
                "next time",
                source.where,
                shown(remote),
                size,
                attrs.size,
            )
            return False
        os.utime(tmp, (attrs.atime or attrs.mtime, attrs.mtime))
        os.replace(tmp, local)
        return True
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)


def _explain(error: BaseException, source: SftpSource, step: _Step, client: _Client) -> str:
    head = f"SFTP {source.where}"
    path = step.path
    if isinstance(error, asyncssh.HostKeyNotVerifiable):
        seen = f" (server offered {client.offered})" if client.offered else ""
        pinned = (
            f"known_hosts {source.known_hosts}"
            if source.known_hosts
            else f"host_key {source.host_key}"
        )
        return (
            f"{head}: host key not trusted{seen}, does not match {pinned}; confirm the key "
            "with the vendor before changing known_hosts/host_key (it may be an impostor)"
        )
    if isinstance(error, asyncssh.PermissionDenied):
        how = "key" if source.private_key else "password"
        return (
            f"{head}: login refused for user {source.username!r}; check the username and the "
            f"{how} in SOURCES__<DATASET>__{'PRIVATE_KEY' if how == 'key' else 'PASSWORD'}"
        )
    if isinstance(error, asyncssh.SFTPNoSuchFile):
        if step.what == "listing":
            return f"{head}: remote folder {path!r} does not exist; check remote_dir"
        return f"{head}: {path!r} disappeared while {step.what}; it is retried next pickup"
    if isinstance(error, asyncssh.SFTPPermissionDenied):
        return (
            f"{head}: permission denied {step.what} {path!r}; ask the vendor for access "
            "or check remote_dir"
        )
    if isinstance(error, asyncssh.SFTPError):
        return (
            f"{head}: SFTP error {step.what} {path!r}: {error.reason}; retry, then tell the vendor"
        )
    if isinstance(error, asyncssh.DisconnectError):
        return (
            f"{head}: disconnected while {step.what}: {error.reason}; retry, then tell the vendor"
        )
    if isinstance(error, TimeoutError):
        limit = source.connect_timeout if step.what == "connecting" else source.io_timeout
        return (
            f"{head}: timed out after {limit:g}s while {step.what} {path}".rstrip()
            + "; check host, port and firewall, or raise the timeout"
        )
    if isinstance(error, ConnectionRefusedError):
        return f"{head}: connection refused; check host and port, and that the server is up"
    if isinstance(error, OSError):
        detail = error.strerror or str(error) or type(error).__name__
        if step.what == "connecting":
            return f"{head}: could not connect ({detail}); check host, port and network"
        return f"{head}: local error while {step.what} {path!r} ({detail}); check the drop folder"
    return f"{head}: {step.what} failed ({type(error).__name__}: {error}); retry, then investigate"


def _redact(message: str, source: SftpSource) -> str:
    message = " ".join(message.split())
    for secret in (source.password, source.private_key):
        if secret:
            message = message.replace(secret, "***")
    return message
