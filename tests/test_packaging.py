"""What a fresh machine and Streamlit Community Cloud install must agree with what we test."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

PROJECT = Path(__file__).resolve().parent.parent


def _requirements() -> list[str]:
    lines = (PROJECT / "requirements.txt").read_text().splitlines()
    return sorted(line.strip() for line in lines if line.strip() and not line.startswith("#"))


def test_requirements_txt_matches_pyproject_pins() -> None:
    project = tomllib.loads((PROJECT / "pyproject.toml").read_text())["project"]
    assert _requirements() == sorted(project["dependencies"])
    pins = dict(line.split("==") for line in _requirements())
    assert pins["duckdb"].startswith("2.0.")
    assert pins["streamlit"].startswith("1.67.")
    assert pins["altair"].startswith("6.")


def test_quick_start_holds_two_commands_and_ci_runs_the_second() -> None:
    readme = (PROJECT / "README.md").read_text()
    section = readme.split("## Quick start", 1)[1]
    block = re.search(r"```[a-z]*\n(.*?)```", section, re.S).group(1)
    commands = [line.strip() for line in block.splitlines() if line.strip()]
    assert len(commands) == 2
    ci = (PROJECT / ".ci" / "run").read_text()
    assert commands[1] in ci.splitlines()


def test_streamlit_config_defines_light_and_dark_themes() -> None:
    config = tomllib.loads((PROJECT / ".streamlit" / "config.toml").read_text())
    assert {"light", "dark"} <= set(config["theme"])
    assert config["theme"]["dark"]["backgroundColor"] != config["theme"]["light"]["backgroundColor"]
