"""Settings: where the database lives and the seed's dashboard options.

Precedence, highest first: environment variables (``DTD_DB``, ``DTD_AUTO_REFRESH``, ...), the
``[dtd]`` table of Streamlit secrets, then defaults. The UI passes ``st.secrets``; the command line
reads the same ``secrets.toml`` files Streamlit would, so both agree on which database they mean.
This module does not import Streamlit: the CLI and the API use it too.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DB_PATH = PROJECT_ROOT / "var" / "dashboard.duckdb"

REFRESH_CHOICES: dict[str, int] = {
    "off": 0,
    "5s": 5,
    "10s": 10,
    "30s": 30,
    "1m": 60,
    "5m": 300,
    "15m": 900,
    "30m": 1800,
    "1h": 3600,
}
"""Grafana's refresh intervals; never faster than 5 s."""

REPORT_TYPES = ("performance", "regression", "dimension", "worker", "test")
"""The seed's report types (``lib.reports`` builds them; named here so the CLI need not import it)."""

DEMO_RESULTS = 200_000
DEMO_DAYS = 30
DEMO_SEED = 42
"""``dtd demo``'s defaults (``lib.demo`` uses them; named here for the same reason)."""
UPLOAD_POLICIES = ("auto", "on", "token", "off")


OVERRIDES: dict[str, Any] = {}
"""Settings set in this process (``DashboardServer.configure``, ``dtd serve --db``): they beat the
environment and secrets, for the UI and the API alike, since both run here."""


class ConfigError(ValueError):
    """A setting has a value we cannot use; the message names the setting and its source."""


@dataclass(frozen=True)
class Settings:
    """The seed's configuration keys plus the database location."""

    db_path: Path
    db_configured: bool
    """False when no one chose a location: the app then creates a demo database on first run."""
    theme: str = "light"
    auto_refresh: int = 0
    max_items_per_page: int = 50
    default_report_type: str = "performance"
    api_cache_time: int = 10
    max_ingest_mb: int = 512
    """Largest file one ingest accepts."""
    inbox: str = ""
    """A folder the dashboard watches for result files ("" = none)."""
    api_token: str = ""
    """Bearer token the REST API requires for writes ("" = writes refused)."""
    api_read_token: str = ""
    """Bearer token for reads too ("" = reads are open)."""
    uploads: str = "auto"
    """The Data page's upload area: "on", "token" (after signing in with api_token), "off", or
    "auto" = "token" when an api_token is configured, else "on" (the local demo)."""

    @property
    def upload_policy(self) -> str:
        """ "on", "token" or "off": what ``uploads`` means with this configuration."""
        if self.uploads == "auto":
            return "token" if self.api_token else "on"
        return self.uploads

    @property
    def refresh_choice(self) -> str:
        """The refresh option closest to ``auto_refresh`` without going below it."""
        if self.auto_refresh <= 0:
            return "off"
        for label, seconds in REFRESH_CHOICES.items():
            if seconds >= self.auto_refresh:
                return label
        return "1h"


_INT_KEYS = {
    "max_ingest_mb": (1, 100_000),
    "auto_refresh": (0, 86400),
    "max_items_per_page": (1, 10000),
    "api_cache_time": (0, 86400),
}


def _coerce(key: str, raw: Any, source: str) -> Any:
    if key in _INT_KEYS:
        low, high = _INT_KEYS[key]
        try:
            value = int(str(raw).strip())
        except ValueError:
            raise ConfigError(f"{source}: {key} must be a whole number, got {raw!r}.") from None
        if not low <= value <= high:
            raise ConfigError(f"{source}: {key} must be between {low} and {high}, got {value}.")
        return value
    value = str(raw).strip()
    if key == "theme" and value not in ("light", "dark"):
        raise ConfigError(f"{source}: theme must be 'light' or 'dark', got {value!r}.")
    if key == "uploads" and value not in UPLOAD_POLICIES:
        raise ConfigError(
            f"{source}: uploads must be one of {', '.join(UPLOAD_POLICIES)}, got {value!r}."
        )
    if key == "default_report_type" and value not in REPORT_TYPES:
        raise ConfigError(
            f"{source}: default_report_type must be one of {', '.join(REPORT_TYPES)}, got {value!r}."
        )
    return value


def read_secrets_files(root: Path = PROJECT_ROOT) -> dict[str, Any]:
    """Read secrets the way Streamlit does (global file, then the project's) for non-UI callers."""
    merged: dict[str, Any] = {}
    for path in (Path.home() / ".streamlit" / "secrets.toml", root / ".streamlit" / "secrets.toml"):
        if path.is_file():
            try:
                merged.update(tomllib.loads(path.read_text(encoding="utf-8")))
            except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
                raise ConfigError(f"{path} is not valid TOML ({exc}); fix or remove it.") from None
    return merged


def load_settings(
    secrets: Mapping[str, Any] | None = None,
    env: Mapping[str, str] | None = None,
    db_override: str | os.PathLike[str] | None = None,
) -> Settings:
    """Resolve settings; ``db_override`` is a ``--db`` flag and beats everything else."""
    env = os.environ if env is None else env
    section = (secrets or {}).get("dtd") or {}
    if not isinstance(section, Mapping):
        raise ConfigError(
            f'secrets: [dtd] must be a table of settings (like `[dtd]` then `db = "..."`), '
            f"got {type(section).__name__} {section!r}."
        )
    values: dict[str, Any] = {}
    for field in fields(Settings):
        key = field.name
        if key in ("db_path", "db_configured"):
            continue
        env_key = f"DTD_{key.upper()}"
        if key in OVERRIDES:
            values[key] = _coerce(key, OVERRIDES[key], f"configure() {key}")
        elif env.get(env_key, "").strip():
            values[key] = _coerce(key, env[env_key], f"environment variable {env_key}")
        elif key in section:
            values[key] = _coerce(key, section[key], f"secrets [dtd] {key}")

    db_override = db_override or OVERRIDES.get("db")
    if db_override:
        db_path, configured = Path(db_override), True
    elif env.get("DTD_DB", "").strip():
        db_path, configured = Path(env["DTD_DB"].strip()), True
    elif str(section.get("db", "")).strip():
        db_path, configured = Path(str(section["db"]).strip()), True
    else:
        db_path, configured = DEFAULT_DB_PATH, False
    db_path = db_path.expanduser()
    if not db_path.is_absolute():
        db_path = (Path.cwd() / db_path).resolve()
    return Settings(db_path=db_path, db_configured=configured, **values)
