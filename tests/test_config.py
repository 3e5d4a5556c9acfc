"""Settings: environment beats secrets beats defaults; bad values are named with their source."""

from __future__ import annotations

from pathlib import Path

import pytest

from lib.config import DEFAULT_DB_PATH, ConfigError, load_settings


def test_defaults_mean_the_demo_database() -> None:
    settings = load_settings(secrets={}, env={})
    assert settings.db_path == DEFAULT_DB_PATH and not settings.db_configured
    assert (
        settings.theme,
        settings.auto_refresh,
        settings.max_items_per_page,
        settings.default_report_type,
        settings.api_cache_time,
    ) == ("light", 0, 50, "performance", 10)
    assert settings.refresh_choice == "off"


def test_environment_beats_secrets_and_flag_beats_both(tmp_path: Path) -> None:
    secrets = {"dtd": {"db": str(tmp_path / "s.duckdb"), "auto_refresh": "60", "theme": "dark"}}
    env = {"DTD_DB": str(tmp_path / "e.duckdb"), "DTD_AUTO_REFRESH": "20"}
    settings = load_settings(secrets=secrets, env=env)
    assert settings.db_path == tmp_path / "e.duckdb" and settings.db_configured
    assert settings.auto_refresh == 20 and settings.theme == "dark"
    assert settings.refresh_choice == "30s"  # the nearest offered interval not below 20 s
    assert load_settings(secrets=secrets, env={}).db_path == tmp_path / "s.duckdb"
    assert (
        load_settings(secrets=secrets, env=env, db_override=tmp_path / "f.duckdb").db_path
        == tmp_path / "f.duckdb"
    )


@pytest.mark.parametrize(
    "env, words",
    [
        (
            {"DTD_AUTO_REFRESH": "soon"},
            "environment variable DTD_AUTO_REFRESH: auto_refresh must be a whole number",
        ),
        ({"DTD_MAX_ITEMS_PER_PAGE": "0"}, "max_items_per_page must be between 1 and 10000, got 0"),
        ({"DTD_THEME": "purple"}, "theme must be 'light' or 'dark'"),
        ({"DTD_DEFAULT_REPORT_TYPE": "summary"}, "default_report_type must be one of performance"),
    ],
)
def test_bad_values_name_the_setting_and_where_it_came_from(env: dict, words: str) -> None:
    with pytest.raises(ConfigError, match=words):
        load_settings(secrets={}, env=env)


def test_relative_database_path_is_resolved(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    assert (
        load_settings(secrets={}, env={"DTD_DB": "x/y.duckdb"}).db_path
        == tmp_path / "x" / "y.duckdb"
    )


def test_secrets_section_that_is_not_a_table_is_named() -> None:
    with pytest.raises(ConfigError, match=r"\[dtd\] must be a table of settings"):
        load_settings(secrets={"dtd": "var/x.duckdb"}, env={})
