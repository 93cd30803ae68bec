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

The failing ids pytest prints (``nnspec::SM-SUM[torch]``, ``../../nnspec::...`` from a subdirectory)
can be passed back as arguments: they select those clause runs (:func:`pytest_load_initial_conftests`).
Other plugins' per-test policies stay off the clauses (:func:`_clause_markers`): pytest-timeout's
``--timeout`` (nnspec's own per-clause limit governs them) and pytest-rerunfailures' reruns (a clause's
result is its one run's). nnspec's start-up (its modules, torch, Hypothesis) runs before the first
clause, outside any test (:func:`pytest_runtestloop`).

``--nnspec-report=DIR``: at the end of the session the controller writes the conformance report
(:mod:`nnspec.report`: results.json, report.md, report.html) -- also after Ctrl-C, ``-x`` or a crashed
worker, marked incomplete, with the selected clauses that never ran listed as skipped. A non-empty
DIR that nnspec did not write is refused before anything runs; an earlier report is replaced whole,
but not by a run in which no clause ran (collection errors, ``-x`` at a test of the user's, ``--co``).

pytest-xdist: ``-n auto`` and ``--dist loadgroup`` work; results are identical with and without xdist
(no example database; seeds derive from the profile, ``--nnspec-seed`` and the clause id). With
several GPUs, each worker ``gwN`` sees one GPU (``CUDA_VISIBLE_DEVICES`` is set to the N-th visible
device, round robin) before torch initialises CUDA. A clause stuck in native code, past the reach of
the time limit's signal, ends its worker after a grace period, and one that segfaults ends it at
once; the controller reports that clause failed, with the stack where it was stuck or crashed, and
xdist goes on in a new worker (:class:`nnspec.verify.runner.NativeFailureWatch`). Without xdist a
stuck call's stack is printed and the run waits.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any

import pytest
from nnspec.spec.clause import Clause

from . import catalogue as catalogue_module
from . import numerics
from .implementations import Implementation, UnknownImplementation, load_implementation
from .profiles import PROFILES
from .runner import ClauseResult, NativeFailureWatch, read_native_failure, run_clause

RESULT_PROPERTY = "nnspec_result"


class _State:
    """Everything the plugin knows about this run, kept in ``config.stash``."""

    def __init__(self) -> None:
        self.active = False
        self.implementations: list[Implementation] = []
        self.names: list[str] = []  # as given on the command line
        self.repeated: list[str] = []  # names of an implementation already given, which runs once
        self.clauses: list[Clause] = []
        self.profile = "default"
        self.seed = 0
        self.time_limit: float | None = None
        self.report_dir: Path | None = None
        self.results: list[dict[str, Any]] = []
        self.started = time.time()
        # (clause id, implementation name) of every selected clause item, learned from the collection
        # (serial) or from the workers' collections (xdist); None until known. What a report lists
        # as skipped when the run ends before they ran.
        self.selected: list[tuple[str, str]] | None = None
        self.workers: set[str] = set()
        # test name -> what went wrong outside the clause (a crashed worker), for items without a result
        self.crashes: dict[str, str] = {}
        self.command = ""
        self.written: dict[str, Path] = {}  # the report's files, by format, once written
        self.report_problem = ""  # why the report could not be written
        self.report_note = ""  # why no report was written on purpose (--collect-only, no clause selected)
        self.missing: list[tuple[str, str]] = []  # selected clause runs without a result at the end
        self.incomplete: str | None = None  # why the run is incomplete (None: every selected clause ran)
        # what a clause stuck in native code or killed by a fatal signal does
        # (runner.NativeFailureWatch); on the controller, the directory where its xdist workers
        # leave such a clause's result
        self.native_watch: NativeFailureWatch | None = None
        self.native_dir: Path | None = None
        # node ids of failed tests and collectors, in the order they failed (what stopped a -x run)
        self.failures: list[str] = []
        self.collection_errors: list[str] = []  # node ids of the collectors that failed
        # what ended the run by raising KeyboardInterrupt or one of its kind: Ctrl-C, pytest's or
        # xdist's Interrupted (collection errors, --sw, -x under xdist), pytest.exit()
        self.interrupt: BaseException | None = None


STATE = pytest.StashKey[_State]()
# clause runs named on the command line as pytest prints them (``nnspec::SM-SUM[torch]``), as
# (argument, node id); and whether they were the only test arguments (then nothing else is collected)
NODE_IDS = pytest.StashKey[list[tuple[str, str]]]()
CLAUSES_ONLY = pytest.StashKey[bool]()


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
        help="write the conformance report to DIR: results.json, report.md, report.html. DIR must "
        "be new, empty, or an earlier nnspec report (which is replaced whole).",
    )
    group.addoption("--nnspec-command", default="", help=argparse.SUPPRESS)  # set by `nnspec verify`
    group.addoption(
        "--nnspec-catalogue", action="append", default=[], metavar="MODULE[:NAME]",
        help="run the clauses of this module's dict NAME (default CLAUSES) instead of nnspec's.",
    )


def _clause_node_id(arg: str) -> str | None:
    """The node id of the clause run(s) ``arg`` names, as pytest prints them: ``nnspec::SM-SUM[torch]``,
    ``../../nnspec::SM-SUM[torch]`` from a subdirectory, or ``nnspec::SM-SUM`` for every implementation;
    None for any other argument. (No file or directory is called ``nnspec``: the clauses come from the
    installed package.)"""
    path, sep, rest = arg.partition("::")
    if not sep or not rest or Path(path).name != "nnspec":
        return None
    return f"nnspec::{rest}"


@pytest.hookimpl(tryfirst=True)
def pytest_load_initial_conftests(early_config: pytest.Config, parser: pytest.Parser, args: list[str]) -> None:
    """Take the clause runs named by their node ids out of the test arguments, before pytest looks
    for them as files (``ERROR: file or directory not found: nnspec::SM-SUM[torch]``): the failing
    ids nnspec's tests print can be passed back. They select clause items at collection
    (:func:`pytest_collection_modifyitems`); when they were the only arguments, nothing else is
    collected. xdist workers get the same command line and do the same."""
    namespace = early_config.known_args_namespace
    positional = list(getattr(namespace, "file_or_dir", None) or [])
    ours = [(arg, node_id) for arg in positional if (node_id := _clause_node_id(arg)) is not None]
    if not ours:
        return
    for arg, _ in ours:  # the positional occurrence: the last one (an option's value comes before)
        del args[len(args) - 1 - args[::-1].index(arg)]
    rest = [arg for arg in positional if _clause_node_id(arg) is None]
    namespace.file_or_dir = rest
    early_config.stash[NODE_IDS] = ours
    early_config.stash[CLAUSES_ONLY] = not rest


def pytest_ignore_collect(collection_path: Path, config: pytest.Config) -> bool | None:
    """Only clause runs were named: collect none of the project's own tests."""
    state = config.stash.get(STATE, None)
    if config.stash.get(CLAUSES_ONLY, False) and state is not None and state.active:
        return True
    return None


# How `nnspec verify` spells the options it passes on: its usage errors name what the user typed.
_CLI_SPELLING = {"--nnspec-impl": "implementation", "--nnspec-clause": "--clause",
                 "--nnspec-report": "--report", "--nnspec-profile": "--profile",
                 "--nnspec-seed": "--seed", "--nnspec-time-limit": "--time-limit"}
_SPELLING: dict[str, str] = {}


def _usage(option: str, value: Any, problem: str) -> pytest.UsageError:
    spelled = _SPELLING.get(option)
    if spelled == "implementation":  # the problem names the implementation already
        return pytest.UsageError(problem if repr(value) in problem else f"implementation {value!r}: {problem}")
    return pytest.UsageError(f"{spelled or option}={value}: {problem}")


def _as_given(name: str) -> str:
    """An implementation as the user gave it: ``--nnspec-impl=X`` to pytest, ``X`` to nnspec verify."""
    return name if _SPELLING.get("--nnspec-impl") == "implementation" else f"--nnspec-impl={name}"


def _assign_gpu(worker: str) -> None:
    """On xdist worker ``worker`` = gwN, expose only the N-th GPU (round robin) before CUDA starts.

    The worker id comes from the worker's own config, not from ``PYTEST_XDIST_WORKER``: that
    variable leaks into every process a worker starts, so a run launched from inside a worker (a
    test suite that calls ``nnspec verify -n 2``) would narrow its controller to one GPU and hand
    that same GPU to all of its workers.
    """
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


def _limit_torch_threads(names: list[str]) -> None:
    """One intra-op torch thread per process unless ``NNSPEC_TORCH_THREADS`` says otherwise.

    Clause inputs are small (a few heads, tens of positions): at that size torch's thread pool
    costs far more than it gives, and under ``-n N`` the workers' pools fight over the same cores
    (measured here: an SGD step of the digit network 0.7 ms with one thread, 78 ms with two busy
    pools on two cores). Parallelise across clauses with ``-n`` instead.
    """
    if "torch" not in sys.modules and not any(n.startswith("torch") for n in names):
        return
    import torch

    wanted = os.environ.get("NNSPEC_TORCH_THREADS", "1")
    try:
        threads = max(1, int(wanted))
    except ValueError:
        raise _usage("NNSPEC_TORCH_THREADS", wanted, "not an integer; e.g. NNSPEC_TORCH_THREADS=4") from None
    torch.set_num_threads(threads)


def pytest_configure(config: pytest.Config) -> None:
    state = _State()
    config.stash[STATE] = state
    _SPELLING.clear()
    if config.getoption("nnspec_command", ""):  # run by `nnspec verify`
        _SPELLING.update(_CLI_SPELLING)
    names = _implementation_names(config.getoption("nnspec_impl"))
    # Validated with or without an implementation: a bad value is a mistake either way.
    profile = config.getoption("nnspec_profile")
    if profile not in PROFILES:
        raise _usage("--nnspec-profile", profile, f"unknown profile; use one of {', '.join(PROFILES)}")
    state.profile = profile
    seed = config.getoption("nnspec_seed")
    try:
        state.seed = int(seed)
    except ValueError:
        raise _usage("--nnspec-seed", seed, "not an integer; pass e.g. --nnspec-seed=0") from None
    state.time_limit = _time_limit(config.getoption("nnspec_time_limit"))
    if not names and config.stash.get(NODE_IDS, None):
        arg = config.stash[NODE_IDS][0][0]
        raise pytest.UsageError(
            f"{arg}: a clause run of nnspec's plugin, which runs only with an implementation named: "
            "give the one the run had, e.g. --nnspec-impl=torch"
        )
    if not names:
        given = _options_given(config)
        if given:
            # the plugin is inert without an implementation; options that mean to steer it would
            # otherwise let a CI job (--nnspec-impl=$IMPL, IMPL unset elsewhere) pass checking nothing
            config.issue_config_time_warning(pytest.PytestConfigWarning(
                f"nnspec: {' '.join(given)} given without --nnspec-impl: no clause runs and nothing is "
                "checked; name an implementation, e.g. --nnspec-impl=torch"
            ), stacklevel=2)
        return
    state.active = True
    config.pluginmanager.register(_ResultGatherer(state), "nnspec-results")

    report = config.getoption("nnspec_report")
    if report:
        from nnspec.report.model import SCHEMA_VERSION
        from nnspec.report.writers import ReportDirError, check_output_dir

        state.report_dir = Path(report)
        if _is_controller(config):
            try:  # refuse a directory we would mix with or delete, before anything runs
                check_output_dir(state.report_dir, kind=SCHEMA_VERSION)
                _check_creatable(state.report_dir)
            except ReportDirError as exc:
                raise _usage("--nnspec-report", report, str(exc)) from None
    state.command = config.getoption("nnspec_command") or " ".join(
        ["pytest", *map(str, config.invocation_params.args)]
    )

    if any(n.startswith("torch:cuda") for n in names) and not _is_controller(config):
        _assign_gpu(config.workerinput["workerid"])
    for name in names:
        try:
            impl = load_implementation(name)
            if _named_before(state, name, impl):
                continue
            state.implementations.append(impl)
            state.names.append(name)
        except UnknownImplementation as exc:
            raise _usage("--nnspec-impl", name, str(exc) + _not_on_path(name, str(exc), config)) from None
        except Exception as exc:  # an import-path object that raises on import or construction
            raise _usage(
                "--nnspec-impl", name,
                f"loading it raised {type(exc).__name__}: {exc}{_raised_at(exc)}; fix the "
                "implementation or the name",
            ) from None
    _limit_torch_threads(names)
    if _is_controller(config):  # the run's own process: print the stack (fd 2 is the terminal now)
        state.native_watch = NativeFailureWatch(fd=os.dup(2))
    elif config.workerinput.get("nnspec_native_dir"):
        state.native_watch = NativeFailureWatch(
            Path(config.workerinput["nnspec_native_dir"]), worker=config.workerinput["workerid"]
        )
    try:
        clauses = catalogue_module.catalogue(config.getoption("nnspec_catalogue"))
        state.clauses = catalogue_module.select(clauses, config.getoption("nnspec_clause"))
    except catalogue_module.CatalogueError as exc:
        option = "--nnspec-catalogue" if "catalogue" in str(exc) else "--nnspec-clause"
        raise pytest.UsageError(f"{_SPELLING.get(option, option)}: {exc}") from None
    if getattr(config.option, "maxworkerrestart", "") is None and config.getoption("numprocesses", None):
        # xdist gives up after 4 crashed workers per worker, and the clauses left would never run.
        # A clause whose call kills its worker (a segfaulting kernel) fails, and the run goes on:
        # a restart for every clause run, and xdist's own allowance for crashes elsewhere.
        runs = len(state.clauses) * len(state.implementations)
        config.option.maxworkerrestart = str(runs + 4 * int(config.option.numprocesses))


def _not_on_path(name: str, problem: str, config: pytest.Config) -> str:
    """Why a module in the current directory is an unknown implementation under plain ``pytest``:
    ``--nnspec-impl=myimpl`` beside ``myimpl.py``, which ``python -m pytest`` and ``nnspec verify``
    would import."""
    if ":" in name or not name.isidentifier() or not problem.startswith("unknown implementation"):
        return ""
    here = config.invocation_params.dir
    if (here / f"{name}.py").is_file():
        found = f"{name}.py"
    elif (here / name).is_dir() and any((here / name).glob("*.py")):
        found = f"the package {name}/"
    else:
        return ""
    return (
        f"; {found} is in the current directory, but plain `pytest` does not put the current directory "
        "on sys.path: run `python -m pytest`, or set `pythonpath = .` in the pytest configuration"
    )


def _implementation_names(values: list[str]) -> list[str]:
    """The names given to --nnspec-impl (repeatable, or comma-separated); an empty one is refused:
    it is what an unset variable (--nnspec-impl=$IMPL) gives, and it would leave the plugin off."""
    for value in values:
        if not all(n.strip() for n in value.split(",")):
            raise _usage(
                "--nnspec-impl", value,
                "an empty implementation name (an unset variable?); name one, e.g. --nnspec-impl=torch",
            )
    return [n.strip() for value in values for n in value.split(",")]


# options that only mean something to an active plugin, with their defaults
_STEERING = {"nnspec_profile": "default", "nnspec_clause": [], "nnspec_seed": "0",
             "nnspec_time_limit": None, "nnspec_report": None, "nnspec_catalogue": []}


def _options_given(config: pytest.Config) -> list[str]:
    return [f"--{dest.replace('_', '-')}" for dest, default in _STEERING.items()
            if config.getoption(dest) != default]


# Below this a clause cannot even start: Hypothesis' own set-up outlasts it, and the alarm would
# fire inside Hypothesis rather than in the implementation.
MIN_TIME_LIMIT = 0.1


def _time_limit(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        seconds = float(value)
    except ValueError:
        seconds = float("nan")
    if not math.isfinite(seconds) or seconds < MIN_TIME_LIMIT:
        raise _usage(
            "--nnspec-time-limit", value,
            f"not a number of seconds from {MIN_TIME_LIMIT:g} up; pass e.g. 60 (a large one, "
            "e.g. 86400, for practically no limit)",
        )
    return seconds


def _check_creatable(directory: Path) -> None:
    """Refuse, before the run, a report directory that could not be created at its end: under a
    file, or where this user may not write."""
    from nnspec.report.writers import ReportDirError

    if directory.is_dir():
        target = directory
    else:
        target = directory.absolute().parent
        while not target.exists() and target != target.parent:
            target = target.parent
        if not target.is_dir():
            raise ReportDirError(f"it cannot be created: {target} is a file, not a directory")
    if not os.access(target, os.W_OK | os.X_OK):
        raise ReportDirError(f"it cannot be written: {target} is not writable by this user")


def _same_offer(a: Implementation, b: Implementation) -> bool:
    """Two wrappers of one third-party object: a module named by its entry point and by its
    import path."""
    return a.wrapped is not None and a.wrapped is b.wrapped


def _named_before(state: _State, name: str, impl: Implementation) -> bool:
    """Whether ``impl`` is one already on the command line (``torch`` and ``torch:cpu:float32``),
    which then runs once. Another implementation under a name already taken is a usage error: its
    results would share test ids and report rows with the first one's."""
    for earlier, other in zip(state.names, state.implementations, strict=True):
        if other.name != impl.name and not _same_offer(other, impl):
            continue
        bundled = all(i.framework != "third-party" and i.patched_from is None for i in (impl, other))
        if other is impl or bundled or _same_offer(other, impl):
            state.repeated.append(f"{_as_given(name)} is {_as_given(earlier)} again ({impl.name}): it runs once")
            return True
        raise UnknownImplementation(
            f"it is named {impl.name!r}, as {_as_given(earlier)} is: their results would share test ids "
            "and report rows; give one of them another nnspec_name"
        )
    return False


def pytest_report_header(config: pytest.Config) -> list[str] | None:
    state = config.stash.get(STATE, None)
    if state is None or not state.active:
        return None
    from importlib.metadata import version

    lines = [
        f"nnspec {version('nnspec')}: {len(state.clauses)} clause{'s' * (len(state.clauses) != 1)}, "
        f"profile {state.profile}, "
        f"seed {state.seed}"
    ]
    lines += [f"nnspec implementation: {impl.describe()}" for impl in state.implementations]
    lines += [f"nnspec: {note}" for note in state.repeated]
    modes = numerics.session_modes()
    if modes:
        lines.append(
            f"nnspec torch precision: {numerics.describe(modes)} (not a fresh torch's: third-party "
            "implementations run in it; torch:* and the low-precision baselines run in IEEE float32)"
        )
    numpy_errors = numerics.numpy_session_errors()
    if numpy_errors:
        lines.append(
            f"nnspec numpy errors: {numerics.describe_numpy_errors(numpy_errors)} (not a fresh NumPy's: "
            "third-party implementations run in it; the oracle and the checks in NumPy's defaults)"
        )
    if numerics.flushes_subnormals():
        lines.append(
            "nnspec subnormals: flushed to zero in this process (torch.set_flush_denormal(True), or a "
            "library built with -ffast-math); third-party implementations run so, the clauses, the "
            "oracle and torch:* with IEEE subnormals"
        )
    return lines


def _raised_at(exc: BaseException) -> str:
    """`` at FILE:LINE in FUNC``: the innermost frame of the user's code (not the import machinery's,
    not nnspec's) where ``exc`` was raised, so a failing import says where it failed."""
    engine = str(Path(__file__).resolve().parent)
    frames = [f for f in traceback.extract_tb(exc.__traceback__)
              if "importlib" not in f.filename and not f.filename.startswith("<")  # a dataclass's __init__
              and not str(Path(f.filename).resolve()).startswith(engine)]
    if not frames:
        return ""
    frame = frames[-1]
    return f" at {frame.filename}:{frame.lineno} in {frame.name}"


def _pytest_reproduce(state: _State, clause_id: str, impl_arg: str) -> str:
    """The pytest form of a failure's reproduce command (the runner's is ``nnspec verify``)."""
    limit = f" --nnspec-time-limit={state.time_limit:g}" if state.time_limit is not None else ""
    # `python -m pytest`, not `pytest`: like `nnspec verify`, it imports from the current
    # directory, where a user's own module (mypkg/impl.py) usually is.
    return (
        f"\n  or: python -m pytest --nnspec-impl={impl_arg} --nnspec-clause={clause_id} "
        f"--nnspec-profile={state.profile} --nnspec-seed={state.seed}{limit}"
    )


class ClauseNotConforming(Exception):
    """The implementation failed the clause (the report is the clause's failure text)."""


class ClauseBroken(Exception):
    """The clause itself errored (a catalogue bug)."""


class ClauseCatalogue(pytest.Collector):
    """The collector that owns the clause items (node id ``nnspec``)."""

    def collect(self) -> list[pytest.Item]:
        state = self.config.stash[STATE]
        # The node id as a string, parsed by pytest as a stored one is: pytest >= 9 reads the cached
        # ``nnspec::T-RELU[broken]`` of --lf/--ff as a name and a parameter, and an id built from the
        # name alone never matched it.
        items = [
            ClauseItem.from_parent(
                self, name=f"{clause.id}[{impl.name}]", nodeid=f"{self.nodeid}::{clause.id}[{impl.name}]",
                clause=clause, impl=impl, impl_arg=arg,
            )
            for clause in state.clauses
            for impl, arg in zip(state.implementations, state.names, strict=True)
        ]
        for marker in _clause_markers(self.config):
            for item in items:
                item.add_marker(marker)
        return items


def _clause_markers(config: pytest.Config) -> list[pytest.MarkDecorator]:
    """Markers that keep other plugins' per-test policies off the clauses, added only where the
    plugin that reads them is active (an unregistered marker is an error under --strict-markers).

    pytest-timeout: ``timeout(0)``, its "no timeout". nnspec's own per-clause limit
    (--nnspec-time-limit, or the profile's) governs a clause and reports a time-out as the clause's
    failure; the user's --timeout interrupted it in the middle of Hypothesis or torch, or (its thread
    method) ended the whole run without a report. The user's --timeout still governs their own tests.

    pytest-rerunfailures: ``flaky(reruns=0)``. A clause's examples are fixed by the profile, the seed
    and the clause: a pass on a second try is a second answer to the same input, not a pass
    (:meth:`ClauseItem.runtest` also gives a rerun forced by --force-reruns the first run's result).
    """
    manager = config.pluginmanager
    markers = []
    if manager.hasplugin("timeout") or manager.hasplugin("pytest_timeout"):
        markers.append(pytest.mark.timeout(0))
    if manager.hasplugin("rerunfailures") or manager.hasplugin("pytest_rerunfailures"):
        markers.append(pytest.mark.flaky(reruns=0))
    return markers


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
        result = self.result
        if result is None:  # a rerun (pytest-rerunfailures' --force-reruns) gives the one run's result
            result = run_clause(
                self.clause, self.impl, profile=state.profile, seed=state.seed,
                time_limit=state.time_limit, reproduce_as=self.impl_arg, native_failure=state.native_watch,
            )
            if result.status == "failed":
                result.message += _pytest_reproduce(state, self.clause.id, self.impl_arg)
            self.result = result
        # one result per clause run, however often the item runs: replaced, never appended twice
        self.user_properties[:] = [p for p in self.user_properties if p[0] != RESULT_PROPERTY]
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
    named = config.stash.get(NODE_IDS, None)
    if named:  # clause runs named by their ids: those alone
        for arg, node_id in named:
            if not any(_names(node_id, item.nodeid) for item in clause_items):
                example = clause_items[0].nodeid if clause_items else "nnspec::SM-SUM[torch]"
                raise pytest.UsageError(
                    f"not found: {arg} (no clause run of this session has that id; they are "
                    f"nnspec::CLAUSE[IMPLEMENTATION], for the implementations given with --nnspec-impl and "
                    f"the clauses selected, e.g. {example})"
                )
        clause_items = [item for item in clause_items if any(_names(n, item.nodeid) for _, n in named)]
    # tell the terminal (and anything else listening) what was collected, as for a file
    config.hook.pytest_collectreport(
        report=pytest.CollectReport(collector.nodeid, "passed", None, clause_items)
    )
    items.extend(clause_items)


def _names(node_id: str, item_id: str) -> bool:
    """Whether a node id given on the command line names the clause item ``item_id``: the same id, or
    the clause's id without the implementation (``nnspec::SM-SUM``: on every implementation)."""
    return item_id == node_id or ("[" not in node_id and item_id.startswith(node_id + "["))


class _ResultGatherer:
    """Registered per config: gathers results wherever reports arrive (the controller under xdist,
    the only process without it)."""

    def __init__(self, state: _State) -> None:
        self.state = state

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if report.failed:
            self.state.failures.append(report.nodeid)
        found = False
        for name, value in report.user_properties:  # "???": a crashed worker's (pytest_handlecrashitem)
            if name == RESULT_PROPERTY and report.when in ("call", "???"):
                self._add(json.loads(value))
                found = True
        if not found and report.failed and report.nodeid.startswith("nnspec::"):
            # no result although the item failed: it crashed outside the clause (xdist reports a
            # crashed worker's item like this, with when="???"), or its setup broke
            last = (str(report.longrepr).strip().splitlines() or ["no report"])[-1]
            self.state.crashes[report.nodeid.split("::", 1)[1]] = last

    def _add(self, row: dict[str, Any]) -> None:
        """One row per (clause, implementation): a report of the same clause run again (a rerun, an
        item run by two xdist workers under --dist each) replaces it, so nothing counts twice."""
        key = (row["clause_id"], row["implementation"])
        results = self.state.results
        for n, earlier in enumerate(results):
            if (earlier["clause_id"], earlier["implementation"]) == key:
                results[n] = row
                return
        results.append(row)

    def pytest_collectreport(self, report: pytest.CollectReport) -> None:
        if report.failed:
            self.state.collection_errors.append(report.nodeid)
            self.state.failures.append(report.nodeid)

    def pytest_keyboard_interrupt(self, excinfo: pytest.ExceptionInfo[BaseException]) -> None:
        self.state.interrupt = excinfo.value

    @pytest.hookimpl(optionalhook=True)
    def pytest_configure_node(self, node: Any) -> None:
        """xdist, on the controller: tell each worker where to leave a clause stuck in native code
        or killed by a fatal signal."""
        if self.state.native_dir is None:
            self.state.native_dir = Path(tempfile.mkdtemp(prefix="nnspec-native-"))
        node.workerinput["nnspec_native_dir"] = str(self.state.native_dir)

    @pytest.hookimpl(optionalhook=True)
    def pytest_handlecrashitem(self, crashitem: str, report: pytest.TestReport, sched: Any) -> None:
        """xdist, on the controller: a worker died running ``crashitem``. If its watchdog ended it
        (stuck in native code) or a fatal signal killed it (faulthandler wrote the stack), the clause
        failed: the report says so, with the stack, and the run goes on."""
        gateway = getattr(getattr(report, "node", None), "gateway", None)
        if self.state.native_dir is None or gateway is None or not crashitem.startswith("nnspec::"):
            return
        result = read_native_failure(self.state.native_dir, str(gateway.id))
        if result is None:
            return  # os._exit, the OOM killer's SIGKILL: no word from it, reported as a crash
        typed = dict(zip((i.name for i in self.state.implementations), self.state.names, strict=True))
        result.message += _pytest_reproduce(self.state, result.clause_id, typed.get(result.implementation, ""))
        report.longrepr = result.message
        report.user_properties.append((RESULT_PROPERTY, json.dumps(result.to_dict())))

    def pytest_collection_finish(self, session: pytest.Session) -> None:
        self.state.selected = [
            (item.clause.id, item.impl.name) for item in session.items if isinstance(item, ClauseItem)
        ]

    @pytest.hookimpl(optionalhook=True)
    def pytest_xdist_node_collection_finished(self, node: Any, ids: list[str]) -> None:
        """Under xdist the controller collects nothing: learn the selection from the workers'."""
        state = self.state
        names = {f"{c.id}[{i.name}]": (c.id, i.name) for c in state.clauses for i in state.implementations}
        ours = [i.split("::", 1)[1] for i in ids if i.startswith("nnspec::")]
        selected = [names[name] for name in ours if name in names]
        self.state.workers.add(str(getattr(node, "gateway", node)))
        if self.state.selected is None:
            self.state.selected = selected


@pytest.hookimpl(wrapper=True)
def pytest_runtestloop(session: pytest.Session) -> Any:
    """nnspec's one-time start-up (every nnspec module, torch with them where the implementations
    need it, Hypothesis warmed up: seconds) before the first clause, outside any test: inside the
    first clause's test it counted towards that test's duration, and another plugin's per-test
    timeout (pytest-timeout) cut torch's import short, breaking every clause after it. Wherever
    clause items run: the only process, or each xdist worker (an xdist controller runs none)."""
    config = session.config
    state = config.stash.get(STATE, None)
    stopping = session.testsfailed and not config.option.continue_on_collection_errors
    if (state is not None and state.active and not config.option.collectonly and not stopping
            and any(isinstance(item, ClauseItem) for item in session.items)):
        from .runner import _import_whole_package, needs_torch

        try:
            _import_whole_package(torch_needed=needs_torch(state.implementations))
        except Exception:  # the first clause calls it again and fails saying why
            pass
    return (yield)


def session_results(config: pytest.Config) -> list[dict[str, Any]]:
    """The per-clause results of this session (ClauseResult.to_dict() rows), for report writers."""
    state = config.stash.get(STATE, None)
    return list(state.results) if state else []


def _is_controller(config: pytest.Config) -> bool:
    return not hasattr(config, "workerinput")


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    state = config.stash.get(STATE, None)
    if state is None or not state.active or not _is_controller(config) or exitstatus == pytest.ExitCode.USAGE_ERROR:
        return
    tr = terminalreporter
    tr.section("nnspec")
    if config.option.collectonly:  # nothing ran by design: how many would
        for impl in state.implementations:
            n = sum(1 for _, name in state.selected or [] if name == impl.name)
            tr.write_line(f"{impl.name}: {n} clause run{'s' * (n != 1)} collected")
        if state.report_note:
            tr.write_line(f"nnspec: {state.report_note}")
        return
    for impl in state.implementations:
        rows = [r for r in state.results if r["implementation"] == impl.name]
        counts: dict[str, int] = {}
        for r in rows:
            counts[r["status"]] = counts.get(r["status"], 0) + 1
        text = ", ".join(f"{n} {s.replace('_', ' ')}" for s, n in sorted(counts.items())) or (
            "none selected" if state.selected is not None and all(name != impl.name for _, name in state.selected)
            else "nothing ran")
        partly = [
            r["clause_id"] for r in rows if r["status"] == "passed" and (r.get("notes") or {}).get("not offered")
        ]
        if partly:
            # a pass on the parts it offers: say so, or the count reads as more than was checked
            text += f" ({len(partly)} of them partly, on what it offers: {', '.join(partly)})"
        never = sum(1 for _, name in state.missing if name == impl.name)
        if never:
            text += f", {never} never ran"
        tr.write_line(f"{impl.name}: {text}")
        reasons: dict[str, int] = {}
        for r in rows:
            if r["status"] == "not_applicable":
                reason = r["message"].removeprefix(f"{impl.name}: ")
                reasons[reason] = reasons.get(reason, 0) + 1
        for reason, n in sorted(reasons.items(), key=lambda item: -item[1]):
            tr.write_line(f"    not applicable ({n}): {reason}")
        if rows and all(r["status"] == "not_applicable" for r in rows):
            # exit status 0 (no clause failed), but nothing was verified: say so loudly, so that a
            # CI job whose GPU or package went missing does not read as a conforming run
            why = impl.unavailable_reason if not impl.available else "it offers none of what they need"
            tr.write_line(
                f"nnspec: NOTHING was checked on {impl.name}: every selected clause was not applicable "
                f"({why})", yellow=True, bold=True,
            )
    if state.incomplete:
        tr.write_line(f"nnspec: the run is INCOMPLETE: {state.incomplete}", yellow=True, bold=True)
    if state.written:
        names = ", ".join(p.name for p in state.written.values())
        tr.write_line(f"report written to {state.report_dir}: {names}")
    if state.report_problem:
        tr.write_line(f"report NOT written: {state.report_problem}", red=True, bold=True)
    if state.report_note:
        tr.write_line(f"nnspec: {state.report_note}", yellow=not state.results)


def _completeness(session: pytest.Session, exitstatus: int, state: _State, missing: int) -> list[str]:
    """Why the run is incomplete (none: every selected clause ran to its end)."""
    reasons = []
    interrupt = state.interrupt
    stopped = session.shouldfail or session.shouldstop or ""
    if isinstance(interrupt, pytest.exit.Exception):
        reasons.append(f"ended by pytest.exit(): {interrupt.msg}")
    elif type(interrupt).__name__ == "Interrupted":
        # pytest's or xdist's own stop (a KeyboardInterrupt by type, not a Ctrl-C): collection
        # errors, --sw, -x under xdist; or an xdist worker's Ctrl-C, which it names
        text = str(interrupt)
        if "keyboard-interrupt" in text:
            reasons.append(f"interrupted (Ctrl-C: {text})")
        elif "during collection" in text and state.collection_errors:
            errors = state.collection_errors
            reasons.append(f"{len(errors)} collection error(s) ({', '.join(errors[:3])}"
                           f"{', ...' if len(errors) > 3 else ''}): pytest ran no test")
            stopped = ""  # -x counts the collection errors as failures: the same stop
        else:  # under xdist its text, not the controller's own count, names the failure that stopped it
            stopped = text
    elif interrupt is not None or exitstatus == pytest.ExitCode.INTERRUPTED:
        reasons.append("interrupted (Ctrl-C)")
    if exitstatus == pytest.ExitCode.INTERNAL_ERROR:
        reasons.append("pytest hit an internal error")
    if stopped:
        reasons.append(f"stopped early: {stopped}{_stopped_by(state, str(stopped))}")
    if state.crashes:
        crashed = [f"{name} ({why})" for name, why in list(state.crashes.items())[:3]]
        reasons.append(f"{len(state.crashes)} clause run(s) crashed outside the clause (e.g. a worker died): "
                       + "; ".join(crashed))
    if state.selected is None and exitstatus not in (pytest.ExitCode.OK, pytest.ExitCode.TESTS_FAILED):
        reasons.append("the run ended before the clauses were collected")
    if missing:
        reasons.append(f"{missing} selected clause result(s) missing")
    return reasons


def _stopped_by(state: _State, stop: str) -> str:
    """`` (the stop came from a test outside nnspec: NODEID)`` when the failure that stopped the run
    (-x, --maxfail, --sw) is not a clause's: a summary of no failed clause would otherwise puzzle."""
    if not state.failures:
        return ""
    counted = re.search(r"stopping after (\d+) failure", stop)  # pytest's and xdist's -x/--maxfail text
    n = int(counted.group(1)) if counted else len(state.failures)
    node_id = state.failures[max(1, min(n, len(state.failures))) - 1]
    if node_id.startswith("nnspec::"):
        return ""
    return f" (the stop came from a test outside nnspec: {node_id})"


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Write the report (all formats) on the controller, also after Ctrl-C, -x or a crashed worker."""
    config = session.config
    state = config.stash.get(STATE, None)
    if state is None or not state.active or not _is_controller(config):
        return
    rows = {(r["clause_id"], r["implementation"]): r for r in state.results}
    missing = [key for key in (state.selected or []) if key not in rows]
    reasons = _completeness(session, int(exitstatus), state, len(missing))
    reason = "; ".join(reasons) or None
    if not config.option.collectonly:  # --co runs nothing by design: nothing is missing
        state.missing, state.incomplete = missing, reason  # for the closing summary
    if state.report_dir is None:
        return
    if config.option.collectonly or state.selected == []:
        # nothing ran: an empty report (or one of missing rows) would replace the last one, and an
        # empty one would read as complete conformance
        why = "--collect-only ran no clause" if config.option.collectonly else "no clause was selected"
        kept = (state.report_dir / "results.json").is_file()
        state.report_note = f"{why}: no report written" + (
            f", {state.report_dir}'s last report is as it was" if kept else ""
        )
        return
    if not state.results:
        # collection errors, -x at a test of the user's before the clauses, every clause run
        # deselected after the fact: a report of rows that never ran would replace the last real one
        kept = (state.report_dir / "results.json").is_file()
        state.report_note = (
            f"report NOT written to {state.report_dir}: no clause ran "
            f"({'; '.join(reasons[:-1] if missing and len(reasons) > 1 else reasons) or 'no result arrived'})"
            + ("; the previous report there is unchanged" if kept else "")
        )
        return
    from nnspec.report import ReportDirError, build_report, run_metadata, skipped_row, write_report

    clauses = {c.id: c for c in state.clauses}
    order = {(c.id, i.name): n for n, (c, i) in enumerate(
        (c, i) for c in state.clauses for i in state.implementations)}
    for clause_id, impl_name in missing:
        crash = state.crashes.get(f"{clause_id}[{impl_name}]")
        why = f"no result: it crashed ({crash})" if crash else f"never ran: the run ended first ({reason})"
        rows[(clause_id, impl_name)] = skipped_row(clauses[clause_id], impl_name, why)
    ordered = sorted(rows.values(), key=lambda r: order.get((r["clause_id"], r["implementation"]), 1 << 30))
    meta = run_metadata(
        implementations=[
            {"name": i.name, "version": i.version, "device": i.device, "dtype": i.dtype,
             "available": i.available, "conventions": i.conventions.differences()}
            for i in state.implementations
        ],
        profile=state.profile,
        seed=state.seed,
        started=state.started,
        finished=time.time(),
        complete=reason is None,
        incomplete_reason=reason,
        exitstatus=int(exitstatus),
        workers=len(state.workers),
        command=state.command,
        torch_precision=numerics.session_modes(),
        numpy_errors=numerics.numpy_session_errors(),
        flush_subnormals=numerics.flushes_subnormals(),
    )
    # files this run put into DIR besides the report (--junitxml=DIR/junit.xml) move along with it
    present = list(state.report_dir.iterdir()) if state.report_dir.is_dir() else []
    this_run = [p.name for p in present if p.is_file() and p.stat().st_mtime >= state.started]
    try:
        state.written = write_report(build_report(ordered, meta), state.report_dir, keep=this_run)
    except ReportDirError as exc:  # something else wrote into DIR during the run: never mix with it
        state.report_problem = str(exc)
    except OSError as exc:  # the disk filled up, DIR's parent went away or became read-only
        state.report_problem = f"{type(exc).__name__}: {exc}"
    if state.report_problem and exitstatus in (pytest.ExitCode.OK, pytest.ExitCode.TESTS_FAILED):
        # the run did not do what it was asked: not a pass, and not the implementation's failure
        session.exitstatus = pytest.ExitCode.INTERNAL_ERROR


def pytest_unconfigure(config: pytest.Config) -> None:
    state = config.stash.get(STATE, None)
    if state is None:
        return
    if state.native_watch is not None and state.native_watch.directory is None:
        os.close(state.native_watch.fd)  # the copy of the terminal's stderr
    if state.native_dir is not None:
        shutil.rmtree(state.native_dir, ignore_errors=True)
