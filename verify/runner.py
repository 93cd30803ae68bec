"""Running one clause against one implementation: :func:`run_clause` and its :class:`ClauseResult`.

Statuses:

``passed``
    every example held.
``failed``
    the implementation does not conform: an assertion failed (:class:`ClauseFailure`), or the
    implementation raised, returned NaN/Inf, the wrong shape or dtype, or did not return within the
    clause's time limit (also when it is stuck in native code: :class:`NativeFailureWatch`). The
    message says what was observed and expected, the error and tolerance, the shrunk input and the
    command that reproduces it.
``not_applicable``
    the implementation lacks a capability the clause needs, or cannot run here (no GPU).
``error``
    the clause itself (or the oracle) broke, or Hypothesis could not generate data: a bug of the
    catalogue, never blamed on the implementation.
"""

from __future__ import annotations

import dataclasses
import faulthandler
import json
import signal
import sys
import threading
import time
import traceback
import zlib
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
from hypothesis import given
from hypothesis import seed as hypothesis_seed
from hypothesis import strategies as st
from hypothesis.control import current_build_context
from hypothesis.errors import Flaky, HypothesisException, StopTest, UnsatisfiedAssumption
from nnspec.spec.clause import REGISTRY, Clause, ClauseFailure, DeclaredOtherwise

from . import numerics
from .check import EngineCheck, Record, summarise
from .conventions import CONFIG_CONVENTIONS
from .implementations import (
    CURRENT_CALL,
    MASKS_TRANSLATED,
    SESSION_FLUSHES_SUBNORMALS,
    SESSION_NUMPY_ERRORS,
    Implementation,
    MissingCapability,
    load_implementation,
)
from .profiles import get_profile

Status = Literal["passed", "failed", "error", "not_applicable"]


class ClauseTimeout(BaseException):
    """Raised by the alarm when a clause runs past its time limit. A ``BaseException`` so neither
    the implementation's nor Hypothesis' ``except Exception`` swallows it."""


@dataclass
class ClauseResult:
    """Everything a report row needs about one clause on one implementation."""

    clause_id: str
    implementation: str
    status: Status
    message: str = ""
    # Examples Hypothesis generated and ran to the end (or to a failure): at most the profile's
    # max_examples. Draws it abandoned (an overrun buffer) are not examples.
    examples: int = 0
    # Which example failed first (None when none failed): it is the last one generated.
    examples_to_failure: int | None = None
    # The runs after the first failure, while Hypothesis shrank it to the input reported.
    shrinks: int = 0
    max_error: float | None = None
    tolerance: float | None = None
    reason: str = ""
    duration: float = 0.0
    counterexample: str = ""
    reproduce: str = ""
    statement: str = ""
    source: str = ""
    topic: str = ""
    level: str = ""
    cost: str = ""
    needs: tuple[str, ...] = ()
    profile: str = "quick"
    seed: int = 0
    dtype: str = ""
    device: str = ""
    records: list[Record] = field(default_factory=list)
    notes: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """True unless the implementation failed or the clause errored."""
        return self.status in ("passed", "not_applicable")

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (what crosses from xdist workers and what report writers read)."""
        return {
            "clause_id": self.clause_id,
            "implementation": self.implementation,
            "status": self.status,
            "message": self.message,
            "examples": self.examples,
            "examples_to_failure": self.examples_to_failure,
            "shrinks": self.shrinks,
            "max_error": self.max_error,
            "tolerance": self.tolerance,
            "reason": self.reason,
            "duration": self.duration,
            "counterexample": self.counterexample,
            "reproduce": self.reproduce,
            "statement": self.statement,
            "source": self.source,
            "topic": self.topic,
            "level": self.level,
            "cost": self.cost,
            "needs": list(self.needs),
            "profile": self.profile,
            "seed": self.seed,
            "dtype": self.dtype,
            "device": self.device,
            "records": [r.to_dict() for r in self.records[-20:]],
            "notes": {k: _jsonable(v) for k, v in self.notes.items()},
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ClauseResult:
        data = dict(data)
        data["needs"] = tuple(data.get("needs", ()))
        data["records"] = [Record(**r) for r in data.get("records", [])]
        return cls(**data)


def _jsonable(value: Any) -> Any:
    if isinstance(value, int | float | str | bool) or value is None:
        return value
    if isinstance(value, list | tuple) and all(isinstance(v, str) for v in value):
        return list(value)  # names, such as the capabilities a run could not check
    try:
        return float(value)
    except (TypeError, ValueError):
        return summarise(value)


def get_clause(clause_or_id: str | Clause) -> Clause:
    """A clause by id from the installed catalogue (imports :mod:`nnspec.spec` once)."""
    if isinstance(clause_or_id, Clause):
        return clause_or_id
    import nnspec.spec  # noqa: F401  (registers the catalogue)

    try:
        return REGISTRY[clause_or_id]
    except KeyError:
        import difflib

        close = difflib.get_close_matches(clause_or_id, list(REGISTRY), n=3)
        hint = f"; did you mean {close}?" if close else "; `nnspec list` shows every id"
        raise KeyError(f"unknown clause id {clause_or_id!r}{hint}") from None


def reproduce_command(
    clause_id: str, impl: str, profile: str, seed: int, time_limit: float | None = None
) -> str:
    """The ``nnspec verify`` line that runs the same clause on the same examples (and, when the run
    set one, under the same time limit: a timeout must time out again)."""
    command = f"nnspec verify {impl} --clause {clause_id} --profile {profile} --seed {seed}"
    return command + (f" --time-limit {time_limit:g}" if time_limit is not None else "")


def _moved_default_device() -> str:
    """``torch.set_default_device('X')`` when this process has moved torch's default device off
    the CPU, else "". A tensor an implementation makes without ``device=`` lands there, so a failure
    may need it to reproduce; a fresh ``nnspec verify`` starts on the CPU. torch is not imported
    for a run that never loaded it."""
    torch = sys.modules.get("torch")
    if torch is None or not hasattr(torch, "get_default_device"):
        return ""
    device = torch.get_default_device()
    return "" if device.type == "cpu" else f"torch.set_default_device({str(device)!r})"


class _TimeLimit:
    """SIGALRM-based limit on the main thread; elsewhere (or on Windows) no limit is enforced."""

    def __init__(self, seconds: float | None) -> None:
        self.seconds = seconds
        self.fired = False  # the limit passed, whatever Hypothesis made of the interruption
        self.active = (
            bool(seconds)
            and hasattr(signal, "setitimer")
            and threading.current_thread() is threading.main_thread()
        )

    def _fire(self, signum: int, frame: Any) -> None:
        self.fired = True
        raise ClauseTimeout(CURRENT_CALL.get())

    def __enter__(self) -> _TimeLimit:
        if self.active:
            self._previous = signal.signal(signal.SIGALRM, self._fire)
            # Re-fire every half second after the limit: an exception raised while the interpreter
            # runs a gc callback or a __del__ is swallowed, and one lost alarm must not mean no limit.
            try:
                signal.setitimer(signal.ITIMER_REAL, float(self.seconds), 0.5)  # type: ignore[arg-type]
            except BaseException:  # a limit so short it fired here: disarm, or it fires outside any clause
                self.__exit__()
                raise
        return self

    def __exit__(self, *exc: Any) -> None:
        if self.active:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, self._previous)


def native_hang_grace(limit: float) -> float:
    """How long past the time limit a clause is given before it counts as stuck in native code."""
    return max(5.0, 0.1 * limit)


@dataclass(frozen=True)
class NativeFailureWatch:
    """What to do about a clause whose call never returns to the interpreter, or kills the process.

    The time limit is a SIGALRM, and Python runs a signal handler only between bytecodes: a call
    stuck in native code (a kernel that never finishes, a deadlocked lock in a C extension, a
    synchronisation that waits forever) is out of its reach, and the run would hang. So while a
    clause runs, faulthandler's watchdog, a C thread that needs no GIL, waits
    :func:`native_hang_grace` seconds past the limit and then writes every thread's stack. A call
    that dies of a fatal signal (a segfault in a C extension) takes its process with it;
    faulthandler writes the stack of that too.

    ``directory`` set (an xdist worker): before the clause starts, the result it would have if it
    got stuck is written to ``<directory>/<worker>.pending.json``; the stacks go to
    ``<worker>.stack``, and a stuck call's process is ended. The controller, told by xdist that the
    worker died running that clause, turns the two files into the clause's failure
    (:func:`read_native_failure`), and the run goes on in a new worker. ``directory`` None (one
    process, ``-n 0``): a stuck call's stacks go to file descriptor ``fd`` and the process is left
    to wait, since ending it would end the run (pytest's own faulthandler reports a crash).
    """

    directory: Path | None = None
    worker: str = "main"
    fd: int = 2

    def paths(self) -> tuple[Path, Path]:
        assert self.directory is not None
        return self.directory / f"{self.worker}.pending.json", self.directory / f"{self.worker}.stack"


def _stuck_message(limit: float, grace: float) -> str:
    return (
        f"did not return within the time limit ({limit:g} s, the per-clause time limit) and could not "
        "be interrupted: the call is stuck in native code (a kernel that never finishes or runs far too "
        "long, a deadlock in a C extension), which Python's signal-based time limit cannot reach; "
        f"nnspec ended the worker process {grace:g} s after the limit and the run went on in a new one"
    )


def _crash_message(fatal: str) -> str:
    return (
        f"crashed its process: {fatal.removeprefix('Fatal Python error: ')} while the clause ran (native "
        "code: an out-of-bounds access in a kernel or a C extension, an abort); the worker died and "
        "the run went on in a new one"
    )


@contextmanager
def _watch_native_failure(
    watch: NativeFailureWatch | None, result: ClauseResult, limit: float, active: bool
) -> Iterator[None]:
    if watch is None or not active:
        yield
        return
    grace = native_hang_grace(limit)
    if watch.directory is None:
        faulthandler.dump_traceback_later(limit + grace, exit=False, file=watch.fd)
        try:
            yield
        finally:
            faulthandler.cancel_dump_traceback_later()
        return
    pending_path, stack_path = watch.paths()
    pending = dataclasses.replace(
        result, status="failed", duration=limit + grace, message=_stuck_message(limit, grace)
    )
    pending_path.write_text(json.dumps({"result": pending.to_dict(), "started": time.time()}))
    crash_report_was_on = faulthandler.is_enabled()  # pytest's, onto the worker's stderr
    with open(stack_path, "w") as stack:
        faulthandler.dump_traceback_later(limit + grace, exit=True, file=stack)
        faulthandler.enable(file=stack, all_threads=True)
        try:
            yield
        finally:
            faulthandler.cancel_dump_traceback_later()
            if crash_report_was_on:
                faulthandler.enable(file=sys.__stderr__ or sys.stderr, all_threads=True)
            else:
                faulthandler.disable()
    pending_path.unlink(missing_ok=True)
    stack_path.unlink(missing_ok=True)


def _stuck_thread(stacks: str) -> list[str]:
    """The frames of the thread that ran the clause, from faulthandler's dump of every thread, down
    to the clause's own (the engine and Hypothesis below it say nothing about the hang)."""
    blocks: list[list[str]] = []
    for line in stacks.splitlines():
        if line.startswith(("Thread ", "Current thread ")):
            blocks.append([])
        elif blocks and line.startswith("  File "):
            blocks[-1].append(line.strip())
    ours = [b for b in blocks if any(" in run_clause" in frame for frame in b)]
    frames = (ours or blocks or [[]])[0]
    engine = next((i for i, f in enumerate(frames) if f.endswith(" in example") and "runner.py" in f), None)
    return frames[:engine][:12]


def read_native_failure(directory: Path, worker: str) -> ClauseResult | None:
    """The failure of the clause a worker was running when it died: stuck in native code (its
    watchdog ended it) or killed by a fatal signal (faulthandler wrote the stack); None if it died
    without a word (``os._exit``, the OOM killer's SIGKILL). The two files are removed, so the
    worker that takes its place starts clean."""
    watch = NativeFailureWatch(directory, worker)
    pending_path, stack_path = watch.paths()
    try:
        pending = json.loads(pending_path.read_text())
        stacks = stack_path.read_text()
    except (OSError, ValueError):
        return None
    finally:
        pending_path.unlink(missing_ok=True)
        stack_path.unlink(missing_ok=True)
    first_line = stacks.split("\n", 1)[0]
    result = ClauseResult.from_dict(pending["result"])
    if first_line.startswith("Timeout ("):
        where = "where it was stuck"
    elif first_line.startswith("Fatal Python error: "):
        where = "where it crashed"
        result.message = _crash_message(first_line)
        result.duration = max(0.0, time.time() - pending["started"])
    else:
        return None
    result.message += f"\n{where} (faulthandler's stack, most recent call first):\n" + "\n".join(
        f"  {frame}" for frame in _stuck_thread(stacks)
    )
    result.message = format_failure(result)
    return result


def _worst(records: list[Record]) -> Record | None:
    """The record closest to (or furthest past) its tolerance."""
    best, best_ratio = None, -1.0
    for r in records:
        if r.error is None or r.tolerance is None:
            continue
        ratio = r.error / r.tolerance if r.tolerance > 0 else (float("inf") if r.error > 0 else 0.0)
        if ratio > best_ratio:
            best, best_ratio = r, ratio
    return best


_WHOLE_PACKAGE_IMPORTED = False
_TORCH_PART_IMPORTED = False
# The modules that import torch: what a float64 run of implementations that never touch torch (the
# oracle, NumPy or JAX code of a user's) does without. The rest of nnspec imports it only inside
# the functions that need it.
_TORCH_MODULES = (
    "nnspec.reference.torch_ref", "nnspec.verify.torch_nn", "nnspec.verify.hf_gpt2", "nnspec.verify.hf_marian",
    "nnspec.verify.hugging_face",
)


def needs_torch(implementations: Iterable[Any]) -> bool:
    """Whether clauses on these implementations use torch: a torch one (or any code that already
    imported it), or one below float64, judged against torch_ref's baseline at its precision."""
    return "torch" in sys.modules or any(getattr(i, "dtype", "float64") != "float64" for i in implementations)


def _import_whole_package(*, torch_needed: bool = True) -> None:
    """Import every nnspec module once, before the first clause runs, so that no clause pays for the
    imports inside its time limit (the pytest plugin calls this at the start of the session, outside
    any test, where another plugin's per-test timeout cannot cut it short). Torch and the modules
    built on it come too unless ``torch_needed`` is false: its import is most of the start-up (1.5 s
    of 2.2 s here), paid again in every xdist worker, and a float64 run of an implementation that
    does not use torch never calls it."""
    global _WHOLE_PACKAGE_IMPORTED, _TORCH_PART_IMPORTED
    if _WHOLE_PACKAGE_IMPORTED and (_TORCH_PART_IMPORTED or not torch_needed):
        return
    import importlib
    import pkgutil

    from hypothesis import settings

    def import_tree(name: str) -> None:  # pkgutil.walk_packages would import torch_ref to walk it
        if not torch_needed and name.startswith(_TORCH_MODULES):
            return
        module = importlib.import_module(name)
        for info in pkgutil.iter_modules(getattr(module, "__path__", [])):
            import_tree(f"{name}.{info.name}")

    for package in ("nnspec.spec", "nnspec.reference", "nnspec.verify", "nnspec.report"):
        import_tree(package)
    _TORCH_PART_IMPORTED = _TORCH_PART_IMPORTED or torch_needed
    if _WHOLE_PACKAGE_IMPORTED:
        return

    # Hypothesis's own first run sets up its machinery: pay that here too.
    @settings(max_examples=1, database=None, deadline=None)
    @given(st.integers())
    def warm_up(_: int) -> None:
        pass

    with _without_local_constants():  # nor scans the project's modules (nor caches them there)
        warm_up()
    _WHOLE_PACKAGE_IMPORTED = True


@contextmanager
def _without_local_constants() -> Iterator[None]:
    """Hypothesis mixes into its draws constants it finds in the source of "local" modules (those
    outside site-packages and the standard library) that happen to be imported: the user's project
    in ``pytest --nnspec-impl``, nnspec itself when installed editable. A clause's examples would
    then change with the user's unrelated code, with which of their tests were selected, and between
    an xdist worker and a serial run. While a clause runs the pool of local constants is empty, so
    the examples depend only on the profile, the seed and the clause (Hypothesis's global constants,
    the same everywhere, stay). Nothing to do on a Hypothesis without the feature."""
    try:
        from hypothesis.internal.conjecture import providers
        from hypothesis.internal.constants_ast import Constants

        scan, cache = providers._get_local_constants, providers.CONSTANTS_CACHE.cache
    except (ImportError, AttributeError):
        yield
        return
    none = Constants()
    providers._get_local_constants = lambda: none
    cache.clear()  # it holds the permitted constants of each kind of draw, local ones included
    try:
        yield
    finally:
        providers._get_local_constants = scan
        cache.clear()


def run_clause(
    clause_or_id: str | Clause,
    impl: str | Implementation,
    *,
    profile: str = "quick",
    seed: int = 0,
    time_limit: float | None = None,
    reproduce_as: str | None = None,
    shrink: bool = True,
    native_failure: NativeFailureWatch | None = None,
) -> ClauseResult:
    """Run one clause's property on ``impl`` under Hypothesis and return what happened.

    ``time_limit`` (seconds, whole clause) defaults to the profile's. ``reproduce_as`` is the name
    the reproduce command uses for the implementation (the one the user typed, e.g. an import path),
    by default the name it was loaded by (an implementation's own ``nnspec_name`` may not load),
    else ``impl.name``. ``shrink=False`` skips Hypothesis's shrink phase: the failure is then
    reported on the first failing input, which is what a kill-matrix run wants (it asks *whether*
    and *how soon* a bug is found, not for the smallest input). Never raises for anything the
    implementation or the clause does; only for an unknown clause id, implementation or profile.
    ``native_failure`` says what to do about a call that the time limit cannot interrupt, or that
    kills the process (:class:`NativeFailureWatch`; the pytest plugin passes one): by default
    nothing.
    """
    clause = get_clause(clause_or_id)
    impl = load_implementation(impl)
    _import_whole_package(torch_needed=needs_torch([impl]))
    reproduce_as = reproduce_as or impl.loaded_as  # the name that loads it again
    prof = get_profile(profile)
    result = ClauseResult(
        clause_id=clause.id,
        implementation=impl.name,
        status="passed",
        statement=clause.statement,
        source=str(clause.source),
        topic=clause.topic,
        level=clause.level,
        cost=clause.cost,
        needs=clause.needs,
        profile=prof.name,
        seed=seed,
        dtype=impl.dtype,
        device=impl.device,
        reproduce=(
            reproduce_command(clause.id, reproduce_as or impl.name, prof.name, seed, time_limit)
            if reproduce_as or impl.patched_from is None
            else f"run_clause({clause.id!r}, patched({impl.patched_from!r}, name={impl.name!r}, ...), "
            f"profile={prof.name!r}, seed={seed})  # in Python, with the same overrides"
        ),
    )
    session = [_moved_default_device()]
    if impl.dtype != "float64":  # TF32 and bfloat16 matmul passes round float32 (and only that)
        session.append(numerics.describe(numerics.session_modes()))
    session.append(numerics.describe_numpy_errors(numerics.numpy_session_errors()))
    flushing = numerics.flushes_subnormals()
    session.append(numerics.describe_subnormals(flushing))
    session_state = "; ".join(filter(None, session))
    if session_state:
        result.reproduce += f"  # after {session_state} in the same process, as in this run"
    if not impl.available:
        result.status, result.message = "not_applicable", f"{impl.name}: {impl.unavailable_reason}"
        return result
    limit = time_limit if time_limit is not None else prof.time_limit
    try:
        # A network offered as a factory is asked here what it builds (Implementation.has): the
        # implementation's code, run under the clause's time limit like the rest of it.
        with _TimeLimit(limit):
            missing = impl.missing(clause.needs)
            # Alternatives and optional capabilities it lacks: the parts of the clause that need
            # them do not run (each is guarded by ck.offers), and the row says so.
            not_offered = [name for name in clause.optional if not impl.has(name)]
    except ClauseTimeout as exc:
        result.status = "failed"
        result.message = (
            f"timed out after {limit:g} s while {exc.args[0] if exc.args else impl.name} was building a "
            "tiny network to learn which methods it offers; the implementation hung or is far too slow"
        )
        return result
    if missing:
        result.status = "not_applicable"
        result.message = f"{impl.name} does not offer {', '.join(missing)}"
        return result

    state: dict[str, Any] = {"ck": None, "examples": 0, "shrinks": 0, "records": [], "first_failure": None}
    # Shrinking: every run after the first failure counts against the cap, abandoned ones too (see
    # profiles.SHRINK_FACTOR); ``best`` is the latest failing run's failure and check, the smallest
    # input found so far, reported if the cap or the time limit ends shrinking.
    shrink_cap = prof.shrink_runs_for(clause.cost) if shrink else None
    state.update(shrink_runs=0, shrinking_capped=False, best=None)

    def example(data: Any) -> None:
        if state["first_failure"] is not None:
            if shrink_cap is not None and state["shrink_runs"] >= shrink_cap and not _final_replay():
                state["shrinking_capped"] = True
                # Instant, and what Hypothesis makes of a candidate that runs out of draws: it is
                # dropped, nothing is recorded of it, and the smallest failure found is kept.
                data.conjecture_data.mark_overrun()
            state["shrink_runs"] += 1
        ck = EngineCheck(impl, data, capabilities=clause.capabilities)
        state["ck"] = ck
        counter = "examples" if state["first_failure"] is None else "shrinks"
        state[counter] += 1
        try:
            clause.prop(impl, ck)
        except (StopTest, UnsatisfiedAssumption):
            state[counter] -= 1  # Hypothesis abandoned it (a draw overran its buffer): not run
            raise
        except BaseException as exc:
            if state["first_failure"] is None:
                state["first_failure"] = state["examples"]
            if isinstance(exc, ClauseFailure):
                state["best"] = (exc, ck)
            raise
        finally:
            state["records"].extend(r for r in ck.records if r.error is not None)
            if len(state["records"]) > 200:  # keep the worst, not every record of a long run
                worst = _worst(state["records"])
                state["records"] = [worst] if worst else []

    started = time.perf_counter()
    time_limit_alarm = _TimeLimit(limit)
    # the clause and the oracle compute in NumPy's default error handling, the implementation in
    # the session's (numerics.NUMPY_FRESH)
    session_errors = SESSION_NUMPY_ERRORS.set(np.geterr())
    session_flush = SESSION_FLUSHES_SUBNORMALS.set(flushing)
    translated_masks: set[str] = set()
    masks_translated = MASKS_TRANSLATED.set(translated_masks)
    try:
        with (
            np.errstate(**numerics.NUMPY_FRESH),
            numerics.subnormals(flush=False),
            _without_local_constants(),
            time_limit_alarm,
            _watch_native_failure(native_failure, result, limit, time_limit_alarm.active),
        ):
            if clause.hypothesis:
                test = given(st.data())(example)
                test = prof.hypothesis_settings(clause.cost, shrink=shrink)(test)
                test = hypothesis_seed(seed * 1_000_003 + zlib.crc32(clause.id.encode()))(test)
                test()
            else:
                example(None)
    except ClauseTimeout as exc:
        _timed_out(result, state, exc.args[0] if exc.args else None, limit, time_limit, prof.name)
    except MissingCapability as exc:
        result.status = "not_applicable"
        result.message = f"{exc} (used by the clause although not in its needs {list(clause.needs)})"
    except DeclaredOtherwise as exc:
        result.status = "not_applicable"
        result.message = f"{impl.name}: {exc}"
    except ClauseFailure as exc:
        result.status = "failed"
        result.message = str(exc)
        if exc.error is not None:
            result.max_error, result.tolerance = exc.error, exc.tolerance
    except Flaky as exc:
        if time_limit_alarm.fired:
            # The alarm fell inside Hypothesis' own runs (its replay of a shrunk failure), which
            # then saw two runs of one input differ: the time limit's doing, not the implementation's.
            _timed_out(result, state, None, limit, time_limit, prof.name)
        else:
            _not_deterministic(result, exc)
    except HypothesisException as exc:
        result.status = "error"
        result.message = f"{clause.id}: Hypothesis could not run the clause: {type(exc).__name__}: {exc}"
    except Exception as exc:
        result.status = "error"
        tb = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__)[-3:])
        result.message = (
            f"{clause.id}: the clause itself raised {type(exc).__name__}: {exc} "
            f"(a bug of the clause or the oracle, not of {impl.name})\n{tb}"
        )
    finally:
        SESSION_NUMPY_ERRORS.reset(session_errors)
        SESSION_FLUSHES_SUBNORMALS.reset(session_flush)
        MASKS_TRANSLATED.reset(masks_translated)
    result.duration = time.perf_counter() - started
    result.examples = state["examples"]
    result.shrinks = state["shrinks"]
    result.examples_to_failure = state["first_failure"] if result.status == "failed" else None
    ck: EngineCheck | None = state["ck"]
    if ck is not None:
        result.notes = dict(ck.notes)
        result.records = list(ck.records)
        if result.status == "failed" and ck.drawn:
            pinned = {name: value for name, value in impl.conventions.differences().items()
                      if name in CONFIG_CONVENTIONS and any(label == name for label, _ in ck.drawn)}
            result.counterexample = "\n".join(
                f"{label} = {summarise(v)}{_built_as(pinned, label, v)}" for label, v in ck.drawn
            )
            if impl.conventions.mask_true_means == "masked" and (translated_masks or any(
                isinstance(v, np.ndarray) and v.dtype == bool for _, v in ck.drawn
            )):
                # what the clause drew or read is in nnspec's polarity; the implementation's is the inverse
                via = f" (here: {', '.join(sorted(translated_masks))})" if translated_masks else ""
                result.counterexample += (
                    f"\n(masks as the clauses read them, True = may attend: {impl.name} declares "
                    f"mask_true_means='masked', and each mask it took or returned was inverted on the way{via})"
                )
            if pinned:
                # the draw is shown; both sides built the network with the declared choice instead
                declared = ", ".join(f"{name}={value!r}" for name, value in pinned.items())
                result.counterexample += (
                    f"\n(network choices above as drawn: {impl.name} declares {declared}, and both sides "
                    "built the network with that)"
                )
    if not_offered:
        result.notes["not offered"] = not_offered
        if result.status == "passed":
            result.message = partly_checked(impl.name, not_offered)
    worst = _worst(state["records"])
    if result.status == "passed" and worst is not None:
        result.max_error, result.tolerance, result.reason = worst.error, worst.tolerance, worst.reason
    elif result.status == "failed" and ck is not None and ck.records and not ck.records[-1].passed:
        failing = ck.records[-1]
        result.reason = failing.reason
        if result.max_error is None:  # an exact-equality or a NaN failure: its record has the error
            result.max_error, result.tolerance = failing.error, failing.tolerance
    if result.status == "failed" and state["shrinking_capped"]:
        result.message += (
            f"\n(shrinking stopped after {shrink_cap} runs, the {prof.name!r} profile's cap for a "
            f"{clause.cost} clause: the input below is the smallest failing one found by then)"
        )
    if result.status == "failed":
        result.message = format_failure(result)
    return result


def _built_as(pinned: dict[str, Any], label: str, drawn: Any) -> str:
    """Beside a drawn network choice that a declared convention replaced, the value both sides built
    (Marian's shrunk input read ``positional = 'learned'`` for a network that has only sinusoids)."""
    if label not in pinned or isinstance(drawn, np.ndarray) or drawn == pinned[label]:
        return ""
    return f"  (built as {pinned[label]!r}: declared)"


def _final_replay() -> bool:
    """True in the run Hypothesis makes of the failing input it reports (which must run in full)."""
    try:
        return bool(current_build_context().is_final)
    except Exception:  # outside a build context, or a Hypothesis without the flag: never cut
        return True


def partly_checked(impl_name: str, not_offered: list[str]) -> str:
    """What a passed row says when the implementation offered only some of what the clause checks."""
    return (
        f"passed on the parts {impl_name} offers; not checked: the parts that need "
        f"{', '.join(not_offered)}, which it does not offer"
    )


def _timed_out(
    result: ClauseResult, state: dict[str, Any], running: str | None, limit: float,
    time_limit: float | None, profile: str,
) -> None:
    """A clause past its time limit: the failure Hypothesis was shrinking, if it had found one,
    with the note that the limit ended shrinking; else a time-out, naming the call that was
    running."""
    result.status = "failed"
    if state["best"] is not None:  # the limit fell while Hypothesis shrank a failure: report it
        failure, state["ck"] = state["best"]
        result.message = (
            f"{failure}\n(the time limit of {limit:g} s ended shrinking: the input below is the "
            "smallest failing one found by then)"
        )
        if failure.error is not None:
            result.max_error, result.tolerance = failure.error, failure.tolerance
        return
    where = f" while {running} was running" if running else ""
    whose = (
        "the per-clause time limit given to this run; a larger one (nnspec verify "
        "--time-limit, pytest --nnspec-time-limit) allows more"
        if time_limit is not None
        else f"the {profile!r} profile's per-clause time limit; nnspec verify --time-limit, "
        "pytest --nnspec-time-limit change it"
    )
    result.message = (
        f"timed out after {limit:g} s{where} ({whose}); "
        + ("the implementation hung or is far too slow" if running else
           "no call of the implementation was running then: the time went to the clause's own "
           "checks and the oracle, so the limit is too small for this clause here")
    )


def _not_deterministic(result: ClauseResult, exc: Flaky) -> None:
    """Hypothesis saw one input fail and then pass, or ask for different draws. The oracle and the
    clauses are deterministic (the numpy self-check and the ci profile's twice-identical runs hold
    them to it), so it is the implementation giving two answers to one input."""
    result.status = "failed"
    first = _first_failure(exc)
    result.message = (
        "not deterministic: the same input gave different results on two runs (Hypothesis saw "
        f"it fail and then pass, or ask for different draws: {type(exc).__name__}); a race in a "
        "kernel, uninitialised memory (torch.empty) or state kept between calls does this. "
        "The input below is the one it was run on twice."
    )
    if first is not None:
        result.message += f"\nthe failure it gave once: {first}"
        if first.error is not None:
            result.max_error, result.tolerance = first.error, first.tolerance


def _first_failure(exc: BaseException, seen: set[int] | None = None) -> ClauseFailure | None:
    """The first clause failure inside an exception (group), as Hypothesis' Flaky* errors carry it;
    each exception is looked at once (causes and contexts can form a cycle)."""
    seen = set() if seen is None else seen
    if id(exc) in seen:
        return None
    seen.add(id(exc))
    if isinstance(exc, ClauseFailure):
        return exc
    for inner in [*getattr(exc, "exceptions", ()), exc.__cause__, exc.__context__]:
        if isinstance(inner, BaseException) and (found := _first_failure(inner, seen)):
            return found
    return None


def format_failure(result: ClauseResult) -> str:
    """The full failure text: clause, sentence, what happened, the input and how to reproduce."""
    lines = [
        f"{result.clause_id} [{result.implementation}] failed: {result.statement}",
        f"  source: {result.source}",
        "  " + result.message.replace("\n", "\n  "),
    ]
    if result.notes.get("not offered"):
        missing = result.notes["not offered"]
        lines.append(
            f"  checked on part: {result.implementation} does not offer {', '.join(missing)}, so the "
            f"parts that need {'it' if len(missing) == 1 else 'them'} did not run"
        )
    if result.counterexample:
        # a time-out or a failure of the replayed final input was never shrunk
        lines.append("  shrunk input:" if result.shrinks else "  input:")
        lines += [f"    {line}" for line in result.counterexample.splitlines()]
    elif result.status == "failed" and result.examples:
        lines.append("  input: fixed, as named above (the check failed before anything was drawn)")
    lines.append(f"  reproduce: {result.reproduce}")
    return "\n".join(lines)
