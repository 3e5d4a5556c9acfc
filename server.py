"""Launcher: the dashboard UI, the REST API (/api) and the WebSocket (/ws) from one port.

    streamlit run server.py          # or: uvicorn server:app --port 8501
    dtd serve --db results.duckdb    # the same, with options

Streamlit Community Cloud runs streamlit_app.py instead (the UI alone).
"""

from lib.server import DashboardServer

app = DashboardServer().asgi()
