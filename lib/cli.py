"""The ``dtd`` command: make demo data and report what a database holds.

Errors end as one line on stderr and exit status 2 (1 is kept for "some inputs failed" later);
no traceback for anything a user can cause.

Start-up is kept short (``dtd --help`` and ``dtd status`` in well under half a second; measured
by ``bench/startup.py``): only the standard library, DuckDB and light ``lib`` modules are
imported here; pandas, numpy, scipy, Altair, the report builders, the ingest parsers and
Streamlit are imported by the commands that need them. ``tests/test_cli.py`` checks which
modules ``--help`` and ``status`` load.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

import duckdb

from lib.config import (
    DEMO_DAYS,
    DEMO_RESULTS,
    DEMO_SEED,
    REPORT_TYPES,
    ConfigError,
    load_settings,
    read_secrets_files,
)
from lib.store import StoreError, close_all, open_store


def _bounded(kind: type, low: float, high: float, what: str):
    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            noun = "a whole number" if kind is int else "a number"
            raise argparse.ArgumentTypeError(f"{what} must be {noun}, got {text!r}") from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(
                f"{what} must be between {low:,} and {high:,}, got {text}"
            )
        return value

    return parse


def _db_path(arg: str | None) -> Path:
    return load_settings(secrets=read_secrets_files(), db_override=arg).db_path


def _cmd_demo(args: argparse.Namespace) -> int:
    from lib import demo

    path = _db_path(args.db)
    began = time.perf_counter()
    added = demo.generate(path, results=args.results, days=args.days, seed=args.seed)
    seconds = time.perf_counter() - began
    print(
        f"Wrote {added.get('results', 0):,} results ({added.get('measurements', 0):,} metric values, "
        f"{added.get('series', 0):,} series, {added.get('workers', 0):,} workers, "
        f"{added.get('runs', 0):,} runs) spanning {args.days:g} days to {path} "
        f"in {seconds:.1f} s (seed {args.seed})."
    )
    return 0


def _iso(value: object) -> object:
    return value.isoformat() if isinstance(value, datetime) else value


def _cmd_status(args: argparse.Namespace) -> int:
    from lib import queries

    path = _db_path(args.db)
    store = open_store(path, create=False)
    now = datetime.now(UTC).replace(tzinfo=None)
    with store.cursor() as cur:
        summary = queries.summary(cur, now)
    meta = store.meta()
    info = {
        "database": str(path),
        "schema_version": int(meta["schema_version"]),
        "size_bytes": path.stat().st_size,
        **{key: _iso(value) for key, value in summary.items()},
    }
    if args.json:
        print(json.dumps(info, indent=2))
        return 0
    workers = summary["workers"]
    rate = summary["pass_rate"]
    span = (
        f"{summary['first_result']:%Y-%m-%d %H:%M} to {summary['last_result']:%Y-%m-%d %H:%M} UTC"
        if summary["first_result"]
        else "no results yet"
    )
    rows = [
        (
            "Database",
            f"{path} (schema {info['schema_version']}, {info['size_bytes'] / 1e6:,.1f} MB)",
        ),
        (
            "Results",
            f"{summary['results']:,} (passed {summary['passed']:,} · failed "
            f"{summary['failed']:,} · error {summary['error']:,} · skipped {summary['skipped']:,})",
        ),
        (
            "Pass rate",
            "n/a (nothing executed)" if rate is None else f"{rate:.2%} of executed results",
        ),
        (
            "Series",
            f"{summary['series']:,} ({summary['benchmark_series']:,} benchmark series, "
            f"{summary['test_cases']:,} test cases)",
        ),
        ("Metric values", f"{summary['measurements']:,}"),
        ("Runs", f"{summary['runs']:,}"),
        (
            "Workers",
            f"{sum(workers.values()):,} ("
            + " · ".join(f"{n} {state}" for state, n in workers.items())
            + ")",
        ),
        ("Time span", span),
    ]
    for label, value in rows:
        print(f"{label:<14}{value}")
    return 0


def _progress(index: int, total: int, report) -> None:
    """One line per file on a terminal, overwritten in place; nothing when piped."""
    if sys.stderr.isatty():
        mark = "ok" if report.status == "ok" else "FAILED"
        sys.stderr.write(f"\r[{index}/{total}] {mark} {report.path[-60:]:<60}")
        if index == total:
            sys.stderr.write("\n")
        sys.stderr.flush()


def _cmd_ingest(args: argparse.Namespace) -> int:
    from lib.ingest import IngestOptions, ingest_paths
    from lib.ingest.options import SETTABLE

    defaults = {}
    for item in args.set or []:
        key, _, value = item.partition("=")
        if key not in SETTABLE or not value:
            raise ConfigError(
                f"--set {item!r}: use key=value with key one of {', '.join(SETTABLE)}."
            )
        defaults[key] = value
    settings = load_settings(secrets=read_secrets_files(), db_override=args.db)
    mapping = _read_mapping(args.mapping) if args.mapping else None
    options = IngestOptions(
        defaults=defaults,
        mapping=mapping,
        max_bytes=settings.max_ingest_mb * 1024 * 1024,
        strict=args.strict,
    )
    store = open_store(settings.db_path)
    reports = ingest_paths(store, args.paths, options, progress=None if args.json else _progress)
    if args.json:
        print(json.dumps([r.as_dict() for r in reports], indent=2))
    else:
        for r in reports:
            _print_report(r)
        good = sum(r.status != "error" for r in reports)
        left_out = sum(r.rejected for r in reports)
        print(
            f"{good} of {len(reports)} files ingested into {store.path}"
            + (f"; {left_out:,} records left out (listed above)" if left_out else "")
        )
    if not reports:
        print("dtd: nothing to ingest (no files matched)", file=sys.stderr)
        return 1
    return 0 if all(r.status == "ok" for r in reports) else 1


SHOWN_PROBLEMS = 10
"""Problems printed per file (``--json`` lists up to 100; all are counted)."""


def _print_report(r) -> None:
    """One line per file, then its problems indented: what was left out, what was kept how."""
    if r.status == "error":
        print(f"error    {r.error}")
        return
    extra = ""
    if r.rejected:
        extra += f", {r.rejected:,} left out"
    if r.warnings:
        extra += f", {r.warnings:,} warnings"
    print(
        f"{r.status:<9}{r.path}: {r.format}, {r.results:,} results ({r.passed:,} passed, "
        f"{r.failed:,} failed, {r.errors:,} errors, {r.skipped:,} skipped), "
        f"{r.measurements:,} metric values, {r.added:,} new{extra}, {r.seconds:.2f} s"
    )
    for problem in r.problems[:SHOWN_PROBLEMS]:
        label = "left out" if problem["outcome"] == "rejected" else "kept"
        print(f"  {label:<9}{problem['where']}: {problem['problem']} {problem['fix']}".rstrip())
    more = r.rejected + r.warnings - min(len(r.problems), SHOWN_PROBLEMS)
    if more > 0:
        print(f"  ... and {more:,} more (dtd ingest --json lists the first {len(r.problems)})")


def _cmd_inbox(args: argparse.Namespace) -> int:
    from lib.ingest import IngestOptions
    from lib.ingest.inbox import Inbox

    settings = load_settings(secrets=read_secrets_files(), db_override=args.db)
    store = open_store(settings.db_path)
    options = IngestOptions(max_bytes=settings.max_ingest_mb * 1024 * 1024, strict=args.strict)
    inbox = Inbox(store, args.folder, options)
    print(
        f"Watching {inbox.folder} for result files (into {store.path}); Ctrl-C stops.",
        file=sys.stderr,
    )
    failures = 0
    try:
        while True:
            for r in inbox.scan(settle=not args.once):
                failures += r.status != "ok"
                _print_report(r)
                sys.stdout.flush()
            if args.once:
                return 1 if failures else 0
            time.sleep(args.interval)
    except KeyboardInterrupt:
        return 0


def _cmd_analyse(args: argparse.Namespace) -> int:
    from lib import regressions

    store = open_store(_db_path(args.db), create=False)
    began = time.perf_counter()
    with store.cursor() as cur:
        waiting = len(regressions.pending(cur))
    print(f"Analysing {waiting:,} series x metric pairs for change points...", file=sys.stderr)
    done = regressions.analyse(store)
    with store.cursor() as cur:
        kinds = dict(
            cur.execute(
                "SELECT kind, count(*) FROM change_points WHERE NOT unstable AND severity <> 'none' "
                "GROUP BY ALL"
            ).fetchall()
        )
    print(
        f"Analysed {done:,} pairs in {time.perf_counter() - began:.1f} s: "
        f"{kinds.get('regression', 0):,} regressions and {kinds.get('improvement', 0):,} "
        f"improvements (stable series, 5 % or more) in {store.path}."
    )
    return 0


def _cmd_maintain(args: argparse.Namespace) -> int:
    from lib.maintain import maintain

    report = maintain(_db_path(args.db), force=args.force)
    print(report.describe())
    return 0


def _cmd_serve(args: argparse.Namespace) -> int:
    from lib.server import DashboardServer, ensure_write_token

    server = DashboardServer(host=args.host, port=args.port, db_path=args.db)
    settings = server.settings
    from lib.store import open_store as _open

    _open(settings.db_path)  # the same checks and messages as everywhere, before serving
    token = ensure_write_token()
    base = f"http://{args.host}:{args.port}"
    print(f"Serving {settings.db_path} at {base} (UI), {base}/api (REST), {base}/ws (WebSocket).")
    if token:
        print(f"Writes need 'Authorization: Bearer {token}' (set DTD_API_TOKEN to choose one).")
    server.start()
    return 0


def _report_spec(args: argparse.Namespace):
    from lib.spec import QuerySpec

    params: dict[str, list[str]] = {"range": [args.range]}
    if args.start or args.end:
        params.update(range=["custom"], **{"from": [args.start or ""], "to": [args.end or ""]})
    for item in args.filter or []:
        key, sep, value = item.partition("=")
        if not sep or not key.strip() or not value.strip():
            raise ConfigError(f"--filter {item!r}: write DIMENSION=VALUE, e.g. hardware=cuda.")
        params.setdefault(key.strip(), []).extend(v for v in value.split(",") if v.strip())
    return QuerySpec.from_params(params)


def _cmd_report(args: argparse.Namespace) -> int:
    from lib import reports
    from lib.spec import SpecError

    out = Path(args.out)
    shape = args.format or out.suffix.lower().lstrip(".")
    if shape not in ("html", "pdf", "zip"):
        raise ConfigError(
            f"--out {args.out}: cannot tell the format from the name; end it in .html, .pdf or "
            ".zip, or pass --format."
        )
    try:
        spec = _report_spec(args)
    except SpecError as exc:
        raise ConfigError(str(exc)) from None
    if not out.parent.is_dir():
        raise ConfigError(f"--out {args.out}: the folder {out.parent} does not exist.")
    store = open_store(_db_path(args.db), create=False)
    began = time.perf_counter()
    if args.kind == "regression":
        from lib import regressions

        regressions.analyse(store)  # series with new values since the last analysis, if any
    now = datetime.now(UTC).replace(tzinfo=None)
    with store.cursor() as cur:
        try:
            report = reports.build(cur, args.kind, spec, now, args.metric, args.dimension)
        except (ValueError, LookupError) as exc:
            raise ConfigError(str(exc)) from None
    if shape == "html":
        content = reports.to_html(report, args.theme).encode()
    elif shape == "pdf":
        content = reports.to_pdf(report)
    else:
        content = reports.to_zip(report, args.theme)
    out.write_bytes(content)
    tables = sum(len(s.tables) for s in report.sections)
    pictures = sum(len(s.charts) for s in report.sections)
    print(
        f"Wrote the {args.kind} report ({report.scope}; {tables} tables, {pictures} charts) "
        f"to {out} ({len(content):,} bytes) in {time.perf_counter() - began:.1f} s."
    )
    return 0


def _read_mapping(path: str) -> dict:
    """A column mapping for foreign tables, from TOML or JSON (see docs/ingest-formats.md)."""
    import tomllib

    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8")
        return json.loads(text) if file.suffix == ".json" else tomllib.loads(text)
    except (OSError, ValueError) as exc:
        raise ConfigError(f"--mapping {path}: cannot be read ({exc}).") from None


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="dtd", description="Distributed testing dashboard: results store tools."
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    db_help = "database file (default: DTD_DB, then [dtd] db in secrets, then var/dashboard.duckdb)"

    p = sub.add_parser(
        "demo",
        help="write a database of realistic demo results",
        description="Write a new demo database; only an earlier demo is replaced.",
    )
    p.add_argument("--db", help=db_help)
    p.add_argument(
        "--results",
        type=_bounded(int, 1, 100_000_000, "--results"),
        default=DEMO_RESULTS,
        help="number of results (default %(default)s)",
    )
    p.add_argument(
        "--days",
        type=_bounded(float, 0.01, 3650, "--days"),
        default=DEMO_DAYS,
        help="days of history up to now (default %(default)s)",
    )
    p.add_argument(
        "--seed",
        type=_bounded(int, 0, 2**32 - 1, "--seed"),
        default=DEMO_SEED,
        help="random seed: the same seed gives the same data (default %(default)s)",
    )
    p.set_defaults(handler=_cmd_demo)

    p = sub.add_parser(
        "ingest",
        help="load result files (JUnit XML, benchmark JSON, CSV, Parquet, ...)",
        description="Load files, folders and globs. A bad record is left out and listed while the "
        "file's other records go in; a file that is not its format changes nothing. Exit status "
        "0 when every record of every file went in, 1 when any record or file was left out.",
    )
    p.add_argument("paths", nargs="+", metavar="PATH", help="files, folders or glob patterns")
    p.add_argument("--db", help=db_help)
    p.add_argument("--json", action="store_true", help="print one JSON report per file")
    p.add_argument(
        "--strict",
        action="store_true",
        help="all or nothing per file: a bad record, or one stored with a stand-in name or "
        "time, fails the whole file",
    )
    p.add_argument(
        "--set",
        action="append",
        metavar="KEY=VALUE",
        help="fill in a field the files do not carry (hardware, device, model, "
        "precision, batch_size, kind, worker, git_commit, git_branch, run); repeatable",
    )
    p.add_argument(
        "--mapping",
        metavar="FILE",
        help="column mapping (TOML or JSON) for CSV/JSON tables in a foreign layout",
    )
    p.set_defaults(handler=_cmd_ingest)

    p = sub.add_parser(
        "inbox",
        help="watch a folder: ingest files dropped in, move them to processed/ or failed/",
        description="Only one process may own the database: use this when the dashboard is not "
        "running, or set DTD_INBOX so the dashboard watches the folder itself.",
    )
    p.add_argument("folder")
    p.add_argument("--db", help=db_help)
    p.add_argument("--once", action="store_true", help="take what is there now, then exit")
    p.add_argument(
        "--strict", action="store_true", help="all or nothing per file, as for dtd ingest"
    )
    p.add_argument(
        "--interval",
        type=_bounded(float, 0.2, 3600, "--interval"),
        default=2.0,
        help="seconds between scans (default %(default)s)",
    )
    p.set_defaults(handler=_cmd_inbox)

    p = sub.add_parser(
        "analyse",
        help="detect change points in every series with new values",
        description="The dashboard does this in the background; run it after `dtd ingest` or "
        "`dtd demo` to have regressions ready before the dashboard starts.",
    )
    p.add_argument("--db", help=db_help)
    p.set_defaults(handler=_cmd_analyse)

    p = sub.add_parser(
        "maintain",
        help="give back the space aborted writes left in the database file",
        description="Settle the rollups, checkpoint, and when 5 %% or more of the file is "
        "unused (a killed ingest leaves its blocks behind), copy the database into a fresh "
        "file, check it table by table and rename it into place. Stop the dashboard first.",
    )
    p.add_argument("--db", help=db_help)
    p.add_argument("--force", action="store_true", help="copy even when little would be gained")
    p.set_defaults(handler=_cmd_maintain)

    p = sub.add_parser(
        "serve",
        help="serve the dashboard, the REST API and the WebSocket from one port",
        description="One process owns the database: the dashboard and the API it serves. "
        "Without DTD_API_TOKEN a random write token is made and printed.",
    )
    p.add_argument("--db", help=db_help)
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default %(default)s)")
    p.add_argument(
        "--port",
        type=_bounded(int, 1, 65535, "--port"),
        default=8501,
        help="port (default %(default)s)",
    )
    p.set_defaults(handler=_cmd_serve)

    from lib.spec import DEFAULT_RANGE, RELATIVE_RANGES

    p = sub.add_parser(
        "report",
        help="write a self-contained report (HTML, PDF or a ZIP bundle) for CI artifacts",
        description="The Reports page's reports from the command line. The format follows "
        "--out's extension: .html (opens offline), .pdf, or .zip (HTML, PDF, a CSV of every "
        "table and a PNG of every chart).",
    )
    p.add_argument("kind", choices=REPORT_TYPES, metavar="TYPE", help=", ".join(REPORT_TYPES))
    p.add_argument("--out", required=True, metavar="FILE", help="where to write the report")
    p.add_argument("--db", help=db_help)
    p.add_argument("--format", choices=("html", "pdf", "zip"), help="override --out's extension")
    p.add_argument(
        "--range",
        choices=tuple(RELATIVE_RANGES),
        default=DEFAULT_RANGE,
        help="time range up to now (default %(default)s)",
    )
    p.add_argument("--from", dest="start", metavar="YYYY-MM-DD", help="first day (UTC)")
    p.add_argument("--to", dest="end", metavar="YYYY-MM-DD", help="last day (UTC), inclusive")
    p.add_argument(
        "--filter",
        action="append",
        metavar="DIMENSION=VALUE[,VALUE]",
        help="keep only these values of a dimension, e.g. hardware=cuda,rocm; repeatable",
    )
    p.add_argument("--metric", help="metric of the performance and dimension reports")
    p.add_argument(
        "--dimension", default="hardware", help="dimension compared (default %(default)s)"
    )
    p.add_argument("--theme", choices=("light", "dark"), default="light")
    p.set_defaults(handler=_cmd_report)

    p = sub.add_parser("status", help="print what a database holds")
    p.add_argument("--db", help=db_help)
    p.add_argument("--json", action="store_true", help="print JSON instead of text")
    p.set_defaults(handler=_cmd_status)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.handler(args)
    except (StoreError, ConfigError) as exc:
        print(f"dtd: {exc}", file=sys.stderr)
        return 2
    except duckdb.OutOfMemoryException:
        print(
            "dtd: DuckDB ran out of memory (DTD_MEMORY_LIMIT, default 512MB); nothing was "
            "changed by the failed step. Run again with a larger limit, e.g. DTD_MEMORY_LIMIT=2GB.",
            file=sys.stderr,
        )
        return 2
    except duckdb.IOException as exc:
        print(f"dtd: the database file could not be read or written: {exc}", file=sys.stderr)
        return 2
    finally:
        close_all()


if __name__ == "__main__":
    sys.exit(main())
