"""Streamlit glue shared by the pages: opening the store, the sidebar, panels with downloads."""
