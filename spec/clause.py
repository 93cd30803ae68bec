"""What a clause is, and the small interface a clause's property is written against.

A clause is one normative sentence of the documents made executable: an id (``ATT-MASK-ZERO``), the
sentence, where it comes from, the capabilities it needs, and a *property*: a function
``prop(impl, ck)`` that draws inputs through ``ck``, calls the implementation ``impl`` and states
what must hold through ``ck``'s assertions. The engine (:mod:`nnspec.verify`) runs the property under
Hypothesis, turns assertion failures into readable reports and decides applicability.

Clause modules only *declare*; they never import the engine. That keeps the catalogue readable as
a document and lets any runner (the pytest plugin, the CLI, a notebook) execute it.

Writing a property
------------------
``impl`` offers the public names of :mod:`nnspec.reference.numpy_ref` that the implementation has
(``impl.softmax(x, axis=-1)``, ``impl.scaled_dot_product_attention(q, k, v, mask)``,
``impl.MLP(config, params)``...). Arrays go in and come out as NumPy ``float64``; masks are boolean
with **True = may attend**, whatever the implementation's own convention (its adapter translates).

A clause ``needs`` capabilities: each entry is one name (``"softmax"``, ``"GPT.forward_cached"``)
or alternatives (``"scaled_dot_product_attention | multi_head_attention"``: either will do). A
clause whose entries are all met is applicable; with alternatives it checks the parts the
implementation offers, each part guarded by ``ck.offers(name)``, so an attention kernel that has
``scaled_dot_product_attention`` alone, or a model that is a ``GPT`` alone, is still held to the
oracle. ``uses`` names capabilities a property calls where they are offered and does without
otherwise (MHA-ONE-HEAD compares with the implementation's own single-head attention if it has
one). Whatever a run could not check is named in its report row.

``ck`` is a :class:`Check`:

- ``ck.draw(strategy, label)``: draw an input (labelled, shrunk by Hypothesis on failure).
- ``ck.input(x)``: ``x`` rounded to the implementation's dtype, still float64. Feed the *same*
  rounded values to the implementation and to any closed form, so input rounding is not blamed.
- ``ck.oracle``: :mod:`numpy_ref`, configured with the implementation's declared conventions.
- ``ck.close(observed, expected, *, output, what, condition=1)``: ``observed`` (from ``impl``) is
  close to an independent ``expected`` (a closed form, a document's number, a metamorphic
  partner), within the tolerance the policy gives for the implementation's dtype and the output
  kind ``output``; ``condition`` (a number, or an array per element) is the checked computation's
  condition number where it is large, which widens the absolute tolerance in proportion.
- ``ck.close_to_oracle(name, *args, output, **kwargs)``: the differential check: calls
  ``impl.<name>`` and the oracle, and for low precision a same-precision baseline too.
- ``ck.equal(observed, expected, *, what)``: exact equality (masked weights are exactly 0).
- ``ck.that(condition, *, what, observed, expected)``: any other predicate.
- ``ck.note(key, value)``: record a measurement (error, count) in the report row.
- ``ck.offers(name)``: whether the implementation has capability ``name``; a part of the clause
  that needs it runs only then (an alternative of ``needs``, or one of ``uses``), and one it lacks
  is named in the report row as not checked.
- ``must_refuse(ck, call, *, what, expected)``: ``call()`` must raise (an id outside the
  vocabulary, an unknown activation name); ``ids_outside(n)`` draws such ids.

Every assertion raises :class:`ClauseFailure` carrying what was observed and what was expected.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

import numpy as np

Level = Literal["MUST", "SHOULD", "INFORMATIVE"]
Cost = Literal["cheap", "network", "training"]

# The titles to cite, from ../shared/seeds/README.md.
NEURAL_NETWORKS = "Neural Networks (notes on 3Blue1Brown)"
DEEP_LEARNING = "Deep Learning (notes on 3Blue1Brown, chapters 1-6)"
VIDEO_NOTES = "Neural Networks and Transformers (3Blue1Brown video wjZofJX0v4M)"
LECTURE_NOTES = "Transformer lecture notes (handwritten)"
RECAP = "Deep learning recap to the Transformer (video summaries)"

VASWANI_2017 = "Vaswani et al. 2017, Attention Is All You Need"
BAHDANAU_2015 = "Bahdanau, Cho and Bengio 2015, Neural Machine Translation by Jointly Learning to Align and Translate"
LUONG_2015 = "Luong, Pham and Manning 2015, Effective Approaches to Attention-based Neural Machine Translation"
SUTSKEVER_2014 = "Sutskever, Vinyals and Le 2014, Sequence to Sequence Learning with Neural Networks"
BA_2016 = "Ba, Kiros and Hinton 2016, Layer Normalization"
IOFFE_2015 = "Ioffe and Szegedy 2015, Batch Normalization"
RUMELHART_1986 = "Rumelhart, Hinton and Williams 1986, Learning representations by back-propagating errors"
BROWN_2020 = "Brown et al. 2020, Language Models are Few-Shot Learners"
HOCHREITER_1997 = "Hochreiter and Schmidhuber 1997, Long Short-Term Memory"
HENDRYCKS_2016 = "Hendrycks and Gimpel 2016, Gaussian Error Linear Units (GELUs)"


@dataclass(frozen=True)
class Source:
    """Where a clause comes from: a document of ``shared/seeds`` and its section, plus the paper."""

    document: str
    section: str
    paper: str | None = None

    def __str__(self) -> str:
        cited = f"{self.document}, {self.section}"
        return f"{cited} ({self.paper})" if self.paper else cited


class DeclaredOtherwise(Exception):
    """The implementation's declared conventions rule out what the clause checks (a network
    without positions, asked of one that declares learned ones): the clause is not applicable to
    it, never failed, and the message says which declaration and what the clause needed."""


class ClauseFailure(AssertionError):
    """A property did not hold. ``observed``/``expected`` are short human-readable strings."""

    def __init__(
        self,
        what: str,
        *,
        observed: str,
        expected: str,
        error: float | None = None,
        tolerance: float | None = None,
        detail: str = "",
    ) -> None:
        self.what = what
        self.observed = observed
        self.expected = expected
        self.error = error
        self.tolerance = tolerance
        self.detail = detail
        message = f"{what}: observed {observed}, but should be {expected}"
        if error is not None and tolerance is not None:
            message += f" (error {error:.6g} > tolerance {tolerance:.6g})"
        if detail:
            message += f"\n{detail}"
        super().__init__(message)

    def with_detail(self, line: str) -> ClauseFailure:
        """The same failure with one more line of detail (a clause's diagnosis of what it saw)."""
        return ClauseFailure(
            self.what, observed=self.observed, expected=self.expected, error=self.error,
            tolerance=self.tolerance, detail=f"{self.detail}\n{line}".lstrip("\n"),
        )


class Check(Protocol):
    """The interface a property uses; implemented by the engine."""

    oracle: Any

    def draw(self, strategy: Any, label: str) -> Any: ...

    def input(self, x: np.ndarray) -> np.ndarray: ...

    def show(self, label: str, value: Any) -> Any: ...

    def close(
        self, observed: Any, expected: Any, *, output: str = "default", what: str, condition: Any = 1.0
    ) -> None: ...

    def close_to_oracle(
        self, name: Any, *args: Any, output: str = "default", what: str | None = None, condition: Any = 1.0,
        **kwargs: Any,
    ) -> Any: ...

    def close_to(
        self, route: Any, expected: Any, *, output: str = "default", what: str, condition: Any = 1.0,
        against: str = "expected",
    ) -> Any: ...

    def close_routes(
        self, route: Any, other: Any, *, output: str = "default", what: str
    ) -> tuple[Any, Any]: ...

    def equal(self, observed: Any, expected: Any, *, what: str) -> None: ...

    def that(self, condition: bool, *, what: str, observed: Any = "", expected: Any = "") -> None: ...

    def note(self, key: str, value: Any) -> None: ...

    def offers(self, capability: str) -> bool: ...


Property = Callable[[Any, Check], None]


def as_declared(ck: Check, config: Any, *, needed: dict[str, Any] | None = None) -> Any:
    """``config`` as both sides build it: with the implementation's declared conventions applied
    (pre-LN, an eps, positions, biases, embedding scale, activation), as the engine hands it to the
    implementation's constructors and the oracle's. A clause's own formulas must read this one, not
    the draw. ``needed``: fields the clause's check cannot do without (a network without positions
    to be permutation-equivariant); a declaration that overrides one makes the clause not
    applicable to the implementation (:class:`DeclaredOtherwise`), never failed."""
    conventions = getattr(ck.oracle, "conventions", None)
    declared = conventions.apply(config) if conventions is not None else config
    for name, value in (needed or {}).items():
        if getattr(declared, name) != value:
            raise DeclaredOtherwise(
                f"it declares {name}={getattr(declared, name)!r}, and this clause's check needs a network "
                f"with {name}={value!r}"
            )
    return declared


def sinusoid_layout(owner: Any) -> str:
    """The sin/cos column layout ``owner`` declares (a Check's oracle, or an implementation): the
    pinned 'interleaved' unless it declared 'concatenated'."""
    return getattr(getattr(owner, "conventions", None), "sinusoid_layout", "interleaved")


def concatenated_order(d_model: int) -> list[int]:
    """Column i of a concatenated sinusoid table is column ``order[i]`` of the interleaved one:
    every sine column (even), then every cosine column (odd); for an odd d_model, one sine more."""
    return [*range(0, d_model, 2), *range(1, d_model, 2)]


def in_layout(table: np.ndarray, layout: str) -> np.ndarray:
    """An interleaved sinusoid table (sin at even, cos at odd columns) in ``layout``."""
    return table if layout == "interleaved" else table[..., concatenated_order(table.shape[-1])]


def must_refuse(ck: Check, call: Callable[[], Any], *, what: str, expected: str) -> None:
    """``call()`` MUST raise: any error counts as a refusal, and a result is the failure, shown
    as observed beside ``expected`` (what refusing means here). The engine's time limit is no
    ``Exception``, so a hang still fails as a hang."""
    try:
        result = call()
    except Exception:
        return
    ck.that(False, what=what, observed=result, expected=expected)


def must_be_boolean_mask(ck: Check, mask: Any, *, what: str, meaning: str) -> None:
    """A mask an implementation returns MUST be boolean (PARAMETERS.md). Values are checked
    elsewhere, after a cast; this is the dtype: a float 0/1 mask (``jnp.tri``, ``torch.tril`` of
    ones) that a caller adds to the scores moves them by 1 instead of hiding them, and a declared
    True = masked polarity translates boolean arrays only."""
    mask = np.asarray(mask)
    ck.that(mask.dtype == np.bool_ or not mask.size, what=what, observed=str(mask.dtype),
            expected=f"bool (PARAMETERS.md: masks are boolean, {meaning}; a float or int 0/1 array is "
            "the wrong dtype, not a mask)")


def ids_outside(n: int) -> Any:
    """A strategy of integer ids outside ``[0, n)``: negative (a wrap-around index) or ``>= n``."""
    import hypothesis.strategies as st

    return st.one_of(st.integers(-2 * n - 100, -1), st.integers(n, 2 * n + 100))


def alternatives(need: str) -> tuple[str, ...]:
    """The capabilities one entry of a clause's ``needs`` names: ``"softmax"`` is one, ``"a | b"``
    is two, either of which will do."""
    return tuple(part.strip() for part in need.split("|"))


@dataclass(frozen=True)
class Clause:
    """One executable clause of the specification."""

    id: str
    statement: str
    source: Source
    needs: tuple[str, ...]
    prop: Property
    topic: str
    level: Level = "MUST"
    cost: Cost = "cheap"
    errata: tuple[str, ...] = ()
    # False for clauses with nothing to draw (a document's worked table): run once, not under Hypothesis.
    hypothesis: bool = True
    note: str = ""
    tags: tuple[str, ...] = field(default=())
    # Capabilities the property calls where the implementation offers them, and does without where
    # it does not (never needed for applicability).
    uses: tuple[str, ...] = ()

    @property
    def capabilities(self) -> tuple[str, ...]:
        """Every capability the property may call: each alternative of ``needs``, then ``uses``."""
        names = [name for need in self.needs for name in alternatives(need)] + list(self.uses)
        return tuple(dict.fromkeys(names))

    @property
    def optional(self) -> tuple[str, ...]:
        """The capabilities the property can do without: the members of alternatives and ``uses``.
        An implementation that lacks some of them has those parts of the clause unchecked."""
        names = [name for need in self.needs if "|" in need for name in alternatives(need)]
        return tuple(dict.fromkeys([*names, *self.uses]))

    def ways_to_offer_part(self) -> list[tuple[str, ...]]:
        """Each way an implementation can offer part of this clause and still run it, as the
        capabilities it lacks: one member of an entry of alternatives kept (the others lacking),
        or one of ``uses`` lacking. nnspec's tests and its false-positive sweep run every one."""
        ways = []
        for need in self.needs:
            members = alternatives(need)
            if len(members) > 1:
                ways += [tuple(m for m in members if m != kept) for kept in members]
        return ways + [(used,) for used in self.uses]

    @property
    def title(self) -> str:
        """What the test id and the report row show: ``ATT-MASK-ZERO``."""
        return self.id


REGISTRY: dict[str, Clause] = {}


def clause(
    id: str,
    statement: str,
    *,
    source: Source,
    needs: tuple[str, ...] | list[str],
    topic: str,
    level: Level = "MUST",
    cost: Cost = "cheap",
    errata: tuple[str, ...] | list[str] = (),
    hypothesis: bool = True,
    note: str = "",
    uses: tuple[str, ...] | list[str] = (),
) -> Callable[[Property], Property]:
    """Register ``prop`` as the property of clause ``id``; returns ``prop`` unchanged."""
    for need in [*needs, *uses]:
        names = alternatives(need)
        if not all(names) or (need in uses and len(names) > 1):
            raise ValueError(
                f"clause {id!r}: bad capability {need!r}; write one name, or in needs alternatives "
                "as 'a | b'"
            )

    def register(prop: Property) -> Property:
        if id in REGISTRY:
            raise ValueError(f"clause id {id!r} is declared twice ({REGISTRY[id].prop!r} and {prop!r})")
        if not statement.strip().endswith("."):
            raise ValueError(f"clause {id!r}: the statement should be one full sentence ending in '.'")
        REGISTRY[id] = Clause(
            id=id,
            statement=statement,
            source=source,
            needs=tuple(needs),
            prop=prop,
            topic=topic,
            level=level,
            cost=cost,
            errata=tuple(errata),
            hypothesis=hypothesis,
            note=note,
            uses=tuple(uses),
        )
        return prop

    return register


@dataclass(frozen=True)
class Informative:
    """A claim of the documents that cannot be checked as stated; listed, never silently dropped."""

    id: str
    statement: str
    source: Source
    topic: str
    reason: str


INFORMATIVE: dict[str, Informative] = {}


def informative(id: str, statement: str, *, source: Source, topic: str, reason: str) -> None:
    INFORMATIVE[id] = Informative(id, statement, source, topic, reason)
