"""The pytest plugin (entry point ``pytest11: nnspec``): the clauses as tests, in any project.

``pytest --nnspec-impl=torch:cpu:float32`` adds one test per (clause, implementation), named
``ATT-MASK-ZERO[torch:cpu:float32]``, collected from the installed :mod:`nnspec.spec` (no files are
copied; nothing is imported twice). Without ``--nnspec-impl`` the plugin does nothing, so installing
nnspec never changes another project's test run.

A clause that passes is a passed test; one that fails is a failed test whose report is the clause's
failure text (no traceback into the engine); *not applicable* is a skip with the reason; a broken
clause is a failed test saying so. Each test carries its :class:`ClauseResult` as a JSON user
property (``nnspec_result``), which pytest-xdist ships to the controller; the controller gathers
them (:func:`session_results`) for the report writer and the closing summary.

pytest-xdist: ``-n auto`` and ``--dist loadgroup`` work; results are identical with and without xdist
(no example database; seeds derive from the profile, ``--nnspec-seed`` and the clause id). With
several GPUs, each worker ``gwN`` sees one GPU (``CUDA_VISIBLE_DEVICES`` is set to the N-th visible
device, round robin) before torch initialises CUDA.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from nnspec.spec.clause import Clause

from . import catalogue as catalogue_module
from .implementations import Implementation, UnknownImplementation, load_implementation
from .profiles import PROFILES
from .runner import ClauseResult, run_clause

RESULT_PROPERTY = "nnspec_result"


class _State:
    """Everything the plugin knows about this run, kept in ``config.stash``."""

    def __init__(self) -> None:
        self.active = False
        self.implementations: list[Implementation] = []
        self.names: list[str] = []  # as given on the command line
        self.clauses: list[Clause] = []
        self.profile = "default"
        self.seed = 0
        self.time_limit: float | None = None
        self.report_dir: Path | None = None
        self.results: list[dict[str, Any]] = []
        self.started = time.time()


STATE = pytest.StashKey[_State]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("nnspec", "nnspec: check an implementation against the specification")
    group.addoption(
        "--nnspec-impl", action="append", default=[], metavar="IMPL",
        help="implementation to verify (repeatable): numpy, torch[:device[:dtype]] "
        "(e.g. torch:cpu:float32), package.module:object, or an entry-point name of the group "
        "nnspec.implementations. Without it the plugin is inactive.",
    )
    group.addoption(
        "--nnspec-profile", default="default", metavar="PROFILE",
        help=f"Hypothesis profile: {', '.join(PROFILES)} (default: default).",
    )
    group.addoption(
        "--nnspec-clause", action="append", default=[], metavar="ID",
        help="run only these clauses: ids or globs (ATT-*), repeatable or comma-separated. "
        "-k works as well.",
    )
    group.addoption("--nnspec-seed", default="0", metavar="N", help="seed (integer, default 0).")
    group.addoption(
        "--nnspec-time-limit", default=None, metavar="SECONDS",
        help="per-clause time limit (default: the profile's).",
    )
    group.addoption(
        "--nnspec-report", default=None, metavar="DIR",
        help="write the per-clause results (results.json) to DIR.",
    )
    group.addoption(
        "--nnspec-catalogue", action="append", default=[], metavar="MODULE[:NAME]",
        help="run the clauses of this module's dict NAME (default CLAUSES) instead of nnspec's.",
    )


def _usage(option: str, value: Any, problem: str) -> pytest.UsageError:
    return pytest.UsageError(f"{option}={value}: {problem}")


def _assign_gpu() -> None:
    """On xdist worker gwN, expose only the N-th GPU (round robin) before CUDA is initialised."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")
    if not worker.startswith("gw") or os.environ.get("NNSPEC_GPU_ASSIGNED"):
        return
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None:
        gpus = [g.strip() for g in visible.split(",") if g.strip()]
    else:
        try:
            out = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=20)
            gpus = [str(i) for i, line in enumerate(out.stdout.splitlines()) if line.startswith("GPU")]
        except (OSError, subprocess.SubprocessError):
            gpus = []
    if len(gpus) > 1:
        index = int(worker[2:] or 0)
        os.environ["CUDA_VISIBLE_DEVICES"] = gpus[index % len(gpus)]
        os.environ["NNSPEC_GPU_ASSIGNED"] = "1"


def pytest_configure(config: pytest.Config) -> None:
    state = _State()
    config.stash[STATE] = state
    names: list[str] = [n for value in config.getoption("nnspec_impl") for n in value.split(",") if n]
    if not names:
        return
    state.active = True
    config.pluginmanager.register(_ResultGatherer(state), "nnspec-results")

    profile = config.getoption("nnspec_profile")
    if profile not in PROFILES:
        raise _usage("--nnspec-profile", profile, f"unknown profile; use one of {', '.join(PROFILES)}")
    state.profile = profile
    seed = config.getoption("nnspec_seed")
    try:
        state.seed = int(seed)
    except ValueError:
        raise _usage("--nnspec-seed", seed, "not an integer; pass e.g. --nnspec-seed=0") from None
    limit = config.getoption("nnspec_time_limit")
    if limit is not None:
        try:
            state.time_limit = float(limit)
            if state.time_limit <= 0:
                raise ValueError
        except ValueError:
            raise _usage(
                "--nnspec-time-limit", limit, "not a positive number of seconds; pass e.g. 60"
            ) from None
    report = config.getoption("nnspec_report")
    if report:
        state.report_dir = Path(report)
        if state.report_dir.exists() and not state.report_dir.is_dir():
            raise _usage("--nnspec-report", report, "exists and is not a directory; name a directory")

    if any(n.startswith("torch:cuda") for n in names):
        _assign_gpu()
    for name in names:
        try:
            state.implementations.append(load_implementation(name))
            state.names.append(name)
        except UnknownImplementation as exc:
            raise _usage("--nnspec-impl", name, str(exc)) from None
        except Exception as exc:  # an import-path object that raises on import or construction
            raise _usage(
                "--nnspec-impl", name,
                f"loading it raised {type(exc).__name__}: {exc}; fix the implementation or the name",
            ) from None
    try:
        clauses = catalogue_module.catalogue(config.getoption("nnspec_catalogue"))
        state.clauses = catalogue_module.select(clauses, config.getoption("nnspec_clause"))
    except catalogue_module.CatalogueError as exc:
        option = "--nnspec-catalogue" if "catalogue" in str(exc) else "--nnspec-clause"
        raise pytest.UsageError(f"{option}: {exc}") from None


def pytest_report_header(config: pytest.Config) -> list[str] | None:
    state = config.stash.get(STATE, None)
    if state is None or not state.active:
        return None
    from importlib.metadata import version

    lines = [
        f"nnspec {version('nnspec')}: {len(state.clauses)} clauses, profile {state.profile}, "
        f"seed {state.seed}"
    ]
    lines += [f"nnspec implementation: {impl.describe()}" for impl in state.implementations]
    return lines


class ClauseNotConforming(Exception):
    """The implementation failed the clause (the report is the clause's failure text)."""


class ClauseBroken(Exception):
    """The clause itself errored (a catalogue bug)."""


class ClauseCatalogue(pytest.Collector):
    """The collector that owns the clause items (node id ``nnspec``)."""

    def collect(self) -> list[pytest.Item]:
        state = self.config.stash[STATE]
        return [
            ClauseItem.from_parent(
                self, name=f"{clause.id}[{impl.name}]", clause=clause, impl=impl, impl_arg=arg
            )
            for clause in state.clauses
            for impl, arg in zip(state.implementations, state.names, strict=True)
        ]


class ClauseItem(pytest.Item):
    """One clause on one implementation."""

    def __init__(self, *, clause: Clause, impl: Implementation, impl_arg: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.clause = clause
        self.impl = impl
        self.impl_arg = impl_arg  # the name as typed, for the reproduce commands
        self.result: ClauseResult | None = None
        # -k matches the topic, the level and the cost as well as the id
        self.extra_keyword_matches.update({clause.topic, clause.level, clause.cost})

    def runtest(self) -> None:
        state = self.config.stash[STATE]
        result = run_clause(
            self.clause, self.impl, profile=state.profile, seed=state.seed,
            time_limit=state.time_limit, reproduce_as=self.impl_arg,
        )
        if result.status == "failed":
            result.message += (
                f"\n  or: pytest --nnspec-impl={self.impl_arg} --nnspec-clause={self.clause.id} "
                f"--nnspec-profile={state.profile} --nnspec-seed={state.seed}"
            )
        self.result = result
        self.user_properties.append((RESULT_PROPERTY, json.dumps(result.to_dict())))
        if result.status == "not_applicable":
            pytest.skip(f"not applicable: {result.message}")
        if result.status == "failed":
            raise ClauseNotConforming(result.message)
        if result.status == "error":
            raise ClauseBroken(f"{self.clause.id} [{self.impl.name}] errored: {result.message}")

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> str:
        if isinstance(excinfo.value, ClauseNotConforming | ClauseBroken):
            return str(excinfo.value)
        return super().repr_failure(excinfo)

    def reportinfo(self) -> tuple[Any, int | None, str]:
        code = getattr(self.clause.prop, "__code__", None)
        path = code.co_filename if code else "nnspec"
        line = code.co_firstlineno - 1 if code else None
        return path, line, f"{self.clause.id}[{self.impl.name}]"


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config, items: list) -> None:
    """Append the clause items before -k/-m deselection (``tryfirst``) so both apply to them."""
    state = config.stash.get(STATE, None)
    if state is None or not state.active:
        return
    collector = ClauseCatalogue.from_parent(session, name="nnspec", nodeid="nnspec")
    clause_items = collector.collect()
    # tell the terminal (and anything else listening) what was collected, as for a file
    config.hook.pytest_collectreport(
        report=pytest.CollectReport(collector.nodeid, "passed", None, clause_items)
    )
    items.extend(clause_items)


class _ResultGatherer:
    """Registered per config: gathers results wherever reports arrive (the controller under xdist,
    the only process without it)."""

    def __init__(self, state: _State) -> None:
        self.state = state

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if report.when != "call":
            return
        for name, value in report.user_properties:
            if name == RESULT_PROPERTY:
                self.state.results.append(json.loads(value))


def session_results(config: pytest.Config) -> list[dict[str, Any]]:
    """The per-clause results of this session (ClauseResult.to_dict() rows), for report writers."""
    state = config.stash.get(STATE, None)
    return list(state.results) if state else []


def _is_controller(config: pytest.Config) -> bool:
    return not hasattr(config, "workerinput")


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    state = config.stash.get(STATE, None)
    if state is None or not state.active or not _is_controller(config):
        return
    tr = terminalreporter
    tr.section("nnspec")
    for impl in state.implementations:
        rows = [r for r in state.results if r["implementation"] == impl.name]
        counts: dict[str, int] = {}
        for r in rows:
            counts[r["status"]] = counts.get(r["status"], 0) + 1
        text = ", ".join(f"{n} {s.replace('_', ' ')}" for s, n in sorted(counts.items())) or "nothing ran"
        tr.write_line(f"{impl.name}: {text}")
    if state.report_dir is not None:
        tr.write_line(f"results written to {state.report_dir / 'results.json'}")


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    config = session.config
    state = config.stash.get(STATE, None)
    if state is None or not state.active or state.report_dir is None or not _is_controller(config):
        return
    state.report_dir.mkdir(parents=True, exist_ok=True)
    meta = {
        "implementations": [
            {"name": i.name, "version": i.version, "device": i.device, "dtype": i.dtype,
             "available": i.available, "conventions": i.conventions.differences()}
            for i in state.implementations
        ],
        "profile": state.profile,
        "seed": state.seed,
        "python": sys.version.split()[0],
        "started": state.started,
        "duration": time.time() - state.started,
        "exitstatus": int(exitstatus),
    }
    order = {(c.id, i.name): n for n, (c, i) in enumerate(
        (c, i) for c in state.clauses for i in state.implementations)}
    rows = sorted(state.results, key=lambda r: order.get((r["clause_id"], r["implementation"]), 1 << 30))
    (state.report_dir / "results.json").write_text(json.dumps({"meta": meta, "results": rows}, indent=1))
