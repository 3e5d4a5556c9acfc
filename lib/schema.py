"""The results store's schema, its version, and the migrations between versions.

A file records its schema version in ``dtd_meta``. Opening an older file applies the missing
migrations in one transaction; a newer file is refused rather than half-understood.

Design choices (see docs/architecture.md):
- ids are 64-bit hashes of a record's identity, so re-ingesting the same data adds nothing;
- dimensions live on ``series`` (a few thousand rows), so filters are a semi-join on a small table;
- metric values live in ``measurements``, long format, with ``ts`` and ``series_id`` copied from the
  result so trend queries never join the big tables;
- no primary keys on the big tables: DuckDB's ART indexes cost memory per row, and the single
  writer de-duplicates with an anti-join instead.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import duckdb

SCHEMA_VERSION = 4
APPLICATION_ID = "distributed-testing-dashboard"

STATUSES = ("passed", "failed", "error", "skipped")
KINDS = ("benchmark", "unit_test", "integration_test", "performance_test")
DIRECTIONS = ("higher", "lower", "none")

_V1 = [
    """
    CREATE TABLE dtd_meta (
        key VARCHAR PRIMARY KEY,
        value VARCHAR NOT NULL
    )""",
    f"""
    CREATE TABLE metrics (
        name VARCHAR PRIMARY KEY,
        unit VARCHAR NOT NULL,
        direction VARCHAR NOT NULL CHECK (direction IN {DIRECTIONS}),
        description VARCHAR
    )""",
    """
    CREATE TABLE workers (
        worker_id VARCHAR PRIMARY KEY,
        hostname VARCHAR,
        hardware VARCHAR,
        device VARCHAR,
        os VARCHAR,
        heartbeat_interval_s DOUBLE NOT NULL DEFAULT 30 CHECK (heartbeat_interval_s > 0),
        registered_at TIMESTAMP
    )""",
    """
    CREATE TABLE heartbeats (
        worker_id VARCHAR NOT NULL,
        ts TIMESTAMP NOT NULL,
        cpu_percent DOUBLE,
        memory_percent DOUBLE,
        gpu_percent DOUBLE,
        power_watts DOUBLE,
        current_task VARCHAR
    )""",
    """
    CREATE TABLE runs (
        run_id BIGINT PRIMARY KEY,
        name VARCHAR,
        source VARCHAR,
        started_at TIMESTAMP,
        git_commit VARCHAR,
        git_branch VARCHAR
    )""",
    f"""
    CREATE TABLE series (
        series_id BIGINT PRIMARY KEY,
        kind VARCHAR NOT NULL CHECK (kind IN {KINDS}),
        suite VARCHAR,
        name VARCHAR NOT NULL,
        model VARCHAR,
        model_family VARCHAR,
        modality VARCHAR,
        hardware VARCHAR,
        device VARCHAR,
        batch_size INTEGER,
        "precision" VARCHAR,
        extra MAP(VARCHAR, VARCHAR)
    )""",
    f"""
    CREATE TABLE results (
        result_id BIGINT NOT NULL,
        series_id BIGINT NOT NULL,
        run_id BIGINT,
        worker_id VARCHAR,
        ts TIMESTAMP NOT NULL,
        status VARCHAR NOT NULL CHECK (status IN {STATUSES}),
        duration_s DOUBLE CHECK (duration_s IS NULL OR duration_s >= 0),
        message VARCHAR
    )""",
    """
    CREATE TABLE measurements (
        result_id BIGINT NOT NULL,
        series_id BIGINT NOT NULL,
        ts TIMESTAMP NOT NULL,
        metric VARCHAR NOT NULL,
        value DOUBLE NOT NULL CHECK (isfinite(value))
    )""",
]

Migration = Callable[[duckdb.DuckDBPyConnection], None]


CHANGE_KINDS = ("regression", "improvement", "change")
SEVERITIES = ("none", "minor", "moderate", "major", "critical")
REVIEW_STATUSES = ("open", "acknowledged", "expected", "false_positive", "fixed")

_V2 = [
    f"""
    CREATE TABLE change_points (
        change_id BIGINT PRIMARY KEY,
        series_id BIGINT NOT NULL,
        metric VARCHAR NOT NULL,
        changed_at TIMESTAMP NOT NULL,
        before_start TIMESTAMP,
        before_end TIMESTAMP,
        after_start TIMESTAMP,
        after_end TIMESTAMP,
        before_n INTEGER,
        after_n INTEGER,
        before_median DOUBLE,
        after_median DOUBLE,
        change DOUBLE,
        ci_low DOUBLE,
        ci_high DOUBLE,
        p_value DOUBLE,
        q_value DOUBLE,
        kind VARCHAR NOT NULL CHECK (kind IN {CHANGE_KINDS}),
        severity VARCHAR NOT NULL CHECK (severity IN {SEVERITIES}),
        unstable BOOLEAN NOT NULL,
        commit_before VARCHAR,
        commit_after VARCHAR,
        detected_at TIMESTAMP NOT NULL
    )""",
    f"""
    CREATE TABLE change_reviews (
        change_id BIGINT NOT NULL,
        status VARCHAR NOT NULL CHECK (status IN {REVIEW_STATUSES}),
        note VARCHAR,
        reviewed_at TIMESTAMP NOT NULL,
        reviewer VARCHAR
    )""",
    """
    CREATE TABLE detection_state (
        series_id BIGINT NOT NULL,
        metric VARCHAR NOT NULL,
        analysed_until TIMESTAMP NOT NULL,
        PRIMARY KEY (series_id, metric)
    )""",
]
"""Version 2: detected change points, people's reviews of them (latest wins), and how far each
(series, metric) has been analysed, so detection runs incrementally."""


def _statements(sql: Sequence[str]) -> Migration:
    def apply(con: duckdb.DuckDBPyConnection) -> None:
        for statement in sql:
            con.execute(statement)

    return apply


def _v3(con: duckdb.DuckDBPyConnection) -> None:
    """Version 3: hourly rollups of results and metric values (lib/rollups.py), filled from the
    raw rows."""
    from lib import rollups

    rollups.rebuild(con)


def identity_by_file(con: duckdb.DuckDBPyConnection) -> None:
    """Test identity includes the file or testsuite a report puts a test in (issue 17), so
    same-named tests in different files stay apart.

    ``series.file`` holds it (NULL where a source gives none, and for every series stored
    before: their ids are kept, since a series without a file keeps the id formula it had).
    Stored JUnit tests did not record their file, so one stored series may hold the history of
    several same-named tests. Those that were unique (never two results in one report) are
    listed in ``legacy_series`` (``file`` NULL: not taken yet): the first file to report the
    same test again continues that series (``lib.ingest.sink.continue_legacy`` records the file
    there and on the series), so history goes on; the others keep their history as it is, and
    new results go to one series per file.

    Self-contained (no other migration's names), so it can be renumbered.
    """
    con.execute("ALTER TABLE series ADD COLUMN file VARCHAR")
    con.execute("CREATE TABLE legacy_series (series_id BIGINT PRIMARY KEY, file VARCHAR)")
    con.execute(
        """INSERT INTO legacy_series
           SELECT r.series_id, NULL FROM results AS r JOIN runs USING (run_id)
           WHERE runs.source = 'junit'
           GROUP BY r.series_id HAVING count(*) = count(DISTINCT r.run_id)"""
    )


MIGRATIONS: dict[int, Migration] = {
    1: _statements(_V1),
    2: _statements(_V2),
    3: _v3,
    4: identity_by_file,
}
"""Version N's entry turns a version N-1 file into version N (1 builds an empty file)."""


METRIC_CATALOG: list[tuple[str, str, str, str]] = [
    ("throughput_items_per_second", "items/s", "higher", "Items processed per second"),
    ("latency_p50_ms", "ms", "lower", "Median latency per batch"),
    ("latency_p95_ms", "ms", "lower", "95th percentile latency per batch"),
    ("latency_p99_ms", "ms", "lower", "99th percentile latency per batch"),
    ("memory_peak_mb", "MB", "lower", "Peak memory during the run"),
    ("total_time_seconds", "s", "lower", "Wall time of the whole benchmark"),
    ("cpu_percent", "%", "none", "CPU use of the worker"),
    ("memory_percent", "%", "none", "Memory use of the worker"),
    ("gpu_percent", "%", "none", "Accelerator use of the worker"),
    ("power_watts", "W", "none", "Power draw of the worker"),
]
"""Metrics every store knows; ingest adds others with their own unit and direction."""


def migrate(
    con: duckdb.DuckDBPyConnection,
    from_version: int,
    migrations: dict[int, Migration] | None = None,
) -> int:
    """Apply the migrations after ``from_version`` inside the caller's transaction."""
    migrations = MIGRATIONS if migrations is None else migrations
    target = max(migrations)
    for version in range(from_version + 1, target + 1):
        migrations[version](con)
        if version == 1:
            con.execute(
                "INSERT INTO dtd_meta VALUES ('application_id', ?), ('schema_version', '1')",
                [APPLICATION_ID],
            )
            con.executemany("INSERT INTO metrics VALUES (?, ?, ?, ?)", METRIC_CATALOG)
        else:
            con.execute(
                "UPDATE dtd_meta SET value = ? WHERE key = 'schema_version'", [str(version)]
            )
    return target
