"""The report's data: run metadata, one row per (clause, implementation), and the summaries.

A report is a plain JSON-ready dict (schema ``nnspec-report/1``, described by ``schema.json`` next to
this file). It is built from the rows the engine produces (:meth:`ClauseResult.to_dict`), so anything
that can run a clause -- the pytest plugin, the CLI, a notebook -- can write one. Every writer (JSON,
Markdown, HTML) renders this one dict, so the three formats can never disagree.

Statuses: the engine's four (``passed``, ``failed``, ``error``, ``not_applicable``) plus ``skipped``,
which only a report has: the clause was selected but the run ended (Ctrl-C, ``-x``, a crashed worker)
before it produced a result. Skipped rows are what makes an interrupted report say *what is missing*
instead of silently looking shorter.

Conformance is ``passed / (passed + failed + error)``: the applicable clauses that ran. A clause the
implementation cannot run (``not_applicable``) or that never ran (``skipped``) counts for nothing, so
an incomplete report never claims more than it saw -- and says it is incomplete besides.
"""

from __future__ import annotations

import datetime as _dt
import json
import math
import platform
import socket
import sys
from collections.abc import Iterable
from functools import cache
from importlib import resources
from importlib.metadata import PackageNotFoundError, version
from typing import Any

SCHEMA_VERSION = "nnspec-report/1"
STATUSES = ("passed", "failed", "error", "not_applicable", "skipped")
# The statuses that count for conformance: the implementation could run the clause and it did.
APPLICABLE = ("passed", "failed", "error")

# Row fields every writer relies on; defaults for rows from older or hand-made sources.
_ROW_DEFAULTS: dict[str, Any] = {
    "message": "",
    "examples": 0,
    "examples_to_failure": None,
    "max_error": None,
    "tolerance": None,
    "reason": "",
    "duration": 0.0,
    "counterexample": "",
    "reproduce": "",
    "statement": "",
    "source": "",
    "topic": "",
    "level": "",
    "cost": "",
    "needs": [],
    "profile": "",
    "seed": 0,
    "dtype": "",
    "device": "",
    "records": [],
    "notes": {},
}


def _version(dist: str) -> str | None:
    try:
        return version(dist)
    except PackageNotFoundError:
        return None


def iso_time(timestamp: float) -> str:
    """A POSIX timestamp as ISO 8601 in UTC (what people paste and sort)."""
    return _dt.datetime.fromtimestamp(timestamp, tz=_dt.timezone.utc).isoformat(timespec="seconds")


def environment() -> dict[str, Any]:
    """Versions and host: what someone reproducing the run needs to know first."""
    return {
        "nnspec_version": _version("nnspec") or "unknown",
        "python": sys.version.split()[0],
        "hypothesis_version": _version("hypothesis"),
        "numpy_version": _version("numpy"),
        "torch_version": _version("torch"),
        "host": socket.gethostname(),
        "platform": platform.platform(terse=True),
    }


def run_metadata(
    *,
    implementations: list[dict[str, Any]],
    profile: str,
    seed: int,
    started: float,
    finished: float,
    complete: bool,
    incomplete_reason: str | None = None,
    exitstatus: int | None = None,
    workers: int = 0,
    command: str = "",
    torch_precision: dict[str, Any] | None = None,
    numpy_errors: dict[str, str] | None = None,
    flush_subnormals: bool = False,
) -> dict[str, Any]:
    """The ``meta`` object of a report (see ``schema.json``). ``torch_precision`` holds torch's
    precision switches that differ from a fresh ``import torch`` (TF32, bfloat16 matmul passes), by
    their ``torch.backends`` path: third-party torch code ran in them. ``numpy_errors``, likewise,
    holds the ``np.seterr`` settings that differ from a fresh NumPy's, and ``flush_subnormals``
    whether the process flushed subnormal numbers to zero."""
    return {
        **environment(),
        "implementations": implementations,
        "profile": profile,
        "seed": int(seed),
        "started": iso_time(started),
        "finished": iso_time(finished),
        "duration": max(0.0, finished - started),
        "complete": bool(complete),
        "incomplete_reason": None if complete else (incomplete_reason or "the run did not finish"),
        "exitstatus": exitstatus,
        "workers": int(workers),
        "command": command,
        "torch_precision": dict(torch_precision or {}),
        "numpy_errors": dict(numpy_errors or {}),
        "flush_subnormals": bool(flush_subnormals),
    }


def json_safe(value: Any) -> Any:
    """``value`` with the floats JSON cannot hold (inf, -inf, nan) as the strings ``"inf"``, ``"-inf"``
    and ``"nan"``: an implementation returning NaN is a result worth keeping, and a report must stay
    strict JSON that every parser reads."""
    if isinstance(value, float) and not math.isfinite(value):
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    return value


def measure(value: Any) -> float | None:
    """A row's number back as a float (``"inf"`` -> inf), or None."""
    return None if value is None else float(value)


def normalise_row(row: dict[str, Any]) -> dict[str, Any]:
    """A result row with every field the writers read (missing ones take their defaults), JSON-safe."""
    out = json_safe({**_ROW_DEFAULTS, **row})
    out["needs"] = list(out["needs"])
    if out["status"] not in STATUSES:
        raise ValueError(f"row {out.get('clause_id')!r}: unknown status {out['status']!r}; one of {STATUSES}")
    return out


def skipped_row(clause: Any, implementation: str, reason: str) -> dict[str, Any]:
    """The row of a selected clause that never ran (``clause`` is a :class:`Clause`)."""
    return normalise_row({
        "clause_id": clause.id,
        "implementation": implementation,
        "status": "skipped",
        "message": reason,
        "statement": clause.statement,
        "source": str(clause.source),
        "topic": clause.topic,
        "level": clause.level,
        "cost": clause.cost,
        "needs": list(clause.needs),
    })


def _tally(rows: Iterable[dict[str, Any]]) -> dict[str, Any]:
    counts = dict.fromkeys(STATUSES, 0)
    total = partly = 0
    for r in rows:
        counts[r["status"]] += 1
        total += 1
        # a pass on the parts an implementation offers (the rest of the clause did not run)
        partly += r["status"] == "passed" and bool((r.get("notes") or {}).get("not offered"))
    applicable = sum(counts[s] for s in APPLICABLE)
    # conformance = passed / (passed + failed + error), in percent; None when nothing applicable ran
    conformance = 100.0 * counts["passed"] / applicable if applicable else None
    return {"total": total, "counts": counts, "applicable": applicable, "conformance": conformance,
            "partly_passed": partly}


def summarise(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Counts by status, by implementation and by topic, with the conformance percentage of each."""
    by_impl: dict[str, list[dict[str, Any]]] = {}
    by_topic: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        by_impl.setdefault(r["implementation"], []).append(r)
        by_topic.setdefault(r["topic"] or "(none)", []).append(r)
    return {
        **_tally(rows),
        "by_implementation": {name: _tally(rs) for name, rs in by_impl.items()},
        "by_topic": {topic: _tally(rs) for topic, rs in sorted(by_topic.items())},
    }


def build_report(rows: Iterable[dict[str, Any]], meta: dict[str, Any]) -> dict[str, Any]:
    """The whole report: ``schema``, ``meta``, ``summary`` and ``results`` (rows in the given order)."""
    results = [normalise_row(r) for r in rows]
    return {"schema": SCHEMA_VERSION, "meta": meta, "summary": summarise(results), "results": results}


@cache
def load_schema(name: str = "schema.json") -> dict[str, Any]:
    """A JSON Schema shipped with the package (``schema.json``: reports; ``kill_matrix.schema.json``)."""
    return json.loads(resources.files("nnspec.report").joinpath(name).read_text(encoding="utf-8"))


def validate(report: dict[str, Any], schema: str = "schema.json") -> None:
    """Raise :class:`jsonschema.ValidationError` unless ``report`` follows the shipped schema."""
    import jsonschema

    jsonschema.validate(report, load_schema(schema), cls=jsonschema.Draft202012Validator)


def rows_by_clause(report: dict[str, Any]) -> dict[str, dict[str, dict[str, Any]]]:
    """``{clause_id: {implementation: row}}``: the shape comparisons and matrices are read in."""
    out: dict[str, dict[str, dict[str, Any]]] = {}
    for r in report["results"]:
        out.setdefault(r["clause_id"], {})[r["implementation"]] = r
    return out
