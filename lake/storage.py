"""Where the lake's bytes live: a local directory (the default) or object storage (S3, Azure).

`KOMMUNELAKE_LAKE_URI` names the lake (`s3://bucket/prefix`, `az://container/prefix`,
`abfss://container@account.dfs.core.windows.net/prefix`); credentials come from the standard
AWS_* / AZURE_* variables, read at call time and never logged (`storage_options()` returns a
dict whose repr shows only the keys).

Whether a store can commit Delta versions atomically is checked in `lake.atomicity`;
pre-deltalake-1.0 S3 settings that turn that guarantee off are refused here, where the
options are read.

Raw landing files go through pyarrow's S3/Azure file systems (pyarrow is already a core
dependency; deltalake's own pyarrow handler fails on writes with pyarrow 26).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
from collections.abc import Callable, Mapping, MutableMapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlsplit

from lake.errors import ConfigError, LakeError, without_colours

LAKE_URI_VARIABLE = "KOMMUNELAKE_LAKE_URI"
MAX_DETAIL = 400  # characters of a store's own error shown after ours
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
        if truthy(options.get("azure_storage_use_emulator")):
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
    if truthy(fields.get("usedevelopmentstorage")):
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
        if value and (variable != "AWS_S3_ALLOW_UNSAFE_RENAME" or truthy(value)):
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


def truthy(value: str | None) -> bool:
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
    if truthy(opts.get("aws_virtual_hosted_style_request")):
        kwargs["force_virtual_addressing"] = True
    return fs.S3FileSystem(**kwargs)


NO_AZURE_ACCOUNT = (
    "Azure lake without an account: set AZURE_STORAGE_ACCOUNT_NAME or use "
    "abfss://container@ACCOUNT.dfs.core.windows.net/prefix"
)


def _azure_filesystem(opts: Mapping[str, str]):
    from pyarrow import fs

    account = opts.get("azure_storage_account_name")
    if not account:
        raise ConfigError(NO_AZURE_ACCOUNT)
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
    if truthy(opts.get("azure_storage_use_emulator")):
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
        return cause[:MAX_DETAIL]
    name = urlsplit(found["url"]).path.rsplit("/", 1)[-1]
    retries = f", after {found['retries']} retries" if found["retries"] else ""
    return f"{found['method']} {name}: {cause}{retries}"[:MAX_DETAIL]


def raise_for_store(where: str, error: BaseException) -> None:
    """Raise a LakeError saying the object store failed, when `error` is such a failure
    (see store_failure); return for any other error, for the caller to raise as it came."""
    failed = store_failure(error)
    if failed:
        raise LakeError(
            f"{where}: the lake's object store failed a request ({failed}). A load never "
            "leaves half a batch: run it again when the store answers"
        ) from error


__all__ = [
    "BLOCK_SIZE",
    "LAKE_URI_VARIABLE",
    "LakeLocation",
    "SourceChanged",
    "StorageOptions",
    "check_s3_settings",
    "copy_in",
    "copy_once",
    "download",
    "exists",
    "file_signature",
    "filesystem",
    "join_uri",
    "list_tables",
    "parse_lake_uri",
    "raise_for_store",
    "read_bytes",
    "sha256_file",
    "storage_options",
    "store_failure",
    "write_once",
]
