"""Settings read from the environment (prefix ``STEPGRAPH_``), validated once."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path


class SettingsError(ValueError):
    """An environment variable holds a value stepgraph cannot use."""


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
            extra=extra,
        )

    @property
    def is_sqlite(self) -> bool:
        """True when the store is an embedded SQLite file."""
        return self.database_url.startswith("sqlite")
