"""Showing names people chose (tests, workers, files) inside Markdown without it acting on them.

``st.markdown`` does not run HTML, but it does read Markdown, LaTeX (``$``), emoji and icon
shortcodes (``:smile:``, ``:material/x:``) and colour directives (``:red[...]``) from the text it
is given; a test named ``[x](javascript:...)`` or ``**boom**`` must show as typed.
"""

from __future__ import annotations

import re

_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-.!|<>~$:=&])")


def md(text: object) -> str:
    """The text with every character Markdown (as Streamlit reads it) could act on escaped."""
    return _SPECIAL.sub(r"\\\1", str(text))
