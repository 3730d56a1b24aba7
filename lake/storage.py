"""Where the lake's bytes live: a local directory (the default) or object storage (S3, Azure).

`KOMMUNELAKE_LAKE_URI` names the lake (`s3://bucket/prefix`, `az://container/prefix`,
`abfss://container@account.dfs.core.windows.net/prefix`); credentials come from the standard
AWS_* / AZURE_* variables, read at call time and never logged (`storage_options()` returns a
dict whose repr shows only the keys).

Delta commits are only safe where a commit file can be created if-absent, atomically. The lake
refuses configurations without that guarantee, with a message saying what to change:
- local paths on network shares (NFS, SMB/CIFS, sshfs and other FUSE network mounts), found
  from the mount table of the path;
- S3 services that ignore conditional PUT (`If-None-Match: *`), found by a probe run once per
  process and store: a marker object is PUT twice with that header, and the second PUT must
  be refused (HTTP 412). deltalake creates each commit file that way; a service that accepts
  the second PUT lets two loads write the same Delta version, silently losing one batch;
- pre-deltalake-1.0 S3 settings (`AWS_S3_ALLOW_UNSAFE_RENAME`, DynamoDB locking), which turn
  off exactly that guarantee.
Azure Blob Storage honours conditional PUT by design; it is probed once per process only for
access (credentials, container, endpoint), so a mistake there is one line at the start.

Raw landing files go through pyarrow's S3/Azure file systems (pyarrow is already a core
dependency; deltalake's own pyarrow handler fails on writes with pyarrow 26).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import hmac
import os
import re
import threading
import time
import uuid
from collections.abc import Callable, Mapping, MutableMapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote, unquote, urlsplit

from lake.errors import ConfigError, LakeError, without_colours

LAKE_URI_VARIABLE = "KOMMUNELAKE_LAKE_URI"
_MAX_DETAIL = 400  # characters of a store's own error shown after ours
BLOCK_SIZE = 1 << 20  # 1 MiB: large files are hashed and copied in blocks this big
S3_SCHEMES = ("s3", "s3a")
AZURE_SCHEMES = ("az", "azure", "abfs", "abfss")
# Azurite's published development account (not a secret: it is in Microsoft's docs).
EMULATOR_ACCOUNT = "devstoreaccount1"
EMULATOR_KEY = (
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
)
EMULATOR_URL = "http://127.0.0.1:10000"

# Environment variable → deltalake storage option, per store. Only these are forwarded: the
# names are the standard ones of the AWS SDKs / Azure SDKs and of delta-rs.
_S3_VARIABLES = {
    "AWS_ACCESS_KEY_ID": "aws_access_key_id",
    "AWS_SECRET_ACCESS_KEY": "aws_secret_access_key",
    "AWS_SESSION_TOKEN": "aws_session_token",
    "AWS_DEFAULT_REGION": "aws_region",
    "AWS_REGION": "aws_region",  # after DEFAULT_REGION: the SDKs prefer AWS_REGION
    "AWS_ENDPOINT_URL": "aws_endpoint_url",
    "AWS_ENDPOINT_URL_S3": "aws_endpoint_url",
    "AWS_ALLOW_HTTP": "aws_allow_http",
    "AWS_VIRTUAL_HOSTED_STYLE_REQUEST": "aws_virtual_hosted_style_request",
}
_AZURE_VARIABLES = {
    "AZURE_STORAGE_ACCOUNT_NAME": "azure_storage_account_name",
    "AZURE_STORAGE_ACCOUNT_KEY": "azure_storage_account_key",
    "AZURE_STORAGE_SAS_TOKEN": "azure_storage_sas_token",
    "AZURE_CLIENT_ID": "azure_client_id",
    "AZURE_CLIENT_SECRET": "azure_client_secret",
    "AZURE_TENANT_ID": "azure_tenant_id",
    "AZURE_STORAGE_ENDPOINT": "azure_endpoint",
    "AZURE_ENDPOINT": "azure_endpoint",
    "AZURE_ALLOW_HTTP": "azure_allow_http",
    "AZURE_STORAGE_USE_EMULATOR": "azure_storage_use_emulator",
}  # and AZURE_STORAGE_CONNECTION_STRING (_azure_connection_string)
# Settings from before deltalake 1.0 that make S3 commits non-atomic (or no longer work).
_UNSAFE_S3_VARIABLES = {
    "AWS_S3_ALLOW_UNSAFE_RENAME": (
        "it commits by copy-and-delete, so two concurrent loads can overwrite each other's "
        "commit and lose a batch without an error"
    ),
    "AWS_S3_LOCKING_PROVIDER": (
        "the DynamoDB lock is no longer supported by deltalake 1.x; commits rely on "
        "conditional PUT instead"
    ),
    "DELTA_DYNAMO_TABLE_NAME": "the DynamoDB lock table is no longer used by deltalake 1.x",
}
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


class StorageOptions(dict[str, str]):
    """deltalake storage options; the repr names the keys only, so a log line never leaks."""

    def __repr__(self) -> str:
        return f"StorageOptions({', '.join(sorted(self))})"

    __str__ = __repr__


@dataclass(frozen=True)
class LakeLocation:
    """A parsed lake (or table) URI. `container` is the S3 bucket or Azure container."""

    uri: str  # normalised: no trailing slash; a local lake is an absolute path
    scheme: str  # file | s3 | az | azure | abfs | abfss
    container: str = ""
    prefix: str = ""  # key prefix inside the container, no leading/trailing slash
    account: str | None = None  # from abfs://container@ACCOUNT.dfs.core.windows.net

    @property
    def kind(self) -> str:
        if self.scheme in S3_SCHEMES:
            return "s3"
        if self.scheme in AZURE_SCHEMES:
            return "azure"
        return "local"

    @property
    def is_remote(self) -> bool:
        return self.kind != "local"

    @property
    def path(self) -> str:
        """The location inside its file system: `container/prefix` (remote) or the path."""
        if not self.is_remote:
            return self.uri
        return f"{self.container}/{self.prefix}".rstrip("/")


def parse_lake_uri(uri: str | os.PathLike[str]) -> LakeLocation:
    """Parse a lake or table location; a plain path or file:// URI is a local lake."""
    text = os.fspath(uri).strip()
    if not text:
        raise ConfigError(f"{LAKE_URI_VARIABLE} is empty: unset it for a local lake")
    parts = urlsplit(text)
    scheme = parts.scheme.lower()
    if scheme in ("", "file") or (len(scheme) == 1 and os.name == "nt"):
        if scheme == "file" and parts.netloc not in ("", "localhost"):
            raise ConfigError(
                f"{text}: a file:// URI that names a host ({parts.netloc}) is another "
                "machine's disk; mount it and give the local path (network shares are "
                "refused if they cannot rename atomically), or use s3:// or az://"
            )
        local = unquote(parts.path) if scheme == "file" else text
        return LakeLocation(uri=str(Path(local).expanduser().absolute()), scheme="file")
    if scheme not in S3_SCHEMES + AZURE_SCHEMES:
        raise ConfigError(
            f"{LAKE_URI_VARIABLE}={text}: unsupported scheme {scheme!r}; use a local path, "
            "s3://bucket/prefix, az://container/prefix or "
            "abfss://container@account.dfs.core.windows.net/prefix"
        )
    if parts.query or parts.fragment:
        raise ConfigError(f"{text}: a lake URI takes no ?query or #fragment")
    container, account = parts.netloc, None
    if "@" in container:
        if scheme in S3_SCHEMES or ":" in container.split("@")[0]:
            raise ConfigError(
                f"{scheme}://…@…: credentials do not belong in {LAKE_URI_VARIABLE}; set the "
                "AWS_* / AZURE_* environment variables instead"
            )
        container, host = container.split("@", 1)
        account = host.split(".")[0] or None
    if not container:
        raise ConfigError(f"{text}: the URI names no bucket or container")
    prefix = parts.path.strip("/")
    normal = f"{scheme}://{parts.netloc}" + (f"/{prefix}" if prefix else "")
    return LakeLocation(normal, scheme, container, prefix, account)


def shown(uri: str) -> str:
    """A table location for a message: a local path without `file://` (delta-rs gives its
    tables' URIs that way), an object-store URI as is."""
    return parse_lake_uri(uri).uri


def join_uri(base: str, *parts: str) -> str:
    """`base/part/...` for a local path or a URI (local paths keep the platform's form)."""
    location = parse_lake_uri(base)
    if not location.is_remote:
        return str(Path(location.uri).joinpath(*parts))
    return "/".join([location.uri, *(p.strip("/") for p in parts)])


# --- credentials ---------------------------------------------------------------------------


def storage_options(uri: str, environ: Mapping[str, str] | None = None) -> StorageOptions:
    """deltalake storage options for `uri` from the standard AWS_* / AZURE_* variables.

    Empty for a local lake. Refuses settings that make S3 commits non-atomic. deltalake and
    polars also read these variables themselves; passing the options makes the choice
    explicit and lets pyarrow (landing) and DuckDB (serving) use the same credentials."""
    env = os.environ if environ is None else environ
    location = parse_lake_uri(uri)
    if location.kind == "s3":
        check_s3_settings(env)
        table = _S3_VARIABLES
    elif location.kind == "azure":
        table = _AZURE_VARIABLES
    else:
        return StorageOptions()
    options = StorageOptions()
    for variable, key in table.items():
        value = env.get(variable, "").strip()
        if value:
            options[key] = value
    if location.kind == "azure":
        for key, value in _azure_connection_string(env).items():
            options.setdefault(key, value)  # the separate variables win
        if location.account and "azure_storage_account_name" not in options:
            options["azure_storage_account_name"] = location.account
        if _truthy(options.get("azure_storage_use_emulator")):
            options.setdefault("azure_storage_account_name", EMULATOR_ACCOUNT)
            if options["azure_storage_account_name"] == EMULATOR_ACCOUNT:
                options.setdefault("azure_storage_account_key", EMULATOR_KEY)
    return options


# Fields of an Azure storage connection string (as `az storage account
# show-connection-string` prints it) → deltalake storage option.
_CONNECTION_STRING_FIELDS = {
    "accountname": "azure_storage_account_name",
    "accountkey": "azure_storage_account_key",
    "sharedaccesssignature": "azure_storage_sas_token",
    "blobendpoint": "azure_endpoint",
}


def _azure_connection_string(env: Mapping[str, str]) -> dict[str, str]:
    """Storage options from AZURE_STORAGE_CONNECTION_STRING, the Azure SDKs' usual setting.

    object_store (deltalake) does not read it, so a lake configured only by it was refused
    as having no account. `UseDevelopmentStorage=true` is the emulator; a plain-http
    BlobEndpoint allows http, as the SDKs do for it."""
    text = env.get("AZURE_STORAGE_CONNECTION_STRING", "").strip()
    if not text:
        return {}
    fields = {}
    for part in text.split(";"):
        name, sep, value = part.partition("=")  # keys and SAS tokens hold "=" themselves
        if not sep or not name.strip():
            continue
        fields[name.strip().lower()] = value.strip()
    options = {
        option: fields[name]
        for name, option in _CONNECTION_STRING_FIELDS.items()
        if fields.get(name)
    }
    if _truthy(fields.get("usedevelopmentstorage")):
        options["azure_storage_use_emulator"] = "true"
    if options.get("azure_endpoint", "").lower().startswith("http://"):
        options["azure_allow_http"] = "true"
    return options


# Where object_store (deltalake) looks for what a connection string holds.
_CONNECTION_STRING_VARIABLES = {
    "azure_storage_account_name": "AZURE_STORAGE_ACCOUNT_NAME",
    "azure_storage_account_key": "AZURE_STORAGE_ACCOUNT_KEY",
    "azure_storage_sas_token": "AZURE_STORAGE_SAS_TOKEN",
    "azure_endpoint": "AZURE_STORAGE_ENDPOINT",
    "azure_storage_use_emulator": "AZURE_STORAGE_USE_EMULATOR",
    "azure_allow_http": "AZURE_ALLOW_HTTP",
}


def export_connection_string(environ: MutableMapping[str, str] | None = None) -> None:
    """Set the AZURE_* variables an AZURE_STORAGE_CONNECTION_STRING implies, where unset.

    object_store reads those variables but not the connection string, and most Delta reads
    and writes pass no storage options of their own: without this, a lake configured by the
    connection string alone passed the start check and then failed at the first table with
    "Account must be specified". Run at the start of every command and run (`require_atomic`)."""
    env = os.environ if environ is None else environ
    for option, value in _azure_connection_string(env).items():
        variable = _CONNECTION_STRING_VARIABLES[option]
        if not env.get(variable, "").strip():
            env[variable] = value


def check_s3_settings(environ: Mapping[str, str] | None = None) -> None:
    """Refuse pre-deltalake-1.0 S3 settings that disable or replace conditional-PUT commits."""
    env = os.environ if environ is None else environ
    for variable, why in _UNSAFE_S3_VARIABLES.items():
        value = env.get(variable, "").strip()
        if value and (variable != "AWS_S3_ALLOW_UNSAFE_RENAME" or _truthy(value)):
            raise ConfigError(
                f"{variable} is set: {why}. deltalake 1.x commits to S3 with conditional PUT "
                f"(If-None-Match), which needs no lock: unset {variable} and use an S3 "
                "service that supports conditional writes (AWS S3, recent MinIO/Ceph)"
            )
    conditional = env.get("AWS_CONDITIONAL_PUT", "").strip().lower()
    if conditional and conditional != "etag":
        raise ConfigError(
            f"AWS_CONDITIONAL_PUT={conditional}: Delta commits on S3 are only atomic with "
            "conditional PUT; unset AWS_CONDITIONAL_PUT (or set it to `etag`)"
        )


def _truthy(value: str | None) -> bool:
    return (value or "").strip().lower() in ("1", "true", "yes", "on")


# --- file systems (landing, listing) ---------------------------------------------------------


def filesystem(uri: str, options: Mapping[str, str] | None = None):
    """(pyarrow FileSystem, path inside it) for a local path or an S3/Azure URI."""
    from pyarrow import fs

    location = parse_lake_uri(uri)
    if not location.is_remote:
        return fs.LocalFileSystem(), location.uri
    opts = storage_options(uri) if options is None else options
    if location.kind == "s3":
        return _s3_filesystem(opts), location.path
    return _azure_filesystem(opts), location.path


def _s3_filesystem(opts: Mapping[str, str]):
    from pyarrow import fs

    kwargs: dict[str, object] = {"region": opts.get("aws_region", "us-east-1")}
    if opts.get("aws_access_key_id"):
        kwargs |= {
            "access_key": opts["aws_access_key_id"],
            "secret_key": opts.get("aws_secret_access_key", ""),
            "session_token": opts.get("aws_session_token"),
        }
    endpoint = opts.get("aws_endpoint_url")
    if endpoint:
        parts = urlsplit(endpoint if "://" in endpoint else f"https://{endpoint}")
        kwargs |= {"endpoint_override": parts.netloc, "scheme": parts.scheme}
    if _truthy(opts.get("aws_virtual_hosted_style_request")):
        kwargs["force_virtual_addressing"] = True
    return fs.S3FileSystem(**kwargs)


_NO_AZURE_ACCOUNT = (
    "Azure lake without an account: set AZURE_STORAGE_ACCOUNT_NAME or use "
    "abfss://container@ACCOUNT.dfs.core.windows.net/prefix"
)


def _azure_filesystem(opts: Mapping[str, str]):
    from pyarrow import fs

    account = opts.get("azure_storage_account_name")
    if not account:
        raise ConfigError(_NO_AZURE_ACCOUNT)
    kwargs: dict[str, object] = {"account_name": account}
    if opts.get("azure_storage_account_key"):
        kwargs["account_key"] = opts["azure_storage_account_key"]
    elif opts.get("azure_storage_sas_token"):
        # pyarrow appends the token to each URL as it is, so it needs its `?`; `az ...
        # generate-sas` prints it without one (deltalake and DuckDB take either form).
        kwargs["sas_token"] = "?" + opts["azure_storage_sas_token"].lstrip("?")
    if opts.get("azure_client_secret"):
        kwargs |= {
            "client_id": opts.get("azure_client_id"),
            "client_secret": opts["azure_client_secret"],
            "tenant_id": opts.get("azure_tenant_id"),
        }
    endpoint = azure_endpoint(opts)
    if endpoint:
        parts = urlsplit(endpoint)
        # An authority not starting with "." is taken as emulator-style: scheme://host/account.
        kwargs |= {
            "blob_storage_authority": parts.netloc,
            "blob_storage_scheme": parts.scheme,
            "dfs_storage_authority": parts.netloc,
            "dfs_storage_scheme": parts.scheme,
        }
    return fs.AzureFileSystem(**kwargs)


def azure_endpoint(opts: Mapping[str, str]) -> str | None:
    """The blob endpoint *without* the account path, or None for Azure's public cloud."""
    if _truthy(opts.get("azure_storage_use_emulator")):
        return os.environ.get("AZURITE_BLOB_STORAGE_URL", EMULATOR_URL).rstrip("/")
    endpoint = opts.get("azure_endpoint")
    if not endpoint:
        return None
    parts = urlsplit(endpoint)
    return f"{parts.scheme}://{parts.netloc}"


def exists(uri: str, options: Mapping[str, str] | None = None) -> int | None:
    """Size of the file at `uri`, or None when there is none."""
    from pyarrow import fs

    filesystem_, path = filesystem(uri, options)
    [info] = filesystem_.get_file_info([path])
    return info.size if info.type == fs.FileType.File else None


def write_once(uri: str, data: bytes, options: Mapping[str, str] | None = None) -> bool:
    """Store immutable bytes at `uri` unless a file of that size is already there.

    Meant for content-addressed names: a concurrent writer of the same name writes the same
    bytes, so a lost race is harmless. Each write is atomic (local: temporary file, fsync,
    rename; S3: one PUT or a completed multipart upload; Azure: a committed block list), so
    a crash never leaves a partial file under the final name. Returns whether it wrote."""
    if exists(uri, options) == len(data):
        return False
    location = parse_lake_uri(uri)
    if not location.is_remote:
        _write_local_atomically(Path(location.uri), data)
        return True
    filesystem_, path = filesystem(uri, options)
    with filesystem_.open_output_stream(path) as out:
        out.write(data)
    return True


class SourceChanged(LakeError):
    """A local file's bytes changed between hashing and copying (it is still being written)."""


def sha256_file(path: str | os.PathLike[str]) -> tuple[str, int]:
    """(SHA-256 hex digest, size) of a local file, read in BLOCK_SIZE blocks."""
    digest, size = hashlib.sha256(), 0
    with open(path, "rb") as handle:
        while block := handle.read(BLOCK_SIZE):
            digest.update(block)
            size += len(block)
    return digest.hexdigest(), size


def copy_once(
    source: str | os.PathLike[str],
    uri: str,
    *,
    sha256: str,
    size: int,
    options: Mapping[str, str] | None = None,
) -> bool:
    """`write_once` for a local file too big to hold in memory: copy `source` to `uri` in
    blocks unless a file of `size` is already there. Returns whether it copied.

    The bytes are hashed as they are copied and must be the `sha256` the caller named the
    target after; when they are not (the source changed since it was hashed), nothing stays
    under `uri` and SourceChanged is raised. Local: a temporary file beside the target,
    fsync, rename. Remote: one output stream, committed when closed (an S3 multipart upload,
    an Azure block list), so a crash never leaves part of a file; a copy that fails or does
    not match is deleted again, and a partial object could only have another size, which
    the next landing replaces."""
    if exists(uri, options) == size:
        return False
    location = parse_lake_uri(uri)
    if not location.is_remote:
        target = location.uri

        def checked(sha: str) -> str:
            _check_copy(source, (sha, size), sha256)
            return target

        copy_in(source, Path(target).parent, checked)
        return True
    filesystem_, path = filesystem(uri, options)
    with open(source, "rb") as handle:
        out = filesystem_.open_output_stream(path)
        try:
            with out:
                copied = _copy_blocks(handle, out)
            _check_copy(source, copied, sha256)
        except BaseException:
            # pyarrow streams cannot be aborted: closing commits what was written so far.
            with contextlib.suppress(OSError):
                filesystem_.delete_file(path)
            raise
    return True


def download(
    uri: str, target: str | os.PathLike[str], options: Mapping[str, str] | None = None
) -> tuple[str, int]:
    """Copy the file at `uri` to the local `target` in blocks; returns its (sha256, size)."""
    filesystem_, path = filesystem(uri, options)
    with filesystem_.open_input_stream(path) as source, open(target, "wb") as out:
        return _copy_blocks(source, out)


def _copy_blocks(source, out) -> tuple[str, int]:
    """Copy a readable to a writable in BLOCK_SIZE blocks; (sha256, size) of what was copied."""
    digest, size = hashlib.sha256(), 0
    while block := source.read(BLOCK_SIZE):
        digest.update(block)
        out.write(block)
        size += len(block)
    return digest.hexdigest(), size


def _check_copy(source: str | os.PathLike[str], copied: tuple[str, int], sha256: str) -> None:
    if copied[0] != sha256:
        raise SourceChanged(
            f"{source} changed while it was being landed (its bytes no longer hash to "
            f"{sha256[:16]}); nothing was stored. It lands on the next run, once whoever "
            "writes it has finished"
        )


def file_signature(stat: os.stat_result) -> list[int]:
    """What changes whenever a file is written to: size, modification and change time (the
    kernel sets ctime; tools that copy timestamps cannot), inode and device."""
    return [stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns, stat.st_ino, stat.st_dev]


def copy_in(
    source: str | os.PathLike[str], folder: str | os.PathLike[str], name: Callable[[str], str]
) -> tuple[str, str, list[int]]:
    """Land a local file on local disk in one read: copy it into a temporary file in `folder`
    while hashing it, fsync, and rename it to `name(sha256)` unless a file of that size is
    already there. Returns (target path, sha256, the source's file_signature).

    A source written to during the copy (a delivery still arriving) leaves nothing behind
    and raises SourceChanged: its signature is compared before and after."""
    import tempfile

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".landing-")
    try:
        with os.fdopen(fd, "wb") as out, open(source, "rb") as handle:
            before = file_signature(os.fstat(handle.fileno()))
            sha, size = _copy_blocks(handle, out)
            out.flush()
            os.fsync(out.fileno())
        if file_signature(os.stat(source)) != before or size != before[0]:
            raise SourceChanged(
                f"{source} changed while it was being landed; nothing was stored. It lands "
                "on the next run, once whoever writes it has finished"
            )
        target = Path(name(sha))
        target.parent.mkdir(parents=True, exist_ok=True)
        if not (target.is_file() and target.stat().st_size == size):
            os.replace(tmp, target)
    finally:
        Path(tmp).unlink(missing_ok=True)
    return str(target), sha, before


def read_bytes(uri: str, options: Mapping[str, str] | None = None) -> bytes:
    filesystem_, path = filesystem(uri, options)
    with filesystem_.open_input_stream(path) as source:
        return source.read()


def _write_local_atomically(path: Path, data: bytes) -> None:
    import tempfile

    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".landing-")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def list_tables(layer_uri: str, options: Mapping[str, str] | None = None) -> dict[str, str]:
    """Table name → URI for every Delta table directly under `layer_uri` (local or remote)."""
    from deltalake import DeltaTable
    from pyarrow import fs

    opts = storage_options(layer_uri) if options is None else options
    filesystem_, path = filesystem(layer_uri, opts)
    selector = fs.FileSelector(path, allow_not_found=True, recursive=False)
    names = sorted(
        info.base_name
        for info in filesystem_.get_file_info(selector)
        if info.type == fs.FileType.Directory and not info.base_name.startswith(("_", "."))
    )
    found = {}
    for name in names:
        uri = join_uri(layer_uri, name)
        if DeltaTable.is_deltatable(uri, storage_options=dict(opts)):
            found[name] = uri
    return found


# --- atomicity ---------------------------------------------------------------------------------


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
        raise ConfigError(_NO_AZURE_ACCOUNT)
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
    if _truthy(options.get("azure_storage_use_emulator")):
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


# object_store's words for a request the store failed (after its own retries): "Error
# performing PUT <url> in 3.2s, after 10 retries, max_retries: 10, retry_timeout: 180s -
# Server returned non-2xx status code: 503 Service Unavailable: <Error>...", or for an
# answer cut short "Generic S3 error: Error getting list response body: HTTP error: ...".
_STORE_REQUEST = re.compile(
    r"Error performing (?P<method>[A-Z]+) (?P<url>\S+) in [^,]*"
    r"(?:, after (?P<retries>\d+) retries)?[^-]*- (?P<cause>.*)"
)
_STORE_ERROR = re.compile(r"Generic (?:S3|MicrosoftAzure|GCS|HTTP) error: (?P<cause>.*)")


def store_failure(error: object) -> str | None:
    """What an object-store request failed with, in a few words (the request, the object's
    name, the store's answer, the retries), when `error` is one; None for any other error.
    The object store, not the data, is then what to look at."""
    # object_store prints its cause chain one link a line, each after a coloured arrow,
    # where its message had ": ".
    text = without_colours(str(error))
    text = re.sub(r"\s*\n\s*↳\s*", ": ", text).strip()
    found = _STORE_REQUEST.search(text) or _STORE_ERROR.search(text)
    if not found:
        return None
    cause = re.split(r":?\s*<", found["cause"], maxsplit=1)[0]  # the store's XML body
    cause = " ".join(cause.removeprefix("Server returned non-2xx status code: ").split())
    if "url" not in found.groupdict():
        return cause[:_MAX_DETAIL]
    name = urlsplit(found["url"]).path.rsplit("/", 1)[-1]
    retries = f", after {found['retries']} retries" if found["retries"] else ""
    return f"{found['method']} {name}: {cause}{retries}"[:_MAX_DETAIL]


def raise_for_store(where: str, error: BaseException) -> None:
    """Raise a LakeError saying the object store failed, when `error` is such a failure
    (see store_failure); return for any other error, for the caller to raise as it came."""
    failed = store_failure(error)
    if failed:
        raise LakeError(
            f"{where}: the lake's object store failed a request ({failed}). A load never "
            "leaves half a batch: run it again when the store answers"
        ) from error


def _azure_access_mistake(detail: str, location: LakeLocation, options: Mapping[str, str]) -> str:
    """What to change, from the error of the access probe and the settings that caused it."""
    account = options.get("azure_storage_account_name", "")
    emulator = _truthy(options.get("azure_storage_use_emulator"))
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
    return "; ".join(p for p in parts if p and not p.startswith("<"))[:_MAX_DETAIL]


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
            _truthy(opts.get("aws_virtual_hosted_style_request")) or not endpoint,
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
    "BLOCK_SIZE",
    "LAKE_URI_VARIABLE",
    "LakeLocation",
    "Mount",
    "SourceChanged",
    "StorageOptions",
    "check_local_path",
    "check_path_characters",
    "check_s3_settings",
    "copy_in",
    "copy_once",
    "download",
    "exists",
    "file_signature",
    "filesystem",
    "join_uri",
    "list_tables",
    "mount_of",
    "network_share",
    "parse_lake_uri",
    "parse_mounts",
    "probe_conditional_put",
    "raise_for_store",
    "read_bytes",
    "require_atomic",
    "require_azure_access",
    "sha256_file",
    "storage_options",
    "store_failure",
    "write_once",
]
