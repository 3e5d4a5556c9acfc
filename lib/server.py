"""One process serves everything: the Streamlit UI, the REST API under /api, and /ws.

DuckDB lets one process own the database file, so the server that shows the dashboard is also
the one that takes results in. ``DashboardServer`` is the seed's Python API for it; ``dtd serve``
and the ``server.py`` launcher use it. ``streamlit run streamlit_app.py`` still runs the UI alone
(Streamlit Community Cloud does that).
"""

from __future__ import annotations

import contextlib
import secrets
import threading
from pathlib import Path
from typing import Any

from starlette.routing import Mount, WebSocketRoute

from lib import config, events, web
from lib.api import ApiState, create_api, websocket_endpoint
from lib.config import PROJECT_ROOT, ConfigError, load_settings, read_secrets_files

CONFIGURABLE = (
    "theme",
    "auto_refresh",
    "max_items_per_page",
    "default_report_type",
    "api_cache_time",
    "api_token",
    "api_read_token",
    "max_ingest_mb",
    "inbox",
    "uploads",
)


class DashboardServer:
    """The seed's server, working: ``start()``, ``start_async()``, ``stop()``,
    ``broadcast(message)``, ``configure(dict)``, and ``app`` (the API, at /api) for adding
    routes with ``server.app.add_route("/custom", handler)``."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 8501,
        db_path: str | Path | None = None,
        output_dir: str | Path | None = None,
        result_aggregator: Any = None,
    ) -> None:
        self.host, self.port = host, int(port)
        self.output_dir = Path(output_dir) if output_dir else PROJECT_ROOT / "var" / "reports"
        if db_path is not None:
            config.OVERRIDES["db"] = str(Path(db_path).expanduser().resolve())
        self.state = ApiState(lambda: load_settings(secrets=read_secrets_files()))
        self.app = create_api(self.state)
        self._server: Any = None
        self._thread: threading.Thread | None = None

    @property
    def settings(self) -> config.Settings:
        return self.state.settings

    def configure(self, updates: dict[str, Any]) -> None:
        """Change the seed's settings for this process (the UI and the API both follow)."""
        unknown = sorted(set(updates) - set(CONFIGURABLE))
        if unknown:
            raise ConfigError(
                f"configure(): unknown keys {', '.join(unknown)}; known: {', '.join(CONFIGURABLE)}"
            )
        previous = dict(config.OVERRIDES)
        config.OVERRIDES.update({k: v for k, v in updates.items()})
        try:
            load_settings(secrets=read_secrets_files())  # validates every value
        except ConfigError:
            config.OVERRIDES.clear()
            config.OVERRIDES.update(previous)
            raise

    def broadcast(self, message: Any) -> None:
        """Send a message to every WebSocket client (type "broadcast")."""
        events.hub.publish("broadcast", message)

    def asgi(self) -> Any:
        """The ASGI app: Streamlit's UI with the API mounted at /api and the WebSocket at /ws."""
        import streamlit as st

        return st.App(
            PROJECT_ROOT / "streamlit_app.py",
            routes=[
                Mount("/api", app=self.app),
                WebSocketRoute("/ws", websocket_endpoint(self.state)),
                *web.routes(self.state),
            ],
            lifespan=self._lifespan,
        )

    @contextlib.asynccontextmanager
    async def _lifespan(self, app: Any):
        from lib import regressions

        store = self.state.store()
        regressions.run_in_background(store)
        events.watch_store(store)
        yield

    def _config(self) -> Any:
        import uvicorn

        return uvicorn.Config(
            self.asgi(),
            host=self.host,
            port=self.port,
            log_level="warning",
            ws="websockets-sansio",
            lifespan="on",
        )

    def start(self) -> None:
        """Serve until interrupted (blocks)."""
        import uvicorn

        self._server = uvicorn.Server(self._config())
        self._server.run()

    def start_async(self) -> threading.Thread:
        """Serve from a background thread; returns it (``stop()`` ends it)."""
        import uvicorn

        self._server = uvicorn.Server(self._config())
        self._thread = threading.Thread(target=self._server.run, name="dtd-server", daemon=True)
        self._thread.start()
        return self._thread

    def stop(self, timeout: float = 10.0) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout)


def ensure_write_token() -> str | None:
    """A random write token for this process when none is configured; None when one is."""
    if load_settings(secrets=read_secrets_files()).api_token:
        return None
    token = secrets.token_urlsafe(24)
    config.OVERRIDES["api_token"] = token
    return token
