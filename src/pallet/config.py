"""Settings: the only place defaults live.

Every setting comes from a ``PALLET_*`` environment variable, overridable by the matching CLI flag.
The embedded default needs nothing but a data directory: SQLite at ``<data>/pallet.db`` and blobs
in ``<data>/blobs``. The secret key is generated once and kept in ``<data>/secret-key`` (0600), so
every replica sharing the data dir (or given ``PALLET_SECRET_KEY``) signs the same way.
"""

from __future__ import annotations

import base64
import os
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

GiB = 2**30


def _bool(value: str) -> bool:
    return value.strip().lower() in {"1", "true", "yes", "on"}


@dataclass(frozen=True)
class Settings:
    data_dir: Path = Path("pallet-data")
    database_url: str = ""
    storage_url: str = ""
    secret_key: str = ""
    host: str = "127.0.0.1"
    port: int = 8000
    workers: int = 1
    private: bool = False
    #: A scrape credential for ``/_/metrics`` (Bearer token or Basic password); when set, or
    #: on a private index, metrics need it or a read token for every project.
    metrics_token: str = ""
    #: The index's public URL (``https://pypi.example.com``), the base of every absolute URL
    #: it hands out. Unset: the request's, with its Host checked against ``allowed_hosts``.
    base_url: str = ""
    #: Comma-separated Host names to answer to when ``base_url`` is unset (``*.corp`` allowed;
    #: ``*`` turns the check off). Default: loopback names and the bound address.
    allowed_hosts: str = ""
    #: Proxies whose X-Forwarded-For/-Proto are believed (comma-separated IPs or CIDRs).
    forwarded_allow_ips: str = ""
    #: Slow or lying clients (see pallet.connections): seconds for a request's headers, seconds
    #: a request body may stall, open connections per worker process.
    header_timeout: float = 10.0
    body_idle_timeout: float = 30.0
    max_connections: int = 1000
    #: Seconds an idle kept-alive connection stays open. Longer than a front proxy's own idle
    #: timeout for its upstream connections (nginx's ``keepalive_timeout``, 60 s; a cloud load
    #: balancer's, 60 s): the proxy must be the side that closes, or it may send a request on a
    #: connection this server is closing that moment, and a POST gets a 502 it cannot retry.
    keep_alive_timeout: float = 75.0
    #: ``/_/ready`` reports not ready below this much free space for spooling and blobs.
    min_free_space: int = 64 * 2**20
    max_file_size: int = 2 * GiB
    project_quota: int = 0  # bytes per project; 0 = unlimited
    allow_local_versions: bool = False
    access_log: bool = True
    #: This replica's name in ``pallet_replica_info`` and the JSON access log; ``pallet serve``
    #: defaults it to ``<hostname>:<port>``.
    replica_id: str = ""
    #: ``text`` (default) or ``json``: one JSON object per access-log line and per log record.
    log_format: str = "text"
    # Upload 2.0 (PEP 694); durations in seconds.
    upload_root: str = "/upload/2.0/"
    session_lifetime: int = 24 * 3600
    session_max_lifetime: int = 7 * 24 * 3600
    file_session_lifetime: int = 3600
    session_retention: int = 7 * 24 * 3600
    deferred_publish: bool = False
    deferred_complete_size: int = 64 * 2**20
    #: seconds ``complete`` waits for a deferred verification before answering 202
    complete_wait: float = 1.0
    gc_interval: int = 300
    #: seconds an unreferenced blob, staged object or spool file is left alone before garbage
    #: collection removes it: uploads store bytes moments before the row that refers to them.
    gc_grace: int = 24 * 3600
    presign_ttl: int = 900  # seconds a pre-signed upload URL stays valid
    #: S3 only: answer downloads with a redirect to a pre-signed GET (stable per window, so
    #: installers' URL-keyed caches work) instead of streaming through Pallet.
    download_redirect: bool = False
    download_url_window: int = 300
    #: Trusted publishing (pallet.auth.oidc): the ``aud`` an OIDC token must carry (``pypi`` is
    #: PyPI's; give each index its own, so a token minted for one is refused by the others).
    oidc_audience: str = "pallet"
    #: ``ISSUER=FILE ...``: issuers whose JWKS is read from a file instead of fetched (air-gapped
    #: sites); an issuer not named here is discovered over HTTPS.
    oidc_jwks: str = ""
    #: PEP 740 attestations of trusted-published files are verified against the Sigstore trust
    #: root shipped with the installed ``sigstore`` (no network); on: refreshed over TUF first.
    sigstore_online: bool = False
    #: The upstream proxy (pallet.proxy): ``[NAME=]URL`` items separated by whitespace or
    #: commas, asked in order for projects this index does not have or claim. Credentials come
    #: from ``PALLET_UPSTREAM_<NAME>_TOKEN`` (Bearer) or ``..._USERNAME``/``..._PASSWORD``,
    #: never from the URL. Empty: no upstream (``upstream: none``).
    upstreams: str = ""
    #: Names or ``PREFIX*`` patterns: only these go upstream (empty: any), and never these.
    upstream_allow: str = ""
    upstream_deny: str = ""
    #: Serve only what is stored; never ask an upstream.
    upstream_offline: bool = False
    #: Seconds a proxied page is served without asking the upstream again (then revalidated
    #: with its ETag; while that runs, and while the upstream fails, the stored copy is served).
    upstream_page_ttl: int = 600
    #: Seconds past that during which the stored page is still answered at once while it is
    #: revalidated in the background (RFC 5861); 0: every expired page waits for its check.
    upstream_stale_while_revalidate: int = 60
    upstream_timeout: float = 30.0
    #: Seconds an upstream that just failed (unreachable, timeout, 5xx) is left alone: stored
    #: pages are served stale meanwhile, and pages never stored get a 502 at once.
    upstream_retry_after: float = 10.0
    #: Bytes of proxied files kept (0: no limit); past it, each sweep evicts the least
    #: recently used. Private files and files a registered lockfile pins are never evicted.
    upstream_quota: int = 0
    upstream_max_page: int = 64 * 2**20
    #: Serve HTTPS directly (PEM files); without them, plain HTTP for a TLS proxy in front.
    tls_certfile: str = ""
    tls_keyfile: str = ""
    #: Test hook: at most this many seconds every deferred (202) task waits before working, so
    #: tests can observe the ``processing`` state; with ``test_hooks`` a test ends the wait
    #: (pallet.testhooks). Always 0 in production.
    processing_delay: float = 0.0
    #: Test hook, never for production: ``METHOD:REGEX,...``; the first request matching each
    #: item is answered 503 without reaching the endpoint (see pallet.faults). Empty = off.
    inject_503: str = ""
    #: Test hook, never for production: ``POST /_/test/expire`` ends a session on cue (see
    #: pallet.testhooks), so tests of expiry need not race the clock. Off: no such route.
    test_hooks: bool = False

    @property
    def tmp_dir(self) -> Path:
        """Spool directory for uploads in flight; on the blob folder's filesystem so publish renames."""
        return self.data_dir / "tmp"

    def resolved(self, *, secret: bool = True) -> Settings:
        """Fill the data-dir-relative defaults and the secret key (read, or created once, from
        ``<data>/secret-key``). ``secret=False`` leaves an unset key empty and creates nothing."""
        data_dir = self.data_dir.expanduser().absolute()
        database_url = self.database_url or f"sqlite:///{data_dir / 'pallet.db'}"
        storage_url = self.storage_url or f"file://{data_dir / 'blobs'}"
        secret_key = self.secret_key or (_load_or_create_secret(data_dir) if secret else "")
        return replace(
            self,
            data_dir=data_dir,
            database_url=database_url,
            storage_url=storage_url,
            secret_key=secret_key,
        )

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, /, **overrides: Any) -> Settings:
        """Read ``PALLET_<FIELD>`` variables, then apply non-None keyword overrides (CLI flags)."""
        env = os.environ if env is None else env
        values: dict[str, Any] = {}
        for f in fields(cls):
            raw = env.get("PALLET_" + f.name.upper())
            if raw is None or raw == "":
                continue
            values[f.name] = _coerce(f.type, raw)
        values.update({k: v for k, v in overrides.items() if v is not None})
        if "data_dir" in values:
            values["data_dir"] = Path(values["data_dir"])
        return cls(**values)

    def to_env(self) -> dict[str, str]:
        """The inverse of from_env, used to hand settings to uvicorn worker processes."""
        out = {}
        for f in fields(self):
            value = getattr(self, f.name)
            out["PALLET_" + f.name.upper()] = (
                ("1" if value else "0") if isinstance(value, bool) else str(value)
            )
        return out


def _coerce(type_name: Any, raw: str) -> Any:
    name = getattr(type_name, "__name__", str(type_name))
    if name == "bool":
        return _bool(raw)
    if name == "int":
        return parse_size(raw)
    if name == "float":
        return float(raw)
    return raw


def parse_size(raw: str) -> int:
    """Integers with an optional binary suffix: ``100M``, ``2GiB``, ``512k``."""
    text = raw.strip().lower().removesuffix("ib").removesuffix("b")
    scale = {"k": 2**10, "m": 2**20, "g": 2**30, "t": 2**40}
    if text and text[-1] in scale:
        return int(float(text[:-1]) * scale[text[-1]])
    return int(text)


def parse_pins(spec: str) -> dict[str, Path]:
    """``oidc_jwks``: ``ISSUER=FILE`` items separated by whitespace or commas."""
    pins = {}
    for item in spec.replace(",", " ").split():
        issuer, sep, path = item.rpartition("=")
        if not sep or not issuer or not path:
            raise ValueError(f"--oidc-jwks takes ISSUER=FILE, not {item!r}")
        pins[issuer.rstrip("/")] = Path(path)
    return pins


SECRET_KEY_FILE = "secret-key"  # noqa: S105 - a file name, not a secret


def _load_or_create_secret(data_dir: Path) -> str:
    path = data_dir / SECRET_KEY_FILE
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        pass
    data_dir.mkdir(parents=True, exist_ok=True)
    # secrets.token_urlsafe(32), spelt out: importing ``secrets`` loads OpenSSL (3.5 MB resident),
    # which `pallet serve`'s parent process has no other use for.
    key = base64.urlsafe_b64encode(os.urandom(32)).rstrip(b"=").decode("ascii")
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another worker won the race
        return path.read_text().strip()
    try:
        os.write(fd, key.encode())
    finally:
        os.close(fd)
    return key
