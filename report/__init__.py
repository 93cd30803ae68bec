"""Conformance reports: a run's results as JSON (schema ``nnspec-report/1``), Markdown and HTML.

``nnspec verify IMPL --report DIR`` and ``pytest --nnspec-impl=IMPL --nnspec-report=DIR`` write
``DIR/results.json``, ``DIR/report.md`` and ``DIR/report.html``; ``nnspec report compare A.json
B.json -o DIR`` puts several runs side by side; :func:`write_kill_matrix` renders a mutation run.

* :mod:`.model`: the report's data (metadata, rows, summaries) and the shipped JSON Schema.
* :mod:`.writers`: atomic, never-mixing writers and the jinja2 templates.
* :mod:`.figures`: matplotlib figures as inline SVG.
* :mod:`.compare`: the clauses x implementations matrix.
"""

from .compare import compare_reports, load_report, write_comparison
from .model import (
    SCHEMA_VERSION,
    STATUSES,
    build_report,
    load_schema,
    run_metadata,
    skipped_row,
    summarise,
    validate,
)
from .writers import MARKER, ReportDirError, check_output_dir, write_atomic, write_kill_matrix, write_report

__all__ = [
    "MARKER",
    "SCHEMA_VERSION",
    "STATUSES",
    "ReportDirError",
    "build_report",
    "check_output_dir",
    "compare_reports",
    "load_report",
    "load_schema",
    "run_metadata",
    "skipped_row",
    "summarise",
    "validate",
    "write_atomic",
    "write_comparison",
    "write_kill_matrix",
    "write_report",
]
