"""Taking results in: JUnit XML, benchmark JSON formats, CSV/Parquet/JSON, the seed's database.

The Python API::

    from lib.ingest import ingest_paths
    reports = ingest_paths(store, ["reports/", "bench/*.json"])

Everything else (``dtd ingest``, the Data page, the inbox watcher) calls the same functions.
"""

from lib.ingest.driver import FileReport, expand, ingest_bytes, ingest_paths, ingest_source
from lib.ingest.formats import FORMATS, detect
from lib.ingest.model import IngestError, MetricDef, Record, RunInfo, Source, WorkerInfo
from lib.ingest.options import IngestOptions

__all__ = [
    "FORMATS",
    "FileReport",
    "IngestError",
    "IngestOptions",
    "MetricDef",
    "Record",
    "RunInfo",
    "Source",
    "WorkerInfo",
    "detect",
    "expand",
    "ingest_bytes",
    "ingest_paths",
    "ingest_source",
]
