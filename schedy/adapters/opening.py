"""Opening a log store from what the user gives: a directory, a ``file://`` URL, or an object-store URL."""

import os
from pathlib import Path
from urllib.parse import unquote, urlparse

from .filestore import FileLogStore


def default_path():
    """The database used when none is given.

    ``$SCHEDY_DB``, else ``$XDG_DATA_HOME/schedy`` (by default ``~/.local/share/schedy``).
    """
    env = os.environ.get("SCHEDY_DB")
    if env:
        return env
    data = os.environ.get("XDG_DATA_HOME") or os.path.join(os.path.expanduser("~"), ".local", "share")
    return os.path.join(data, "schedy")


OBJECT_SCHEMES = ("s3", "s3a", "gs", "az", "abfs", "abfss", "azure", "memory")

# obstore reads HTTP client settings from the environment (AWS_ALLOW_HTTP, AZURE_TIMEOUT...) only when no
# client_options are given: options given in code replace them all (object_store's `from_env` builder, then
# `with_client_options`). Schedy adds them back, under the code's own keys.
_ENV_PREFIX = {
    "s3": "AWS_",
    "s3a": "AWS_",
    "gs": "GOOGLE_",
    "az": "AZURE_",
    "abfs": "AZURE_",
    "abfss": "AZURE_",
    "azure": "AZURE_",
}
_CLIENT_KEYS = (
    "allow_http",
    "allow_invalid_certificates",
    "connect_timeout",
    "default_content_type",
    "http1_only",
    "http2_only",
    "http2_keep_alive_interval",
    "http2_keep_alive_timeout",
    "http2_keep_alive_while_idle",
    "pool_idle_timeout",
    "pool_max_idle_per_host",
    "proxy_url",
    "proxy_ca_certificate",
    "proxy_excludes",
    "randomize_addresses",
    "read_timeout",
    "timeout",
    "user_agent",
)


def _client_options(scheme, given, opts):
    """The client options to hand obstore: ``given`` (from code) over those of the environment."""
    client = {str(k).lower(): v for k, v in dict(given or {}).items()}
    if client:
        prefix = _ENV_PREFIX.get(scheme, "")
        for key in _CLIENT_KEYS:
            value = os.environ.get(prefix + key.upper())
            if value is not None:
                client.setdefault(key, value)
        if scheme == "gs":
            client.setdefault("allow_http", True)  # GCS's builder allows HTTP by default; keep that default
    # A plain-HTTP endpoint given in code (base_url for GCS) is allowed without saying so twice.
    if any(str(opts.get(k, "")).startswith("http://") for k in ("endpoint", "base_url")):
        client.setdefault("allow_http", True)
    return client


def _open_store(location, durable, snapshot_every, file_mode, options):
    """The log store for ``location``: a directory or file:// URL, or an object store URL."""
    location = os.fspath(location)
    url = urlparse(location) if "://" in location else None
    scheme = url.scheme if url else ""
    shown = url._replace(netloc=url.hostname or "").geturl() if url else location  # never show credentials
    original = sorted(set(options) & {"config_path", "config_override"})
    if original:
        raise TypeError(
            f"{', '.join(original)}: the original client's options for its server's configuration; "
            f'Schedy has no server: pass the database location instead, SchedyDB("path/to/db") or '
            f"an s3://, gs://, az:// URL (or set SCHEDY_DB)"
        )
    if scheme in ("", "file"):
        if options:
            raise TypeError(f"options {sorted(options)} apply to object storage only, not to a local directory")
        if scheme == "file":
            if url.netloc not in ("", "localhost"):
                raise ValueError(f"a file:// URL must name a local path, got host {url.hostname!r} in {shown!r}")
            location = unquote(url.path)
        path = Path(location).absolute()
        return path, FileLogStore(path, durable=durable, snapshot_every=snapshot_every, file_mode=file_mode)
    if scheme not in OBJECT_SCHEMES:
        raise ValueError(
            f"unsupported database URL scheme {scheme!r} in {shown!r}; use a directory, file://, "
            f"s3://, gs://, az:// or memory://"
        )
    endpoint = options.get("endpoint")
    if endpoint is not None and not str(endpoint).startswith(("http://", "https://")):
        raise ValueError(f"endpoint must be an http:// or https:// URL, got {str(endpoint)[:80]!r}")
    try:
        from .objectstore import ObjectLogStore, memory_store
    except ImportError:
        raise ImportError(f"{scheme}:// databases need obstore: pip install 'schedy[cloud]'") from None

    if scheme == "memory":
        store, prefix = memory_store(url.netloc), url.path
    else:
        from obstore.store import from_url

        opts = dict(options)
        client = _client_options(scheme, opts.pop("client_options", None), opts)
        bucket_url = url._replace(path="").geturl()
        try:
            store = from_url(bucket_url, client_options=client or None, **opts)
        except (KeyboardInterrupt, SystemExit):
            raise
        except BaseException as e:  # noqa: BLE001 - obstore's own errors (and Rust panics) name no credential
            raise ValueError(f"cannot configure {shown}: {type(e).__name__}: {str(e).splitlines()[0][:300]}") from None
        prefix = url.path
    return shown, ObjectLogStore(store, prefix, location=shown, snapshot_every=snapshot_every, bucket=url.hostname)
