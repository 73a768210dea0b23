"""Settings read from the environment (prefix ``STEPGRAPH_``), validated once."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from stepgraph.auth.jwt import JwtSettings
from stepgraph.errors import SettingsError

__all__ = ["Settings", "SettingsError"]


def _int(env: Mapping[str, str], name: str, default: int, *, minimum: int) -> int:
    raw = env.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = int(raw.strip())
    except ValueError:
        raise SettingsError(f"{name} must be an integer, got {raw!r}") from None
    if value < minimum:
        raise SettingsError(f"{name} must be at least {minimum}, got {value}")
    return value


def _bool(env: Mapping[str, str], name: str, default: bool) -> bool:
    raw = env.get(name)
    if raw is None or raw.strip() == "":
        return default
    lowered = raw.strip().lower()
    if lowered in {"1", "true", "yes", "on"}:
        return True
    if lowered in {"0", "false", "no", "off"}:
        return False
    raise SettingsError(f"{name} must be true or false, got {raw!r}")


@dataclass(frozen=True, slots=True)
class Settings:
    """Everything stepgraph needs to run; build it with :meth:`from_env`."""

    data_dir: Path = Path(".data")
    database_url: str = ""
    host: str = "127.0.0.1"
    port: int = 8000
    default_page_size: int = 25
    max_page_size: int = 100
    demo_rows: int = 5000
    log_level: str = "info"
    graphiql: bool = True
    # Schema introspection without a token (GraphiQL, codegen, Apollo tooling).
    introspection: bool = True
    # In demo mode GraphiQL starts with this API key in its headers pane.
    demo_key: str | None = field(default=None, repr=False)
    # Documents beyond these are refused before they run.
    max_query_depth: int = 12
    max_query_aliases: int = 30
    max_query_tokens: int = 5000
    # Operations one batched request may carry; 0 turns batching off.
    max_batch: int = 0
    # Request bodies beyond this many bytes get 413.
    max_body_bytes: int = 1_000_000
    # Store statements running longer than this are cancelled.
    statement_timeout_ms: int = 5000
    # On SQLite, a read first runs on the event loop for at most this long (no hand-off to
    # the connection's thread); one that takes longer is interrupted and run on the
    # thread. 0 runs every read on the thread.
    sqlite_inline_read_ms: int = 10
    # Origins allowed to call from a browser (CORS); empty means none.
    cors_origins: tuple[str, ...] = ()
    # Connections per process to a server store (PostgreSQL): kept open, and extra under load.
    pool_size: int = 5
    pool_max_overflow: int = 10
    # A read-only replica that serves reads (pages, lookups, statistics); keys and
    # imports always use the primary, so a revoked key is refused at once.
    replica_database_url: str | None = None
    # Session JWTs (e.g. Clerk) checked against a JWKS; None accepts API keys only.
    jwt: JwtSettings | None = None
    extra: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not 1 <= self.default_page_size <= self.max_page_size:
            raise SettingsError(
                "STEPGRAPH_DEFAULT_PAGE_SIZE must be between 1 and STEPGRAPH_MAX_PAGE_SIZE "
                f"({self.max_page_size}), got {self.default_page_size}"
            )
        if not self.database_url:
            url = f"sqlite+aiosqlite:///{(self.data_dir / 'stepgraph.db').as_posix()}"
            object.__setattr__(self, "database_url", url)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """Read settings from ``env`` (default: the process environment)."""
        env = os.environ if env is None else env
        known = {
            "STEPGRAPH_DATA_DIR",
            "STEPGRAPH_DATABASE_URL",
            "STEPGRAPH_HOST",
            "STEPGRAPH_PORT",
            "STEPGRAPH_DEFAULT_PAGE_SIZE",
            "STEPGRAPH_MAX_PAGE_SIZE",
            "STEPGRAPH_DEMO_ROWS",
            "STEPGRAPH_LOG_LEVEL",
            "STEPGRAPH_GRAPHIQL",
            "STEPGRAPH_INTROSPECTION",
            "STEPGRAPH_DEMO_KEY",
            "STEPGRAPH_MAX_QUERY_DEPTH",
            "STEPGRAPH_MAX_QUERY_ALIASES",
            "STEPGRAPH_MAX_QUERY_TOKENS",
            "STEPGRAPH_MAX_BODY_BYTES",
            "STEPGRAPH_MAX_BATCH",
            "STEPGRAPH_STATEMENT_TIMEOUT_MS",
            "STEPGRAPH_SQLITE_INLINE_READ_MS",
            "STEPGRAPH_CORS_ORIGINS",
            "STEPGRAPH_POOL_SIZE",
            "STEPGRAPH_POOL_MAX_OVERFLOW",
            "STEPGRAPH_REPLICA_DATABASE_URL",
            *_JWT_VARIABLES,
        }
        extra = {
            k: v
            for k, v in env.items()
            if k.startswith("STEPGRAPH_") and not k.startswith("STEPGRAPH_TEST_") and k not in known
        }
        return cls(
            data_dir=Path(env.get("STEPGRAPH_DATA_DIR") or ".data"),
            database_url=env.get("STEPGRAPH_DATABASE_URL", ""),
            host=env.get("STEPGRAPH_HOST") or "127.0.0.1",
            port=_int(env, "STEPGRAPH_PORT", 8000, minimum=0),
            default_page_size=_int(env, "STEPGRAPH_DEFAULT_PAGE_SIZE", 25, minimum=1),
            max_page_size=_int(env, "STEPGRAPH_MAX_PAGE_SIZE", 100, minimum=1),
            demo_rows=_int(env, "STEPGRAPH_DEMO_ROWS", 5000, minimum=0),
            log_level=(env.get("STEPGRAPH_LOG_LEVEL") or "info").lower(),
            graphiql=_bool(env, "STEPGRAPH_GRAPHIQL", True),
            introspection=_bool(env, "STEPGRAPH_INTROSPECTION", True),
            demo_key=env.get("STEPGRAPH_DEMO_KEY") or None,
            max_query_depth=_int(env, "STEPGRAPH_MAX_QUERY_DEPTH", 12, minimum=1),
            max_query_aliases=_int(env, "STEPGRAPH_MAX_QUERY_ALIASES", 30, minimum=0),
            max_query_tokens=_int(env, "STEPGRAPH_MAX_QUERY_TOKENS", 5000, minimum=100),
            max_batch=_int(env, "STEPGRAPH_MAX_BATCH", 0, minimum=0),
            max_body_bytes=_int(env, "STEPGRAPH_MAX_BODY_BYTES", 1_000_000, minimum=1024),
            statement_timeout_ms=_int(env, "STEPGRAPH_STATEMENT_TIMEOUT_MS", 5000, minimum=1),
            sqlite_inline_read_ms=_int(env, "STEPGRAPH_SQLITE_INLINE_READ_MS", 10, minimum=0),
            jwt=_jwt_settings(env),
            pool_size=_int(env, "STEPGRAPH_POOL_SIZE", 5, minimum=1),
            pool_max_overflow=_int(env, "STEPGRAPH_POOL_MAX_OVERFLOW", 10, minimum=0),
            replica_database_url=env.get("STEPGRAPH_REPLICA_DATABASE_URL") or None,
            cors_origins=tuple(
                o.strip() for o in env.get("STEPGRAPH_CORS_ORIGINS", "").split(",") if o.strip()
            ),
            extra=extra,
        )

    @property
    def is_sqlite(self) -> bool:
        """True when the store is an embedded SQLite file."""
        return self.database_url.startswith("sqlite")


_JWT_VARIABLES = (
    "STEPGRAPH_JWT_JWKS_URL",
    "STEPGRAPH_JWT_JWKS_FILE",
    "STEPGRAPH_JWT_ISSUER",
    "STEPGRAPH_JWT_AUDIENCE",
    "STEPGRAPH_JWT_AUTHORIZED_PARTIES",
    "STEPGRAPH_JWT_LEEWAY_SECONDS",
    "STEPGRAPH_JWT_ORGANIZATION_CLAIM",
    "STEPGRAPH_JWT_SCOPES_CLAIM",
    "STEPGRAPH_JWT_DEFAULT_SCOPES",
    "STEPGRAPH_JWT_ALGORITHMS",
)


def _words(env: Mapping[str, str], name: str) -> tuple[str, ...] | None:
    raw = env.get(name)
    if raw is None or not raw.strip():
        return None
    return tuple(w for w in raw.replace(",", " ").split() if w)


def _jwt_settings(env: Mapping[str, str]) -> JwtSettings | None:
    url = env.get("STEPGRAPH_JWT_JWKS_URL") or None
    file = env.get("STEPGRAPH_JWT_JWKS_FILE") or None
    if url is None and file is None:
        configured = [n for n in _JWT_VARIABLES if env.get(n)]
        if configured:
            raise SettingsError(
                f"{', '.join(configured)} set but neither STEPGRAPH_JWT_JWKS_URL nor "
                "STEPGRAPH_JWT_JWKS_FILE: session JWTs need a JWKS"
            )
        return None
    defaults = JwtSettings(jwks_url="https://unused.invalid/jwks")
    scopes = _words(env, "STEPGRAPH_JWT_DEFAULT_SCOPES")
    try:
        return JwtSettings(
            jwks_url=url,
            jwks_file=Path(file) if file else None,
            issuer=env.get("STEPGRAPH_JWT_ISSUER") or None,
            audience=env.get("STEPGRAPH_JWT_AUDIENCE") or None,
            authorized_parties=_words(env, "STEPGRAPH_JWT_AUTHORIZED_PARTIES") or (),
            leeway_seconds=_int(
                env, "STEPGRAPH_JWT_LEEWAY_SECONDS", defaults.leeway_seconds, minimum=0
            ),
            organization_claim=env.get("STEPGRAPH_JWT_ORGANIZATION_CLAIM")
            or defaults.organization_claim,
            scopes_claim=env.get("STEPGRAPH_JWT_SCOPES_CLAIM") or defaults.scopes_claim,
            default_scopes=frozenset(scopes) if scopes is not None else defaults.default_scopes,
            algorithms=_words(env, "STEPGRAPH_JWT_ALGORITHMS") or defaults.algorithms,
        )
    except SettingsError as exc:
        raise SettingsError(f"STEPGRAPH_JWT_*: {exc}") from None
