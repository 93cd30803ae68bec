"""The engine's implementation of :class:`nnspec.spec.clause.Check`.

One :class:`EngineCheck` is made per Hypothesis example. It draws through Hypothesis (every draw
labelled and remembered for the failure report), rounds inputs to the implementation's dtype, calls
the oracle configured with the implementation's conventions, applies the tolerance policy of
:mod:`nnspec.verify.tolerances`, and records every assertion (observed error, tolerance, why).
Every failed assertion raises :class:`ClauseFailure`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from nnspec.spec.clause import ClauseFailure

from . import tolerances
from .conventions import ConfiguredOracle, Conventions
from .implementations import Implementation, load_implementation, round_tree


@dataclass
class Record:
    """One assertion a clause made: what, whether it held, the error, the tolerance and why."""

    what: str
    passed: bool
    error: float | None = None
    tolerance: float | None = None
    reason: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "what": self.what,
            "passed": self.passed,
            "error": self.error,
            "tolerance": self.tolerance,
            "reason": self.reason,
        }


def summarise(value: Any, width: int = 6) -> str:
    """A short human-readable preview: shape, dtype and a few values."""
    if isinstance(value, np.ndarray) or isinstance(value, np.generic):
        arr = np.asarray(value)
        if arr.ndim == 0:
            return repr(arr.item())
        flat = arr.ravel()
        head = np.array2string(flat[:width], precision=4, separator=", ", threshold=width + 1)
        more = ", ..." if flat.size > width else ""
        return f"array{arr.shape} {arr.dtype} {head[:-1]}{more}]"
    if isinstance(value, dict):
        inner = ", ".join(f"{k!r}: {summarise(v, 3)}" for k, v in list(value.items())[:4])
        return "{" + inner + (", ..." if len(value) > 4 else "") + "}"
    if isinstance(value, list | tuple):
        if value and all(isinstance(v, int | np.integer) for v in value):
            text = repr(list(value)[:12])
            return text[:-1] + ", ...]" if len(value) > 12 else text
        inner = ", ".join(summarise(v, 3) for v in value[:4])
        return f"{type(value).__name__}({inner}{', ...' if len(value) > 4 else ''})"
    text = repr(value)
    return text if len(text) <= 120 else text[:117] + "..."


def _is_shape(x: Any) -> bool:
    """A shape as np.shape gives it: a tuple of ints (a list of numbers is compared as data)."""
    return isinstance(x, tuple) and all(isinstance(n, int | np.integer) for n in x)


def _is_float_array(x: Any) -> bool:
    return isinstance(x, np.ndarray | np.generic) and np.asarray(x).dtype.kind == "f"


def baseline_device(device: str, *, available: bool) -> str:
    """Where torch_ref computes the same-precision baseline for an implementation on ``device``.

    The rule compares errors made on the same kind of hardware: a model on ``cuda:1`` against
    torch_ref on CUDA (cuBLAS's accumulation, not the CPU's). A device torch_ref has no baseline
    for here (``xpu``, ``mps``, one that is absent) falls back to the CPU."""
    kind = device.partition(":")[0]
    return kind if available and kind == "cuda" else "cpu"


def same_precision_baseline(conventions: Conventions, device: str, dtype: str) -> Any:
    """torch_ref at ``dtype`` on ``device``, making the choices the oracle is configured with.

    The rule's baseline must differ from the oracle by its precision alone. So the conventions the
    oracle matches (network configs, eps, GELU's form, causal alignment, the order of the sinusoids
    a network adds) are matched on it the same way, by :class:`ConfiguredOracle` around it, while
    those an adapter translates (mask polarity, a concatenated ``positional_encoding`` table) are
    not declared for it: it computes in the clauses' terms already. A baseline with the references'
    choices where the implementation declared others was off by their difference (interleaved
    sinusoids under a concatenated declaration: logits off by 2 in float32), and k times that let
    code making neither choice pass."""
    torch_ref = load_implementation(f"torch:{device}:{dtype}")  # declares nothing: translates nothing
    matched = dataclasses.replace(conventions, mask_true_means="attend")
    return torch_ref if matched == torch_ref.conventions else ConfiguredOracle(matched, module=torch_ref)


class EngineCheck:
    """See :class:`nnspec.spec.clause.Check` for the interface; ``data`` is Hypothesis' ``st.data()``
    object (None for clauses with ``hypothesis=False``)."""

    def __init__(
        self, impl: Implementation, data: Any = None, *, capabilities: tuple[str, ...] | None = None
    ) -> None:
        self.impl = impl
        # What the clause declares it may call (needs and uses); None: anything (a test's toy clause).
        self._capabilities = capabilities
        self.oracle = impl.oracle
        self.records: list[Record] = []
        self.notes: dict[str, Any] = {}
        self.drawn: list[tuple[str, Any]] = []
        self._data = data

    # -- inputs --------------------------------------------------------------------------------
    def draw(self, strategy: Any, label: str) -> Any:
        if self._data is None:
            raise RuntimeError(
                f"ck.draw({label!r}) in a clause declared hypothesis=False; declare it with "
                "hypothesis=True (the default) to draw inputs"
            )
        value = self._data.draw(strategy, label=label)
        self.drawn.append((label, value))
        return value

    def input(self, x: Any) -> Any:
        return round_tree(np.asarray(x, dtype=np.float64) if isinstance(x, float | list) else x, self.impl.dtype)

    def show(self, label: str, value: Any) -> Any:
        """Show ``value`` beside the drawn input of a failure, under ``label``: an input the clause
        derived from its draws (ids with the pads put in), so that what the implementation was
        called with is on the page, not only what it was made from. Returns ``value``."""
        self.drawn.append((label, value))
        return value

    # -- assertions ----------------------------------------------------------------------------
    def _fail(
        self, what: str, observed: str, expected: str, verdict: tolerances.Verdict | None = None, *, note: str = ""
    ) -> None:
        detail = ""
        if verdict is not None:
            detail = f"tolerance rule: {verdict.reason}" + (f"; {verdict.detail}" if verdict.detail else "")
        if note:
            detail = f"{detail}\n{note}" if detail else note
        raise ClauseFailure(
            what,
            observed=observed,
            expected=expected,
            error=None if verdict is None or not np.isfinite(verdict.error) else verdict.error,
            tolerance=None if verdict is None or not np.isfinite(verdict.error) else verdict.tolerance,
            detail=detail,
        )

    def _structure(self, observed: Any, expected: Any, what: str) -> list[tuple[Any, Any, str]]:
        """Pair up the leaves of two outputs (tuples, lists, dicts), failing on a mismatch."""
        if isinstance(expected, tuple | list) and not isinstance(expected, np.ndarray):
            if not isinstance(observed, tuple | list) or len(observed) != len(expected):
                self.records.append(Record(what, False, reason="structure"))
                # a short list of numbers (token ids) is shown whole: "a list of 2: [2, 3]"
                values = (f": {[e.item() if isinstance(e, np.generic) else e for e in expected]}"
                          if 0 < len(expected) <= 16 and all(isinstance(e, int | float | np.number) for e in expected)
                          else "")
                self._fail(
                    f"{what}: wrong structure", summarise(observed),
                    f"a {type(expected).__name__} of {len(expected)}{values}",
                )
            pairs = []
            for i, (o, e) in enumerate(zip(observed, expected, strict=True)):
                pairs += self._structure(o, e, f"{what}[{i}]")
            return pairs
        if isinstance(expected, dict):
            if not isinstance(observed, dict) or set(observed) != set(expected):
                self.records.append(Record(what, False, reason="structure"))
                self._fail(f"{what}: wrong keys", summarise(observed), f"keys {sorted(expected)}")
            pairs = []
            for key in expected:
                pairs += self._structure(observed[key], expected[key], f"{what}[{key!r}]")
            return pairs
        return [(observed, expected, what)]

    def _shape_and_dtype(self, observed: Any, expected: Any, what: str) -> None:
        if np.shape(observed) != np.shape(expected):
            self.records.append(Record(what, False, reason="shape"))
            self._fail(
                f"{what}: wrong shape", f"shape {np.shape(observed)} ({summarise(observed)})",
                f"shape {np.shape(expected)}",
            )
        if _is_float_array(expected) and isinstance(observed, np.ndarray) and observed.dtype.kind not in "f":
            self.records.append(Record(what, False, reason="dtype"))
            self._fail(f"{what}: wrong dtype", f"dtype {observed.dtype}", "a floating-point array")
        if isinstance(expected, np.ndarray) and expected.dtype == bool and isinstance(observed, np.ndarray) \
                and observed.dtype != bool:
            self.records.append(Record(what, False, reason="dtype"))
            self._fail(f"{what}: wrong dtype", f"dtype {observed.dtype}", "a boolean mask")

    def _judge(self, verdict: tolerances.Verdict, observed: Any, expected: Any, what: str) -> None:
        self.records.append(Record(what, verdict.passed, verdict.error, verdict.tolerance, verdict.reason))
        if not verdict.passed:
            scale = tolerances.magnitude(expected) if _is_float_array(expected) else 1.0
            self._fail(what, summarise(observed), summarise(expected), verdict,
                       note=self._narrower(observed, verdict.error, scale))

    def _rounded_like_float32(self, error: float, scale: float) -> str:
        """A float64 result off by float32's rounding (a kernel that computes in float32 inside and
        returns float64: eager JAX's ``dot_product_attention``, a cast back after ``.float()``)
        shows the same four digits on both sides; say what the error's size suggests."""
        if self.impl.dtype != "float64" or not np.isfinite(error):
            return ""
        relative = error / max(scale, 1e-300)
        if not tolerances.EPS["float32"] / 64 <= relative <= tolerances.EPS["float32"] * 64:
            return ""
        return (
            f"an error of {relative:.2g} relative to max|expected| is the size of float32's rounding (eps "
            f"{tolerances.EPS['float32']:.2g}), not float64's: a step inside may compute in float32 "
            "and cast back; if the whole computation does, declare float32"
        )

    def _narrower(self, observed: Any, error: float = 0.0, scale: float = 1.0) -> str:
        """Why a precision failure may be the declaration's: a result in a narrower float than the
        implementation declares (a float32 model without ``nnspec_dtype`` is judged as float64)."""
        declared = tolerances.EPS[self.impl.dtype]  # the one eps table
        if isinstance(observed, np.ndarray) and observed.dtype.kind == "f" \
                and float(np.finfo(observed.dtype).eps) > declared:
            return (
                f"the result is {observed.dtype}, narrower than the {self.impl.dtype} this implementation "
                f"declares (nnspec_dtype; float64 unless declared): if it computes in {observed.dtype}, "
                "declare that, and it is judged by that precision's rule"
            )
        # torch code behind torch_module: its tensors became float64 NumPy on the way out
        narrower = [d for d in self.impl.result_dtypes if tolerances.EPS.get(d, 0.0) > declared]
        if not narrower:
            return self._rounded_like_float32(error, scale)
        seen = ", ".join(sorted(narrower, key=tolerances.EPS.__getitem__))
        return (
            f"its torch results have come back in {seen}, narrower than the {self.impl.dtype} it declares "
            f"(torch_module(dtype=...)): if it computes in {seen} (autocast included), declare that, "
            "and it is judged by that precision's rule"
        )

    def close(
        self, observed: Any, expected: Any, *, output: str = "default", what: str, condition: Any = 1.0
    ) -> None:
        tolerances.kind(output)  # an unknown kind is the clause's error, even when values agree
        for obs, exp, label in self._structure(observed, expected, what):
            self._shape_and_dtype(obs, exp, label)
            verdict = tolerances.closed_form(obs, exp, output, self.impl.dtype, condition=condition)
            self._judge(verdict, obs, exp, label)

    def close_to_oracle(
        self, name: str | Callable[[Any], Any], *args: Any, output: str = "default",
        what: str | None = None, condition: Any = 1.0, **kwargs: Any,
    ) -> Any:
        """Call ``impl.<name>`` and ``oracle.<name>`` on the same (dtype-rounded) arguments and
        compare; returns the implementation's output. ``name`` may also be a function of the
        namespace, ``lambda m: m.GPT(config, params).forward(ids)``, for methods of networks; then
        ``what`` names the call for the failure message (a lambda has no name of its own).
        ``condition`` is the computation's condition number, as in :meth:`close`: below float64 it
        widens the floor of the same-precision rule (float64's own tolerance already holds it)."""
        tolerances.kind(output)
        args = round_tree(args, self.impl.dtype)
        kwargs = round_tree(kwargs, self.impl.dtype)
        label = what or (name if isinstance(name, str) else getattr(name, "__name__", "call"))

        def call(namespace: Any) -> Any:
            if isinstance(name, str):
                return getattr(namespace, name)(*args, **kwargs)
            return name(namespace)

        observed = call(self.impl)
        return self._by_the_same_precision_rule(observed, call(self.oracle), call, f"{label} vs oracle",
                                                output, condition, "oracle")

    def close_to(
        self, route: Callable[[Any], Any], expected: Any, *, output: str = "default", what: str,
        condition: Any = 1.0, against: str = "expected",
    ) -> Any:
        """``route(impl)`` against an ``expected`` value computed without the oracle (central
        differences of a float64 cost, say), by the same rules as :meth:`close_to_oracle`: below
        float64, ``k`` times torch_ref's own error against it (``route`` run on torch_ref at the
        implementation's dtype) plus a floor. A bug shared with the oracle cannot hide here, and
        the tolerance is the format's, not rule 3's fixed ulps. Returns the implementation's
        output."""
        tolerances.kind(output)
        return self._by_the_same_precision_rule(route(self.impl), expected, route, what, output, condition,
                                                against)

    def _by_the_same_precision_rule(
        self, observed: Any, expected: Any, call: Callable[[Any], Any], what: str, output: str,
        condition: Any, against: str,
    ) -> Any:
        baseline = None
        if self.impl.dtype != "float64":
            # The bundled torch implementation *is* the same-precision baseline: don't run it twice.
            bundled = self.impl.name == f"torch:{self.impl.device}:{self.impl.dtype}"
            baseline = observed if bundled else self._baseline(call)
        pairs = self._structure(observed, expected, what)
        base_pairs = None
        if baseline is not None:
            try:
                base_pairs = [b for b, _, _ in self._structure(baseline, expected, what)]
            except ClauseFailure:
                self.records.pop()
                base_pairs = None
        for i, (obs, exp, leaf) in enumerate(pairs):
            self._shape_and_dtype(obs, exp, leaf)
            if isinstance(exp, np.ndarray) and exp.dtype.kind in "biu":
                self.equal(obs, exp, what=leaf)
                continue
            if self.impl.dtype == "float64":
                verdict = tolerances.against_oracle_float64(obs, exp, output, against=against)
            else:
                base = base_pairs[i] if base_pairs is not None else None
                verdict = tolerances.against_baseline(obs, exp, base, output, self.impl.dtype, condition=condition,
                                                      against=against)
            self._judge(verdict, obs, exp, leaf)
        return observed

    def close_routes(
        self, route: Callable[[Any], Any], other: Callable[[Any], Any], *, output: str = "default", what: str
    ) -> tuple[Any, Any]:
        """``route(impl)`` against ``other(impl)``: two ways through the implementation's own
        arithmetic (its forward pass, and the same network composed from its parts). Below float64
        the same two routes through torch_ref at that dtype measure how far rounding alone parts
        them on this input (rule 4 of :mod:`nnspec.verify.tolerances`). Returns both results."""
        tolerances.kind(output)
        observed, expected = route(self.impl), other(self.impl)
        pairs = self._structure(observed, expected, what)
        base_pairs = None
        if self.impl.dtype != "float64":
            bundled = self.impl.name == f"torch:{self.impl.device}:{self.impl.dtype}"
            base = (observed, expected) if bundled else self._baseline(lambda m: (route(m), other(m)))
            if base is not None:
                try:
                    base_pairs = [(b, e) for b, e, _ in self._structure(base[0], base[1], what)]
                except ClauseFailure:
                    self.records.pop()
        for i, (obs, exp, leaf) in enumerate(pairs):
            self._shape_and_dtype(obs, exp, leaf)
            if self.impl.dtype == "float64":
                verdict = tolerances.closed_form(obs, exp, output, "float64")
            else:
                base_obs, base_exp = base_pairs[i] if base_pairs is not None else (None, None)
                verdict = tolerances.between_routes(obs, exp, base_obs, base_exp, output, self.impl.dtype)
            self._judge(verdict, obs, exp, leaf)
        return observed, expected

    def _baseline(self, call: Callable[[Any], Any]) -> Any:
        """The same call through torch_ref at the implementation's dtype (None if it cannot run)."""
        device = baseline_device(self.impl.device, available=self.impl.available)
        try:
            return call(same_precision_baseline(self.impl.conventions, device, self.impl.dtype))
        except Exception:
            return None

    def equal(self, observed: Any, expected: Any, *, what: str) -> None:
        if _is_shape(observed) and _is_shape(expected):  # ck.equal(np.shape(out), (n, d), ...)
            held = tuple(observed) == tuple(expected)
            self.records.append(Record(what, held, reason="shape"))
            if not held:
                self._fail(what, str(tuple(observed)), str(tuple(expected)))
            return
        for obs, exp, label in self._structure(observed, expected, what):
            obs_a, exp_a = np.asarray(obs), np.asarray(exp)
            if obs_a.shape != exp_a.shape:
                self.records.append(Record(label, False, reason="shape"))
                self._fail(f"{label}: wrong shape", f"shape {obs_a.shape} ({summarise(obs)})", f"shape {exp_a.shape}")
            if obs_a.dtype.kind in "fc" or exp_a.dtype.kind in "fc":
                try:
                    differ = ~((obs_a == exp_a) | (np.isnan(obs_a.astype(float)) & np.isnan(exp_a.astype(float))))
                except (TypeError, ValueError):
                    differ = obs_a != exp_a
            else:
                differ = obs_a != exp_a
            differ = np.asarray(differ)
            n_bad = int(differ.sum())
            error = 0.0
            if n_bad and obs_a.dtype.kind in "biuf" and exp_a.dtype.kind in "biuf":
                error = float(np.nanmax(np.abs(obs_a.astype(float) - exp_a.astype(float))))
            rec = Record(label, n_bad == 0, error if n_bad else 0.0, 0.0, "exact equality")
            self.records.append(rec)
            if n_bad:
                where = tuple(int(i) for i in np.argwhere(differ)[0]) if differ.ndim else ()
                raise ClauseFailure(
                    label,
                    observed=summarise(obs),
                    expected=summarise(exp),
                    detail=f"exact equality required; {n_bad} element(s) differ, first at index {where}",
                )

    def that(self, condition: bool, *, what: str, observed: Any = "", expected: Any = "") -> None:
        held = bool(condition)
        self.records.append(Record(what, held, reason="predicate"))
        if not held:
            raise ClauseFailure(
                what,
                observed=observed if isinstance(observed, str) else summarise(observed),
                expected=expected if isinstance(expected, str) else summarise(expected),
            )

    def note(self, key: str, value: Any) -> None:
        self.notes[key] = value

    def offers(self, capability: str) -> bool:
        if self._capabilities is not None and capability not in self._capabilities:
            raise RuntimeError(
                f"ck.offers({capability!r}) in a clause that does not declare {capability!r}; name "
                "it in the clause's needs (as an alternative, 'a | b') or in its uses, so that "
                "applicability and the report know the part that depends on it"
            )
        return self.impl.has(capability)
