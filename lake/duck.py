"""DuckDB connections that can read Delta offline, from local disk or object storage.

DuckDB is pinned to 1.4.4 with the `delta` extension from the duckdb-ext-delta wheel (see the
pin in pyproject.toml for why): the extension directory points at that wheel's files and
autoinstall is off, so nothing is ever downloaded and `delta_scan` loads on first use.

A lake in object storage also needs `httpfs` (S3) or `azure` from the duckdb-ext-httpfs /
duckdb-ext-azure wheels, and a DuckDB secret built from the lake's storage options.
`configure_lake()` does both. Secrets are temporary (per connection): they are never written
to the serving file, so every connection that reads a remote lake must be configured.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from urllib.parse import urlsplit

import duckdb

from lake import storage
from lake.errors import ConfigError

_EXTENSION_PACKAGES = {
    "delta": "duckdb-ext-delta",
    "httpfs": "duckdb-ext-httpfs",
    "azure": "duckdb-ext-azure",
    "aws": "duckdb-ext-aws",
}
SECRET_NAME = "kommunelake_lake"


def extension_directory() -> str:
    import duckdb_ext  # namespace package shipped by duckdb-ext-delta

    for base in duckdb_ext.__path__:
        candidate = Path(base) / "extensions"
        if candidate.is_dir():
            return str(candidate)
    raise RuntimeError("duckdb-ext-delta is not installed: run `make install`")


def extension_path(name: str) -> Path | None:
    """The `<name>.duckdb_extension` file shipped by a duckdb-ext-* wheel, if installed."""
    try:
        import duckdb_ext
    except ImportError:
        return None
    version = f"v{duckdb.__version__}"
    for base in duckdb_ext.__path__:
        for candidate in sorted(Path(base).glob(f"extensions/{version}/*/{name}.duckdb_extension")):
            return candidate
    return None


def load_extension(con, name: str) -> None:
    """LOAD an extension by path from its wheel, or say which package to add."""
    path = extension_path(name)
    if path is None:
        package = _EXTENSION_PACKAGES.get(name, f"duckdb-ext-{name}")
        raise ConfigError(
            f"DuckDB extension {name!r} is not installed: add `{package}=="
            f"{duckdb.__version__}.*` to pyproject.toml and run `make install` "
            "(DuckDB cannot download extensions here)"
        )
    con.execute(f"LOAD {sql_string(str(path))}")


def duck_connect(
    database: str | Path = ":memory:", *, read_only: bool = False, lake_uri: str | None = None
):
    """A DuckDB connection with `delta` loaded; with a remote `lake_uri`, also able to read
    it (see configure_lake)."""
    config = {
        "extension_directory": extension_directory(),
        "autoinstall_known_extensions": False,
        "autoload_known_extensions": True,
    }
    con = duckdb.connect(str(database), read_only=read_only, config=config)
    load_extension(con, "delta")
    if lake_uri:
        try:
            configure_lake(con, lake_uri)
        except BaseException:
            con.close()
            raise
    return con


def configure_lake(con, lake_uri: str, options: Mapping[str, str] | None = None) -> None:
    """Make `delta_scan('<lake_uri>/...')` work on `con`: load httpfs (S3) or azure, and
    create a temporary secret scoped to the lake from its storage options (by default the
    AWS_* / AZURE_* environment). Nothing to do for a local lake."""
    location = storage.parse_lake_uri(lake_uri)
    if not location.is_remote:
        return
    opts = storage.storage_options(lake_uri) if options is None else options
    if location.kind == "s3":
        load_extension(con, "httpfs")
        fields = _s3_secret(location, opts)
        if fields.get("PROVIDER") == "credential_chain":
            load_extension(con, "aws")
    else:
        load_extension(con, "azure")
        fields = _azure_secret(location, opts)
    body = ", ".join(f"{key} {value}" for key, value in fields.items())
    try:
        con.execute(f"CREATE OR REPLACE TEMPORARY SECRET {SECRET_NAME} ({body})")
    except duckdb.Error as error:
        # The statement holds credentials: report the error class only, never its text.
        raise ConfigError(
            f"could not configure DuckDB for the lake at {lake_uri} "
            f"({type(error).__name__}); check the AWS_* / AZURE_* variables"
        ) from None


def _s3_secret(location: storage.LakeLocation, opts: Mapping[str, str]) -> dict[str, str]:
    fields = {
        "TYPE": "s3",
        "SCOPE": sql_string(f"{location.scheme}://{location.container}"),
        "REGION": sql_string(opts.get("aws_region", "us-east-1")),
    }
    if opts.get("aws_access_key_id"):
        fields["KEY_ID"] = sql_string(opts["aws_access_key_id"])
        fields["SECRET"] = sql_string(opts.get("aws_secret_access_key", ""))
        if opts.get("aws_session_token"):
            fields["SESSION_TOKEN"] = sql_string(opts["aws_session_token"])
    else:
        fields["PROVIDER"] = "credential_chain"  # instance roles, SSO, profiles (aws extension)
    endpoint = opts.get("aws_endpoint_url")
    if endpoint:
        parts = urlsplit(endpoint if "://" in endpoint else f"https://{endpoint}")
        fields["ENDPOINT"] = sql_string(parts.netloc)
        fields["USE_SSL"] = "false" if parts.scheme == "http" else "true"
        virtual = opts.get("aws_virtual_hosted_style_request", "").lower() in ("1", "true")
        fields["URL_STYLE"] = sql_string("vhost" if virtual else "path")
    return fields


def _azure_secret(location: storage.LakeLocation, opts: Mapping[str, str]) -> dict[str, str]:
    account = opts.get("azure_storage_account_name")
    if not account:
        raise ConfigError(
            "Azure lake without an account: set AZURE_STORAGE_ACCOUNT_NAME or use "
            "abfss://container@ACCOUNT.dfs.core.windows.net/prefix"
        )
    fields = {"TYPE": "azure"}
    endpoint = storage.azure_endpoint(opts)
    key, sas = opts.get("azure_storage_account_key"), opts.get("azure_storage_sas_token")
    if key or sas:
        parts = [f"AccountName={account}"]
        parts.append(f"AccountKey={key}" if key else f"SharedAccessSignature={sas}")
        if endpoint:
            parts += [
                f"DefaultEndpointsProtocol={urlsplit(endpoint).scheme}",
                f"BlobEndpoint={endpoint}/{account}",
            ]
        fields["CONNECTION_STRING"] = sql_string(";".join(parts))
    elif opts.get("azure_client_secret"):
        fields |= {
            "PROVIDER": "service_principal",
            "TENANT_ID": sql_string(opts.get("azure_tenant_id", "")),
            "CLIENT_ID": sql_string(opts.get("azure_client_id", "")),
            "CLIENT_SECRET": sql_string(opts["azure_client_secret"]),
            "ACCOUNT_NAME": sql_string(account),
        }
    else:
        fields |= {"PROVIDER": "credential_chain", "ACCOUNT_NAME": sql_string(account)}
    return fields


def sql_string(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"
