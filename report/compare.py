"""Several runs side by side: a matrix of clauses x implementations (the wpt.fyi scoreboard idea).

Each column is one implementation of one report (``name`` or, when two reports share a name,
``name (file)``); each cell is that clause's status there. A clause *disagrees* when the
implementations that could run it (passed, failed or error) did not all end the same way: those are
the rows worth reading first, so they are highlighted and counted.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema

from .model import APPLICABLE, SCHEMA_VERSION, validate
from .writers import kind_name, publish, render, written_kind

COMPARISON_SCHEMA = "nnspec-comparison/1"


WANTS = "nnspec report compare wants folders written by `nnspec verify --report DIR` (or their results.json)"
_JSON_TYPES = {dict: "an object", list: "an array", str: "a string", bool: "a boolean", int: "a number",
               float: "a number", type(None): "null"}


def _folder_kind(folder: Path) -> str | None:
    """What kind of nnspec folder ``folder`` is, when not a report: its marker's, or its files'."""
    kind = written_kind(folder)
    if kind is not None:
        return kind_name(kind)
    for name, kind in (("kill_matrix.json", "kill matrix"), ("compare.json", "comparison of reports")):
        if (folder / name).is_file():
            return kind
    return None


def _first_problem(exc: jsonschema.ValidationError) -> str:
    """The first schema problem in a line: where, and what, never the offending value itself (it
    can be the whole file)."""
    where = "/".join(str(p) for p in exc.absolute_path)
    where = f"at {where}" if where else "at the top level"
    if exc.validator == "type":
        wanted = exc.validator_value if isinstance(exc.validator_value, list) else [exc.validator_value]
        found = next((name for t, name in _JSON_TYPES.items() if type(exc.instance) is t), "something else")
        return f"{where}: expected {' or '.join(map(str, wanted))}, found {found}"
    message = exc.message if len(exc.message) <= 160 else exc.message[:150] + " ..."
    return f"{where}: {message}"


def load_report(path: Path | str) -> dict[str, Any]:
    """A report from its ``results.json`` (or the directory holding it), validated against the schema.

    Raises :class:`ValueError` with a one-line message that names the path and what is there instead
    (nothing, a kill matrix, a comparison, a JSON file of another shape) when it is not a report."""
    path = Path(path)
    if path.is_dir():
        path = path / "results.json"
    if not path.exists():
        folder = path.parent
        if path.name == "results.json" and folder.is_dir():  # a folder, but not a report's
            kind = _folder_kind(folder)
            if kind == kind_name(SCHEMA_VERSION):  # a report written without its JSON
                what = "holds a conformance report without its results.json (written without the json format)"
            else:
                what = f"holds a {kind}, not a conformance report" if kind else "holds no results.json"
            raise ValueError(f"{folder} {what}; {WANTS}")
        raise ValueError(f"{path} does not exist; {WANTS}")
    try:
        report = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ValueError(f"cannot read {path}: {exc.strerror or exc}; {WANTS}") from None
    except ValueError as exc:
        raise ValueError(f"{path} is not JSON ({exc}); {WANTS}") from None
    schema = report.get("schema") if isinstance(report, dict) else None
    if isinstance(schema, str) and schema.startswith("nnspec-") and not schema.startswith("nnspec-report/"):
        raise ValueError(f"{path} is a {kind_name(schema)} ({schema}), not a conformance report; {WANTS}")
    try:
        validate(report)
    except jsonschema.ValidationError as exc:
        raise ValueError(f"{path} is not an nnspec report ({_first_problem(exc)}); {WANTS}") from None
    report["_path"] = str(path)
    return report


def _distinct(paths: list[Path | str]) -> list[Path]:
    """The report files ``paths`` name, each once: the same report twice makes two identical
    columns that read as two runs agreeing."""
    files = [Path(p) / "results.json" if Path(p).is_dir() else Path(p) for p in paths]
    seen: dict[Path, str] = {}
    for given, file in zip(paths, files, strict=True):
        key = file.resolve()
        if key in seen:
            raise ValueError(f"{given} and {seen[key]} are the same report; name each report once")
        seen[key] = str(given)
    return files


def compare_reports(reports: list[dict[str, Any]]) -> dict[str, Any]:
    """The comparison data: columns, one row per clause (cells by column), and the disagreements."""
    columns: list[dict[str, Any]] = []
    for report in reports:
        label = Path(report.get("_path", "")).parent.name or "report"
        for impl in report["meta"]["implementations"]:
            columns.append({"name": impl["name"], "report": label, "impl": impl, "meta": report["meta"]})
    names = [c["name"] for c in columns]
    for c in columns:
        c["key"] = f"{c['name']} ({c['report']})" if names.count(c["name"]) > 1 else c["name"]

    rows: dict[str, dict[str, Any]] = {}
    column_of = iter(columns)
    for report in reports:
        keys = {impl["name"]: next(column_of)["key"] for impl in report["meta"]["implementations"]}
        for r in report["results"]:
            row = rows.setdefault(r["clause_id"], {
                "clause_id": r["clause_id"], "statement": r["statement"], "topic": r["topic"],
                "source": r["source"], "cells": {},
            })
            row["cells"][keys.get(r["implementation"], r["implementation"])] = {
                "status": r["status"], "max_error": r["max_error"], "tolerance": r["tolerance"],
                "message": r["message"].splitlines()[0] if r["message"] else "",
                # what the implementation did not offer, where the clause ran on part of it
                "not_offered": list((r.get("notes") or {}).get("not offered", [])),
            }
    for row in rows.values():
        ran = {cell["status"] for cell in row["cells"].values() if cell["status"] in APPLICABLE}
        row["disagree"] = len(ran) > 1
    clauses = {c["key"]: {cid for cid, row in rows.items() if c["key"] in row["cells"]} for c in columns}
    common = set.intersection(*clauses.values()) if clauses else set()
    for c in columns:
        c["profile"], c["seed"] = c["meta"]["profile"], c["meta"]["seed"]
        c["clauses"] = len(clauses[c["key"]])
        c["conformance"] = _conformance(rows[cid]["cells"][c["key"]] for cid in clauses[c["key"]])
        # over the clauses every column ran: the like-for-like figure when the selections differ
        c["common_conformance"] = _conformance(rows[cid]["cells"][c["key"]] for cid in common)
        c["complete"] = c["meta"]["complete"]
    ordered = list(rows.values())
    return {
        "schema": COMPARISON_SCHEMA,
        "columns": [{k: v for k, v in c.items() if k != "meta"} for c in columns],
        "rows": ordered,
        "disagreements": [r["clause_id"] for r in ordered if r["disagree"]],
        "same_clauses": len({frozenset(ids) for ids in clauses.values()}) <= 1,
        "common_clauses": len(common),
        "warnings": _unlike(reports, columns, clauses, common),
        "sources": [report.get("_path", "") for report in reports],
    }


def _conformance(cells: Any) -> float | None:
    applicable = [cell for cell in cells if cell["status"] in APPLICABLE]
    passed = sum(cell["status"] == "passed" for cell in applicable)
    return 100.0 * passed / len(applicable) if applicable else None


def _unlike(reports: list[dict[str, Any]], columns: list[dict[str, Any]], clauses: dict[str, set[str]],
            common: set[str]) -> list[str]:
    """Why the columns are not like for like, one sentence each: different profiles, seeds or clause
    selections make conformance percentages that cannot be set side by side as they stand."""
    warnings = []
    labels = [Path(report.get("_path", "")).parent.name or "report" for report in reports]
    for field, plural, consequence in (
        ("profile", "profiles", "a profile with more examples can find a failure that one with fewer missed"),
        ("seed", "seeds", "Hypothesis drew different examples"),
    ):
        values = [report["meta"][field] for report in reports]
        if len(set(values)) > 1:
            each = ", ".join(f"{label}: {value}" for label, value in zip(labels, values, strict=True))
            warnings.append(f"the runs used different {plural} ({each}): {consequence}.")
    if len({frozenset(ids) for ids in clauses.values()}) > 1:
        each = ", ".join(f"{c['key']}: {len(clauses[c['key']])}" for c in columns)
        warnings.append(f"the columns ran different clauses ({each}), so each conformance is over its own "
                        f"clauses; {len(common)} clause(s) in common, over which the conformance is given "
                        "apart.")
    return warnings


def write_comparison(paths: list[Path | str], out_dir: Path | str) -> dict[str, Path]:
    """Compare the reports at ``paths`` and publish ``compare.md``, ``compare.html`` and
    ``compare.json`` to ``out_dir`` (same rules as a report directory). Returns them by format."""
    files = _distinct(paths)
    out = Path(out_dir).resolve()
    for file in files:
        if file.resolve().parent == out:
            raise ValueError(f"-o {out_dir} is where {file} lives; write the comparison elsewhere")
    data = compare_reports([load_report(p) for p in files])
    context = {"data": data, "columns": data["columns"], "rows": data["rows"]}
    files = {
        "compare.json": json.dumps(data, indent=1, allow_nan=False) + "\n",
        "compare.md": render("compare.md.j2", **context),
        "compare.html": render("compare.html.j2", **context),
    }
    written = publish(out_dir, files, COMPARISON_SCHEMA)
    return {"json": written["compare.json"], "md": written["compare.md"], "html": written["compare.html"]}
