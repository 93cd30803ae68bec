"""Implementations under test: loading them by name, the NumPy boundary, and planted bugs.

An :class:`Implementation` is a facade over a *namespace* of capabilities (functions and network
classes named as in :mod:`numpy_ref`) that take and return NumPy arrays. The facade

- answers "which capabilities do you have" (``impl.capabilities``, ``impl.has("GPT.forward_cached")``),
- attributes every exception raised *inside* the implementation to it (:class:`ImplementationError`,
  a :class:`ClauseFailure` that is also an instance of the original exception type; ``sys.exit()``
  too), so a clause fails, naming what the implementation did, instead of erroring,
- fails the call, the same way, when its result is not of the kind the protocols give (a torch
  tensor, a list, ``None`` where a NumPy array is due) or it wrote into one of its array arguments,
- applies the declared :class:`Conventions` (mask polarity translated, configs adjusted),
- raises :class:`MissingCapability` for a name it does not offer (the clause is not applicable).

Names (``load_implementation``):

``numpy``
    the float64 oracle itself (:mod:`nnspec.reference.numpy_ref`).
``torch[:device[:dtype]]``
    the bundled :mod:`nnspec.reference.torch_ref` through the torch adapter. ``device`` is ``cpu``,
    ``cuda`` or ``mps``; ``dtype`` is ``float64``, ``float32`` (``fp32``), ``float16`` (``fp16``,
    ``half``) or ``bfloat16`` (``bf16``). Bare ``torch`` is ``torch:cpu:float32`` and ``torch:cuda``
    is ``torch:cuda:float32``: the precision people actually run. A device that is absent gives an
    implementation whose every clause is *not applicable*.
``package.module:object`` (or a module's name: ``mypkg.impl``, ``myimpl``)
    a third-party object: an :class:`Implementation`, a module or object whose public attributes are
    capabilities, or a zero-argument factory returning either. Optional attributes declare the rest:
    ``nnspec_name``, ``nnspec_dtype`` (default ``float64``; a name above, or a torch or NumPy dtype
    such as ``torch.bfloat16``), ``nnspec_device`` (``cpu``; a name such as ``cuda:1`` or a
    ``torch.device``; the same-precision baseline runs on CUDA for a CUDA device, else on the CPU),
    ``nnspec_conventions`` (a dict of :class:`Conventions` fields), ``nnspec_unavailable`` (why it
    cannot run here, e.g. its device is absent: every clause is then *not applicable*),
    ``__version__``. :mod:`nnspec.verify.torch_nn` is a worked example (PyTorch's own layers).
an entry-point name
    a package that registers ``name = "package.module:object"`` under the entry-point group
    ``nnspec.implementations`` is found by ``name``.
"""

from __future__ import annotations

import contextlib
import contextvars
import difflib
import functools
import importlib
import importlib.util
import inspect
import re
import traceback
import typing
from collections.abc import Callable, Iterable, Mapping
from importlib.metadata import entry_points
from importlib.metadata import version as package_version
from pathlib import Path
from typing import Any

import numpy as np
from nnspec.spec.clause import ClauseFailure, alternatives, concatenated_order

from .conventions import ConfiguredOracle, Conventions, apply_to_arguments
from .numerics import ieee_float32, subnormals
from .protocols import CAPABILITIES, CREATORS, NETWORK_CLASSES, SHARED, shared_capabilities

ENTRY_POINT_GROUP = "nnspec.implementations"

# Which implementation call is running (a time-out names it).
CURRENT_CALL: contextvars.ContextVar[str | None] = contextvars.ContextVar("nnspec_call", default=None)
# The session's np.seterr while a clause runs (the clause itself runs in NumPy's defaults): a
# third-party implementation is called in it. None outside run_clause.
SESSION_NUMPY_ERRORS: contextvars.ContextVar[dict[str, str] | None] = contextvars.ContextVar(
    "nnspec_numpy_errors", default=None
)
# Whether the session flushes subnormals to zero (the clause itself runs with them): a third-party
# implementation is called in the session's mode. False outside run_clause.
SESSION_FLUSHES_SUBNORMALS: contextvars.ContextVar[bool] = contextvars.ContextVar(
    "nnspec_flushes_subnormals", default=False
)
# The capabilities whose masks the adapter inverted during one clause run (a declared True = masked
# polarity), arguments and results alike: the runner says so beside a failure, also when the
# clause drew no mask (ATT-PADDING reads the implementation's own padding_mask, inverted back).
MASKS_TRANSLATED: contextvars.ContextVar[set[str] | None] = contextvars.ContextVar(
    "nnspec_masks_translated", default=None
)

DTYPES = ("float64", "float32", "float16", "bfloat16")
DTYPE_ALIASES = {
    "float64": "float64", "fp64": "float64", "f64": "float64", "double": "float64",
    "float32": "float32", "fp32": "float32", "f32": "float32", "float": "float32",
    "float16": "float16", "fp16": "float16", "f16": "float16", "half": "float16",
    "bfloat16": "bfloat16", "bf16": "bfloat16",
}
DEVICES = ("cpu", "cuda", "mps")

# Arguments that are masks (boolean, True = may attend after translation), by capability.
_MASK_ARGUMENTS: dict[str, tuple[tuple[str, int], ...]] = {
    "scaled_dot_product_attention": (("mask", 3),),
    "multi_head_attention": (("mask", 4),),
    "additive_attention": (("mask", 3),),
    "dot_attention": (("mask", 2),),
    "encoder_layer": (("mask", 3),),
    "decoder_layer": (("self_mask", 4), ("cross_mask", 5)),
    "Transformer.encode": (("src_mask", 1),),
    "Transformer.decode": (("src_mask", 2),),
}
_MASK_RESULTS = ("causal_mask", "padding_mask", "Vocabulary.pad")  # pad's (ids, mask): the mask
# Classes whose instances the facade hands out behind a NetworkProxy, so that their methods are
# the implementation's calls like any capability: an exception in one fails the clause as the
# implementation's, and an argument written into is caught (Vocabulary.pad extending the caller's
# lists, say).
PROXIED_CLASSES = (*NETWORK_CLASSES, "Vocabulary")


class UnknownImplementation(ValueError):
    """A name ``load_implementation`` cannot resolve; the message names the fix."""


class MissingCapability(AttributeError):
    """The implementation does not offer a capability: clauses that need it are not applicable."""

    def __init__(self, implementation: str, capability: str) -> None:
        self.implementation = implementation
        self.capability = capability
        super().__init__(f"implementation {implementation!r} does not offer {capability!r}")


class ImplementationError(ClauseFailure):
    """The implementation raised while a clause called it. ``original`` is what it raised."""

    original: BaseException


@functools.cache
def _error_class(original_type: type) -> type:
    """``ImplementationError`` that is also an ``original_type``, so a clause that expects the
    implementation to raise ``ValueError`` can still write ``except ValueError``."""
    if (
        issubclass(original_type, ImplementationError)
        or original_type in (Exception, AssertionError)
        or not issubclass(original_type, Exception)  # a SystemExit: an ordinary failure from here on
    ):
        return ImplementationError
    try:
        return type(f"ImplementationError[{original_type.__name__}]", (ImplementationError, original_type), {})
    except TypeError:  # incompatible layouts (OSError & co): the plain class still fails the clause
        return ImplementationError


def _preview(value: Any) -> str:
    if isinstance(value, np.ndarray):
        return f"array{value.shape} {value.dtype}"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {_preview(v)}" for k, v in list(value.items())[:6]) + "}"
    if isinstance(value, list | tuple) and len(value) > 4:
        return f"{type(value).__name__} of {len(value)}"
    text = repr(value)
    return text if len(text) < 60 else text[:57] + "..."


def _call_text(impl_name: str, call: str, args: tuple, kwargs: dict) -> str:
    arguments = ", ".join([_preview(a) for a in args] + [f"{k}={_preview(v)}" for k, v in kwargs.items()])
    return f"{impl_name}: {call}({arguments})"


def _implementation_error(
    impl_name: str, call: str, args: tuple, kwargs: dict, exc: BaseException, signature: inspect.Signature | None
):
    observed, expected = f"{type(exc).__name__}: {exc}", "a result (the clause only passes valid inputs)"
    if isinstance(exc, TypeError) and (theirs := _unfit(signature, args, kwargs)):
        ours = _reference_signature(call)
        observed += f" (its signature is {call}{theirs})"
        expected = (
            f"a capability called as numpy_ref's {call}{ours}" if ours else "a capability called as numpy_ref's"
        ) + " (reference/PARAMETERS.md); rename or reorder the arguments in the adapter"
    if "device-side assert triggered" in str(exc):
        observed += (
            " [a device-side assert: a kernel indexed out of range (F.embedding on CUDA does so for an id "
            "outside the vocabulary, where on the CPU it raises IndexError), and this process's CUDA "
            "context is now unusable: every later CUDA call in it fails, and the clauses that make them. "
            "Check such inputs in the adapter and raise, as the CPU does]"
        )
    err = _error_class(type(exc))(
        f"{_call_text(impl_name, call, args, kwargs)} raised", observed=observed, expected=expected
    )
    err.original = exc
    return err


def _plain(signature: inspect.Signature) -> str:
    """``(x, axis=-1, temperature=1.0)``: names and defaults, the part a caller must match."""
    empty = inspect.Parameter.empty
    parameters = [p.replace(annotation=empty) for p in signature.parameters.values()]
    return str(signature.replace(parameters=parameters, return_annotation=empty))


def _unfit(signature: inspect.Signature | None, args: tuple, kwargs: dict) -> str | None:
    """The implementation's signature, where nnspec's call does not fit it (a TypeError that is the
    adapter's naming, not the model's arithmetic); None where it fits or cannot be read."""
    if signature is None:
        return None
    try:
        signature.bind(*args, **kwargs)
    except TypeError:
        return _plain(signature)
    return None


@functools.cache
def _reference_signature(call: str) -> str | None:
    """numpy_ref's signature of a capability (``GPT.forward`` without its ``self``)."""
    from nnspec.reference import numpy_ref

    target: Any = numpy_ref
    for part in call.split("."):
        target = getattr(target, part, None)
    if target is None:
        return None
    signature = _signature(target.__init__ if isinstance(target, type) else target)
    if signature is None:
        return None
    parameters = list(signature.parameters.values())
    if parameters and parameters[0].name == "self" and (isinstance(target, type) or "." in call):
        signature = signature.replace(parameters=parameters[1:])
    return _plain(signature)


# What each capability returns, from the protocols' annotations (Array, tuple[Array, Array], dict...).
def _return_hints() -> dict[str, Any]:
    from . import protocols

    hints = {}
    for protocol in protocols.GROUPS.values():
        for name in protocols._members(protocol):
            try:
                hints[name] = typing.get_type_hints(getattr(protocol, name), vars(protocols))["return"]
            except (KeyError, NameError, TypeError):
                continue
    return hints


RETURNS: dict[str, Any] = _return_hints()


def _method_hints() -> dict[str, Any]:
    """What each method of a network class returns (``GPT.forward``: an array), from numpy_ref's
    classes: a network's results are checked at the boundary as a function's are, so that a
    ``forward`` returning None or a list fails as the implementation's, not as an error of the
    clause that reads it."""
    from nnspec.reference import numpy_ref, vocabulary

    hints = {}
    for class_name in PROXIED_CLASSES:
        cls = getattr(numpy_ref if hasattr(numpy_ref, class_name) else vocabulary, class_name)
        for name, member in vars(cls).items():
            if name.startswith("_") or not callable(member):
                continue
            try:
                hints[f"{class_name}.{name}"] = typing.get_type_hints(member)["return"]
            except (KeyError, NameError, TypeError):
                continue
    return hints


RETURNS.update(_method_hints())
_ARRAY_ATTRIBUTES = ("__array__", "__array_interface__", "__dlpack__", "__cuda_array_interface__")
_AS_NUMPY = ("arrays cross the boundary as NumPy: return np.asarray(x) for an array x of another library "
              "(a JAX array), t.detach().cpu().numpy() for a torch tensor t")


def _kind(value: Any) -> str:
    """What a result is, for a message: 'a torch.Tensor (dtype torch.float32, device cuda:0)'."""
    if value is None:
        return "None"
    if isinstance(value, np.ndarray):
        return f"an array of shape {value.shape}"
    cls = type(value)
    name = f"{cls.__module__.split('.')[0]}.{cls.__name__}" if cls.__module__ != "builtins" else cls.__name__
    facts = [f"{a} {getattr(value, a)}" for a in ("dtype", "device") if hasattr(value, a)]
    return f"a {name}" + (f" ({', '.join(facts)})" if facts else "")


def _foreign_array(value: Any, where: str, depth: int = 0) -> tuple[str, str, str] | None:
    """(where, what it is, what it should be) for the first array of another library in a result."""
    if value is None or isinstance(value, np.ndarray | np.generic | str | bytes | int | float | complex):
        return None
    if isinstance(value, tuple | list) and depth < 4:
        for i, item in enumerate(value[:256]):
            if found := _foreign_array(item, f"{where}[{i}]", depth + 1):
                return found
        return None
    if isinstance(value, dict) and depth < 4:
        for key, item in value.items():
            if found := _foreign_array(item, f"{where}[{key!r}]", depth + 1):
                return found
        return None
    if any(hasattr(value, attribute) for attribute in _ARRAY_ATTRIBUTES):
        return where, _kind(value), f"a NumPy array ({_AS_NUMPY})"
    return None


def _wrong_kind(value: Any, hint: Any, where: str) -> tuple[str, str, str] | None:
    """(where, what it is, what it should be) where ``value`` is not what the protocol returns."""
    if hint is np.ndarray:
        if isinstance(value, np.ndarray | np.generic) and np.asarray(value).dtype.kind not in "biuf":
            return where, f"{_kind(value)} of dtype {value.dtype}", "a real-valued NumPy array"
        if isinstance(value, np.ndarray | np.generic | int | float):
            return None
        return where, _kind(value), f"a NumPy array ({_AS_NUMPY})" if _foreign_array(value, where) else "a NumPy array"
    if typing.get_origin(hint) is tuple:
        items = typing.get_args(hint)
        if not isinstance(value, tuple | list) or len(value) != len(items):
            return where, _kind(value), f"a tuple of {len(items)}, as numpy_ref's"
        for i, (item, item_hint) in enumerate(zip(value, items, strict=True)):
            if found := _wrong_kind(item, item_hint, f"{where}[{i}]"):
                return found
        return None
    if (hint is dict or typing.get_origin(hint) is dict) and not isinstance(value, dict):
        return where, _kind(value), "a dict, as numpy_ref's"
    if (hint is list or typing.get_origin(hint) is list) and (
        value is None or isinstance(value, str | bytes | int | float | np.generic)
    ):  # token ids: a list, a tuple or an array of them all do
        return where, _kind(value), "a list, as numpy_ref's"
    if hint is float and not (
        isinstance(value, int | float | np.generic) or (isinstance(value, np.ndarray) and value.size == 1)
    ):
        return where, _kind(value), "a number, as numpy_ref's"
    return None


def _result_problem(call: str, value: Any) -> tuple[str, str, str] | None:
    """Whether a capability's result is of the kind numpy_ref's is (checked before any clause reads
    it, so a tensor or a list is the implementation's failure, not an error of the clause)."""
    hint = RETURNS.get(call)
    found = _wrong_kind(value, hint, "result") if hint is not None else None
    return found or _foreign_array(value, "result")


# Capabilities whose result has the shape of their first argument: elementwise maps and the
# normalisations along one axis. Checked at the boundary, so a wrong shape is reported as one (with
# both shapes) before a clause reads a sum or a mean of it and reports a derived number instead.
SAME_SHAPE_AS_INPUT = frozenset({
    "sigmoid", "sigmoid_prime", "relu", "relu_prime", "tanh", "tanh_prime", "gelu", "gelu_prime",
    "softmax", "layer_norm", "batch_norm",
})


def _shape_problem(call: str, args: tuple, kwargs: dict, result: Any) -> tuple[str, str, str] | None:
    """(where, observed, expected) when a SAME_SHAPE_AS_INPUT capability changed its input's shape."""
    if call not in SAME_SHAPE_AS_INPUT:
        return None
    x = args[0] if args else next(iter(kwargs.values()), None)
    if not isinstance(x, np.ndarray) or not isinstance(result, np.ndarray | np.generic):
        return None
    if np.shape(result) == x.shape:
        return None
    return (
        "returned the wrong shape",
        f"shape {np.shape(result)}",
        f"shape {x.shape}, the shape of its input ({call} maps each element, or each vector along "
        "one axis, to a value in the same place)",
    )


def _signature(target: Callable) -> inspect.Signature | None:
    try:
        return inspect.signature(target)
    except (TypeError, ValueError):
        return None


def _argument_nodes(signature: inspect.Signature | None, args: tuple, kwargs: dict) -> list[tuple[str, Any]]:
    """Every value among a call's arguments, by name: the arguments, and what their tuples, lists and
    dicts hold (to depth 4, which reaches every array of PARAMETERS.md's layouts), parents first."""
    try:
        if signature is None:
            raise TypeError
        named = dict(signature.bind(*args, **kwargs).arguments)
        # *args and **kwargs are bound to a tuple and a dict made afresh on every bind: their items
        # are the arguments (a wrapper's ``lambda *a, **k: f(*a, **k)`` rewrites nothing)
        for name, parameter in signature.parameters.items():
            if parameter.kind is inspect.Parameter.VAR_POSITIONAL and name in named:
                named.update({f"{name}[{i}]": a for i, a in enumerate(named.pop(name))})
            elif parameter.kind is inspect.Parameter.VAR_KEYWORD and name in named:
                named.update(named.pop(name))
    except TypeError:
        named = {**{f"argument {i}": a for i, a in enumerate(args)}, **kwargs}
    found: list[tuple[str, Any]] = []

    def walk(value: Any, label: str, depth: int) -> None:
        found.append((label, value))
        if isinstance(value, tuple | list) and depth < 4:
            for i, item in enumerate(value):
                walk(item, f"{label}[{i}]", depth + 1)
        elif isinstance(value, dict) and depth < 4:
            for key, item in value.items():
                walk(item, f"{label}[{key!r}]", depth + 1)

    for name, value in named.items():
        walk(value, name, 0)
    return found


def _array_arguments(nodes: list[tuple[str, Any]]) -> list[tuple[str, np.ndarray]]:
    """The NumPy arrays among a call's arguments (see :func:`_argument_nodes`)."""
    return [(label, value) for label, value in nodes if isinstance(value, np.ndarray)]


def _restructured(before: list[tuple[str, Any]], after: list[tuple[str, Any]]) -> tuple[str, str] | None:
    """(argument, how) where a container among the arguments had an entry replaced, removed or added
    (an adapter that converts the caller's parameter dict in place: no array changes, but the dict
    now holds tensors), or None. Compared by identity; the first change in argument order."""
    now = dict(after)
    then = dict(before)
    for label, value in before:
        if label not in now:
            return label, f"{label} was removed"
        if now[label] is not value:
            if _scalar(value) and _scalar(now[label]):  # "cache['length'] was replaced: 2 became 3"
                if type(value) is type(now[label]) and value == now[label]:
                    continue  # the same number written back: nothing a caller could notice
                return label, f"{label} was replaced: {value!r} became {now[label]!r}"
            return label, f"{label} was replaced: {_kind(value)} became {_kind(now[label])}"
    for label, value in after:
        if label not in then:
            return label, f"{label} was added ({value!r} )".replace(" )", ")") if _scalar(value) \
                else f"{label} was added ({_kind(value)})"
    return None


def _scalar(value: Any) -> bool:
    return isinstance(value, int | float | str | bool | np.generic)


def _written(before: np.ndarray, after: np.ndarray) -> str | None:
    """How an argument differs from its copy ``before`` taken ahead of the call (NaN equal to NaN),
    or None if it does not. A capability is a function of its arguments: one that writes into them
    (the max subtraction done in place, a layer norm of the residual stream in place) has changed
    what its caller holds, even where its own result is right."""
    if before.shape != after.shape or before.dtype != after.dtype:
        return f"it went from {before.dtype}{list(before.shape)} to {after.dtype}{list(after.shape)}"
    differ = np.asarray(before != after)
    if before.dtype.kind in "fc":
        differ &= ~(np.isnan(before) & np.isnan(after))
    if not differ.any():
        return None
    where = tuple(int(i) for i in np.argwhere(differ)[0]) if differ.ndim else ()
    return (
        f"{int(differ.sum())} of {differ.size} element(s) changed, the first at index {where}: "
        f"{before[where]!r} -> {after[where]!r}"
    )


def _rebuilt(value: tuple | list, items: list[Any]) -> tuple | list:
    """``value``'s sequence type holding ``items``: a namedtuple (``Attention(output, weights)``)
    takes them as positional arguments, not as one iterable."""
    return type(value)(*items) if hasattr(value, "_fields") else type(value)(items)


def _snapshot(value: Any, depth: int = 0) -> Any:
    """A result's arrays copied as they are when the call returns. An implementation that writes
    each result into one preallocated buffer (CUDA graphs' static outputs, ``out=`` kernels)
    returns the same array every time; a clause comparing two calls would compare that buffer with
    itself and pass, whatever the model computes."""
    if isinstance(value, np.ndarray):
        return value.copy()
    if isinstance(value, tuple | list) and depth < 4:
        return _rebuilt(value, [_snapshot(v, depth + 1) for v in value])
    if isinstance(value, dict) and depth < 4:
        return {k: _snapshot(v, depth + 1) for k, v in value.items()}
    return value


def _flip_masks(value: Any, call: str) -> Any:
    """Invert boolean masks (``True = may attend`` <-> ``True = masked``) that ``call`` takes or
    returns, and note the call in :data:`MASKS_TRANSLATED`."""
    if isinstance(value, np.ndarray) and value.dtype == bool:
        translated = MASKS_TRANSLATED.get()
        if translated is not None:
            translated.add(call)
        return ~value
    if isinstance(value, tuple | list):
        return _rebuilt(value, [_flip_masks(v, call) for v in value])
    return value


def _interleaved(table: Any) -> Any:
    """A sinusoid table declared 'concatenated' (every sine column, then every cosine column) in the
    pinned interleaved order, sin at even and cos at odd columns: translated on the way out, as a
    mask polarity is, so the PE clauses read the documents' formula in either layout."""
    table = np.asarray(table)
    if table.ndim < 1:
        return table
    d = table.shape[-1]
    interleaved = np.empty_like(table)
    interleaved[..., concatenated_order(d)] = table
    return interleaved


def _flip_mask_arguments(name: str, args: tuple, kwargs: dict) -> tuple[tuple, dict]:
    args = list(args)
    known = _MASK_ARGUMENTS.get(name, ())
    for arg_name, position in known:
        if arg_name in kwargs:
            kwargs = {**kwargs, arg_name: _flip_masks(kwargs[arg_name], name)}
        elif len(args) > position:
            args[position] = _flip_masks(args[position], name)
    # network methods: every other keyword ending in "mask" (tgt_mask); once each, or a mask
    # passed as mask= reached a "True = masked" implementation in nnspec's polarity
    done = {arg_name for arg_name, _ in known}
    kwargs = {k: _flip_masks(v, name) if k.endswith("mask") and k not in done else v for k, v in kwargs.items()}
    return tuple(args), kwargs


class NetworkProxy:
    """A network instance seen through the facade: every method call is attributed to the
    implementation and translated by its conventions; other attributes pass through."""

    def __init__(self, impl: Implementation, class_name: str, network: Any) -> None:
        self._impl = impl
        self._class_name = class_name
        self._network = network

    def __getattr__(self, name: str) -> Any:
        try:
            target = getattr(self._network, name)
        except AttributeError:
            raise MissingCapability(self._impl.name, f"{self._class_name}.{name}") from None
        if not callable(target):
            return target
        return self._impl._wrap(f"{self._class_name}.{name}", target)

    def __len__(self) -> int:  # a Vocabulary's number of tokens
        return len(self._network)

    def __repr__(self) -> str:
        return f"<{self._impl.name} {self._class_name}>"


class Implementation:
    """An implementation under test, at the NumPy boundary. See the module docstring.

    ``namespace`` maps capability names to callables that already take and return NumPy arrays
    (an adapter's job). ``available=False`` (with ``unavailable_reason``) marks an implementation
    that cannot run here, e.g. ``torch:cuda:*`` without a GPU: every clause is not applicable.
    """

    def __init__(
        self,
        name: str,
        namespace: Mapping[str, Any],
        *,
        dtype: str = "float64",
        device: str = "cpu",
        version: str = "",
        conventions: Conventions | dict[str, Any] | None = None,
        available: bool = True,
        unavailable_reason: str = "",
        framework: str = "numpy",
    ) -> None:
        if dtype not in DTYPES:
            raise ValueError(f"dtype {dtype!r} is not one of {DTYPES}")
        self.name = name
        self.patched_from: str | None = None
        # Capabilities that are someone else's code inside a bundled implementation (patched()'s
        # overrides): like a third-party implementation's, they run in the session's np.seterr.
        self.overridden: frozenset[str] = frozenset()
        # The name a third-party object was loaded by, where it declares another (``nnspec_name``):
        # failures reproduce with the name that loads again. Never set on a shared object.
        self.loaded_as: str | None = None
        # The third-party object (module, object, factory) it was made from: one object named twice
        # (by an entry point and by its import path) is one implementation
        self.wrapped: Any = None
        self.dtype = dtype
        self.device = device
        self.version = version
        self.framework = framework
        self.conventions = Conventions.coerce(conventions)
        self.available = available
        self.unavailable_reason = unavailable_reason
        self._namespace = {k: v for k, v in namespace.items() if v is not None}
        # What a network offered as a factory builds, by capability (see ``has``): found once
        self._built: dict[str, Any] = {}
        # The float formats its results came in before an adapter converted them to NumPy (filled
        # by torch_module; empty where the results arrive as NumPy and show their own dtype)
        self.result_dtypes: set[str] = set()

    # -- what it offers ------------------------------------------------------------------------
    @property
    def capabilities(self) -> frozenset[str]:
        return frozenset(self._namespace)

    def has(self, capability: str) -> bool:
        """``"softmax"``, or ``"GPT.forward_cached"`` for a method of a network class."""
        head, _, method = capability.partition(".")
        if head not in self._namespace:
            return False
        if not method:
            return True
        target = self._namespace[head]
        probe = _has_method_probe(target)
        if probe is not None:
            return bool(probe(method))
        if head not in NETWORK_CLASSES:
            return hasattr(target, method)
        answers_per_instance = inspect.getattr_static(target, "nnspec_has_method", None) is not None
        if inspect.isclass(target) and offers_method(target, method) and not answers_per_instance:
            return True
        # A factory (``def MLP(self, config, params): return MyNet(...)``), or a class that hands
        # its methods on from an inner model (``__getattr__``): the methods are those of what it
        # builds. Judged by the factory alone, every method clause was not applicable, and a run
        # of a model with a backpropagation bug passed by checking nothing.
        built = self._what_it_builds(head)
        if built is None:
            return not inspect.isclass(target)
        probe = getattr(built, "nnspec_has_method", None)  # an instance's own answer
        return bool(probe(method)) if callable(probe) else offers_method(built, method)

    def _what_it_builds(self, head: str) -> Any:
        """One tiny network a factory built from a preset and the parameters of PARAMETERS.md, under
        the declared conventions (not its return annotation: ``-> nn.Module`` names a base class);
        None where it cannot build one: then each method of a factory counts as offered, and the
        clauses that use it say what building failed on, as the implementation's error."""
        if head not in self._built:
            from nnspec.reference import config as configs
            from nnspec.reference.numpy_ref import init_params

            preset = {"MLP": configs.MLPConfig(layer_sizes=(2, 3, 2)), "Transformer": configs.preset(
                "transformer_tiny"), "GPT": configs.preset("gpt_tiny"), "Seq2Seq": configs.preset("seq2seq_tiny")}
            config = self.conventions.apply(preset[head])
            try:
                built = getattr(self, head)(config, init_params(config))
                while isinstance(built, (NetworkProxy, TorchNetwork)):  # the adapters' wrappers
                    built = built._network
            except Exception:
                built = None
            self._built[head] = built
        return self._built[head]

    def missing(self, needs: tuple[str, ...] | list[str]) -> list[str]:
        """The entries of a clause's ``needs`` this implementation meets in no way (an entry of
        alternatives, ``"a | b"``, is met by either)."""
        return [n for n in needs if not any(self.has(name) for name in alternatives(n))]

    @functools.cached_property
    def oracle(self) -> ConfiguredOracle:
        """:mod:`numpy_ref` configured with this implementation's conventions."""
        return ConfiguredOracle(self.conventions)

    def describe(self) -> str:
        """One line for headers: name, version, device, dtype and any non-default conventions."""
        parts = [self.name]
        if self.version:
            parts.append(f"version {self.version}")
        parts += [f"device {self.device}", f"dtype {self.dtype}"]
        if not self.available:
            parts.append(f"UNAVAILABLE: {self.unavailable_reason}")
        diff = self.conventions.differences()
        if diff:
            parts.append("conventions " + ", ".join(f"{k}={v}" for k, v in diff.items()))
        return ", ".join(parts)

    # -- calling it ----------------------------------------------------------------------------
    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        try:
            target = self._namespace[name]
        except KeyError:
            raise MissingCapability(self.name, name) from None
        return self._wrap(name, target)

    def __dir__(self) -> list[str]:
        return sorted(set(super().__dir__()) | set(self._namespace))

    def _wrap(self, call: str, target: Callable) -> Callable:
        """``target`` with conventions applied and exceptions attributed to the implementation."""
        impl = self
        flip = impl.conventions.mask_true_means == "masked"
        # the bundled implementations are nnspec's yardstick; the rest is the code under test
        third_party = impl.framework == "third-party" or call.split(".")[0] in impl.overridden
        # torch_ref behind the torch adapter cannot write into its NumPy arguments or hand back a
        # buffer it reuses: to_torch and to_numpy copy both ways. Checking it would copy every
        # array twice more on every call.
        checked = third_party or impl.framework != "torch"
        signature = _signature(target)  # once per capability, not per call: it names the arguments

        @functools.wraps(target)
        def call_implementation(*args: Any, **kwargs: Any) -> Any:
            args, kwargs = apply_to_arguments(impl.conventions, args, kwargs)
            if flip:
                args, kwargs = _flip_mask_arguments(call, args, kwargs)
            outer = CURRENT_CALL.get()
            CURRENT_CALL.set(f"{impl.name}'s {call}")
            nodes = _argument_nodes(signature, args, kwargs) if checked else []
            inputs = _array_arguments(nodes)
            copies = [a.copy() for _, a in inputs]
            # a list argument cannot be put back as arrays are: name the call as it was made, before
            # it ran (only for lists passed as such: a parameter dict's list of blocks is not copied)
            as_called = (_call_text(impl.name, call, args, kwargs)
                         if checked and any(isinstance(v, list) for v in (*args, *kwargs.values())) else None)
            session_errors = SESSION_NUMPY_ERRORS.get() if third_party else None
            flush = third_party and SESSION_FLUSHES_SUBNORMALS.get()
            try:
                with (
                    np.errstate(**session_errors) if session_errors else contextlib.nullcontext(),
                    subnormals(flush=True) if flush else contextlib.nullcontext(),
                ):
                    result = target(*args, **kwargs)
            except (ClauseFailure, MissingCapability):
                raise
            # sys.exit() in a model's code (an argument parser reading pytest's argv) is no Exception
            # but the implementation's failure all the same; Ctrl-C and the time limit go through
            except (Exception, SystemExit) as exc:
                raise _implementation_error(impl.name, call, args, kwargs, exc, signature) from exc
            finally:
                CURRENT_CALL.set(outer)
            changed = next(
                ((label, how) for (label, array), copy in zip(inputs, copies, strict=True)
                 if (how := _written(copy, array)) is not None),
                None,
            )
            if changed is None and checked:
                rewritten = _restructured(nodes, _argument_nodes(signature, args, kwargs))
                changed = None if rewritten is None else (rewritten[0].partition("[")[0], rewritten[1])
            if changed is not None:
                label, how = changed
                # Put the caller's arrays back: the failure shows the input the call was given
                # (the clause's drawn values are these very arrays), not what was written into it.
                for (_, array), copy in zip(inputs, copies, strict=True):
                    if array.shape == copy.shape and array.flags.writeable:
                        np.copyto(array, copy, casting="unsafe")
                raise ClauseFailure(
                    f"{as_called or _call_text(impl.name, call, args, kwargs)} modified its argument {label} in place",
                    observed=how,
                    expected="its arguments left as they were (a capability is a function of them: "
                    "copy before writing)",
                )
            if call not in PROXIED_CLASSES and (
                problem := _result_problem(call, result) or _shape_problem(call, args, kwargs, result)
            ):
                where, observed, expected = problem
                raise ClauseFailure(
                    f"{_call_text(impl.name, call, args, kwargs)} {where}", observed=observed, expected=expected
                )
            if third_party and call not in PROXIED_CLASSES and call != "Vocabulary.from_sentences":
                result = _snapshot(result)  # nnspec's own code returns fresh arrays
            if flip and call in _MASK_RESULTS:
                result = _flip_masks(result, call)
            if call == "positional_encoding" and impl.conventions.sinusoid_layout == "concatenated":
                result = _interleaved(result)
            if call in PROXIED_CLASSES:
                return NetworkProxy(impl, call, result)
            if call == "Vocabulary.from_sentences":  # a vocabulary built by the class's own method
                return NetworkProxy(impl, "Vocabulary", result)
            return result

        return call_implementation

    def __repr__(self) -> str:
        return f"<Implementation {self.describe()}>"


# ------------------------------------------------------------------------------------------------
# The torch adapter
# ------------------------------------------------------------------------------------------------


def torch_dtype(dtype: str) -> Any:
    import torch

    return getattr(torch, dtype)


def round_to_dtype(x: Any, dtype: str) -> Any:
    """``x`` rounded to ``dtype`` and back to float64 (through torch for float16/bfloat16, which
    NumPy lacks or rounds differently). Finite values beyond the dtype's range saturate at its
    largest finite value (a finite draw stays finite: float16 overflows at 65520). Integers,
    booleans and non-arrays pass unchanged."""
    if dtype == "float64":
        return x
    if isinstance(x, float):
        return float(round_to_dtype(np.asarray(x, dtype=np.float64), dtype))
    if not isinstance(x, np.ndarray) or x.dtype.kind != "f":
        return x
    import torch
    from nnspec.reference.torch_ref import to_torch

    t = to_torch(x, dtype=torch.float64)  # the project's one conversion (a read-only view is copied)
    biggest = torch.finfo(torch_dtype(dtype)).max
    finite = torch.isfinite(t)
    t = torch.where(finite, t.clamp(-biggest, biggest), t)
    return t.to(torch_dtype(dtype)).to(torch.float64).numpy()


def round_tree(value: Any, dtype: str) -> Any:
    """:func:`round_to_dtype` through dicts, lists and tuples (parameter dicts)."""
    if isinstance(value, dict):
        return {k: round_tree(v, dtype) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return _rebuilt(value, [round_tree(v, dtype) for v in value])
    if isinstance(value, np.ndarray):
        return round_to_dtype(value, dtype)
    return value


def to_framework(value: Any, device: str, dtype: str) -> Any:
    """NumPy -> torch for an adapter's arguments: float arrays to ``dtype`` on ``device``, bool and
    int arrays keep their kind (:func:`nnspec.reference.torch_ref.to_torch`)."""
    from nnspec.reference.torch_ref import to_torch

    return to_torch(value, device=device, dtype=torch_dtype(dtype))


def to_numpy(value: Any) -> Any:
    """torch -> NumPy for an adapter's results (:func:`nnspec.reference.torch_ref.to_numpy`)."""
    from nnspec.reference.torch_ref import to_numpy as tensors_to_numpy

    return tensors_to_numpy(value)


class TorchNetwork:
    """A torch network instance behind the NumPy boundary: parameters arrive as a NumPy dict and are
    converted once, on construction; every method converts its arguments and its results, and runs
    in IEEE float32 whatever the session set (:func:`nnspec.verify.numerics.ieee_float32`)."""

    def __init__(
        self, cls: type, device: str, dtype: str, config: Any, params: Any, *a: Any, pin: bool = True,
        seen: set[str] | None = None, **k: Any,
    ):
        self._device, self._dtype, self._pin, self._seen = device, dtype, pin, seen
        with ieee_float32() if pin else contextlib.nullcontext():
            self._network = cls(config, to_framework(params, device, dtype), *a, **k)

    def __getattr__(self, name: str) -> Any:
        target = getattr(self._network, name)
        if name == "params" or not callable(target):
            return to_numpy(target)
        device, dtype = self._device, self._dtype

        pin, seen = self._pin, self._seen

        @functools.wraps(target)
        def method(*args: Any, **kwargs: Any) -> Any:
            with ieee_float32() if pin else contextlib.nullcontext():
                result = target(*to_framework(args, device, dtype), **to_framework(kwargs, device, dtype))
            return to_numpy(_noting_float_dtypes(result, seen))

        return method


def _noting_float_dtypes(result: Any, seen: set[str] | None) -> Any:
    """``result``, its tensors' floating-point formats added to ``seen`` (user code: they are lost
    in the conversion to NumPy, and a bfloat16 result under a float32 declaration is the usual
    autocast slip that a failure should name)."""
    if seen is not None:
        import torch

        stack = [result]
        while stack:
            value = stack.pop()
            if isinstance(value, torch.Tensor):
                if value.is_floating_point():
                    seen.add(str(value.dtype).removeprefix("torch."))
            elif isinstance(value, (list, tuple)):
                stack.extend(value)
            elif isinstance(value, dict):
                stack.extend(value.values())
    return result


def _torch_network_class(
    cls: Callable, device: str, dtype: str, *, pin: bool = True, seen: set[str] | None = None
) -> Callable:
    """A torch network class, or a factory ``(config, params) -> network``, behind the NumPy
    boundary: parameters converted once, every method's arguments and results on each call."""

    def construct(config: Any, params: Any, *args: Any, **kwargs: Any) -> TorchNetwork:
        return TorchNetwork(cls, device, dtype, config, params, *args, pin=pin, seen=seen, **kwargs)

    construct.__name__ = getattr(cls, "__name__", "network")
    construct.__doc__ = cls.__doc__
    probe = _has_method_probe(cls)
    if probe is not None:
        construct.nnspec_has_method = probe  # type: ignore[attr-defined]
    elif inspect.isclass(cls) and inspect.getattr_static(cls, "nnspec_has_method", None) is None:
        construct.nnspec_has_method = functools.partial(offers_method, cls)  # type: ignore[attr-defined]
    # else a factory, or a class that answers per instance: the engine asks one it builds
    return construct


def offers_method(owner: Any, method: str) -> bool:
    """Whether ``owner`` (a network class or instance) has ``method`` as nnspec means it.

    Every ``torch.nn.Module`` has ``train(mode=True)``, the switch to training mode, which is not
    ``Transformer.train(src, tgt, epochs=..., eta=..., seed=...)``: a model built on nn.Module
    that offers no training of its own offers no ``train`` (nor an unimplemented ``forward``).
    """
    if not hasattr(owner, method):
        return False
    cls = owner if inspect.isclass(owner) else type(owner)
    for klass in inspect.getmro(cls):
        if method in vars(klass):
            return not (klass.__name__ == "Module" and klass.__module__ == "torch.nn.modules.module")
    return True  # an instance attribute, or handed on by __getattr__


def _has_method_probe(target: Any) -> Callable[[str], Any] | None:
    """``target.nnspec_has_method`` where it can answer without an instance: a factory's
    attribute, a class's staticmethod or classmethod (an instance method needs an instance)."""
    if inspect.isclass(target):
        own = inspect.getattr_static(target, "nnspec_has_method", None)
        return target.nnspec_has_method if isinstance(own, (staticmethod, classmethod)) else None
    probe = getattr(target, "nnspec_has_method", None)
    return probe if callable(probe) else None


# Capabilities whose result is itself a function of arrays (activation(name)): it crosses the
# NumPy boundary as well, on the implementation's device and dtype.
RETURNS_FUNCTION = frozenset({"activation"})


def _torch_function(
    name: str, fn: Callable, device: str, dtype: str, *, pin: bool = True, seen: set[str] | None = None
) -> Callable:
    """``fn`` (tensors in and out) at the NumPy boundary. ``pin``: nnspec's own torch_ref, run in
    IEEE float32 and without autograd; a user's torch code runs as the session set it."""
    import torch

    creator = name in CREATORS
    try:
        parameters = inspect.signature(fn).parameters
    except (TypeError, ValueError):
        parameters = {}

    @functools.wraps(fn)
    def call(*args: Any, **kwargs: Any) -> Any:
        args = to_framework(args, device, dtype)
        kwargs = to_framework(kwargs, device, dtype)
        if creator:
            if "device" in parameters:
                kwargs.setdefault("device", device)
            if "dtype" in parameters and name != "causal_mask":  # masks stay boolean
                kwargs.setdefault("dtype", torch_dtype(dtype))
        if not pin:
            result = fn(*args, **kwargs)
        else:
            with torch.no_grad(), ieee_float32():
                result = fn(*args, **kwargs)
        if name in RETURNS_FUNCTION:  # activation(name): the function it hands back takes tensors too
            return _torch_function(f"{name}()", result, device, dtype, pin=pin, seen=seen)
        return to_numpy(_noting_float_dtypes(result, seen))

    return call


def _device_available(device: str) -> tuple[bool, str]:
    import torch

    if device == "cpu":
        return True, ""
    if device == "cuda":
        return (True, "") if torch.cuda.is_available() else (False, "no CUDA device is available")
    if device == "mps":
        ok = getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available()
        return (True, "") if ok else (False, "no MPS device is available")
    return False, f"unknown device {device!r}"


def _torch_namespace(
    module: Any, device: str, dtype: str, *, pin: bool, seen: set[str] | None = None
) -> dict[str, Any]:
    """A module's torch capabilities (torch_ref's names), each behind the NumPy boundary; the
    float formats of their results go into ``seen`` where given."""
    namespace: dict[str, Any] = {}
    for name in CAPABILITIES:
        target = getattr(module, name, None)
        if target is None or name in SHARED:
            continue
        if name in NETWORK_CLASSES and callable(target):  # a class, or a factory of networks
            namespace[name] = _torch_network_class(target, device, dtype, pin=pin, seen=seen)
        elif callable(target):
            namespace[name] = _torch_function(name, target, device, dtype, pin=pin, seen=seen)
    return namespace


def torch_implementation(device: str = "cpu", dtype: str = "float32") -> Implementation:
    """The bundled torch_ref behind the NumPy boundary.

    Every call runs in IEEE float32 (:func:`nnspec.verify.numerics.ieee_float32`): ``torch:*:float32``
    is nnspec's float32 reference and the same-precision baseline of the tolerance rule, so a
    session's TF32 or bfloat16-matmul switches must not change what it computes."""
    import torch
    from nnspec.reference import torch_ref

    available, reason = _device_available(device)
    namespace = _torch_namespace(torch_ref, device, dtype, pin=True)
    for name, target in shared_capabilities().items():
        namespace.setdefault(name, target)
    # Methods that only torch_ref has (GPT.forward_cached) come along with their class.
    return Implementation(
        f"torch:{device}:{dtype}",
        namespace,
        dtype=dtype,
        device=device,
        version=f"torch {torch.__version__}",
        available=available,
        unavailable_reason=reason,
        framework="torch",
    )


def torch_module(
    module: Any, *, name: str, device: str = "cpu", dtype: Any = "float32",
    conventions: Conventions | dict[str, Any] | None = None,
) -> Implementation:
    """Your torch code, written with torch_ref's names and signatures (tensors in, tensors out),
    as an implementation: the adapter converts NumPy inputs to tensors on ``device`` in ``dtype`` and
    the results back, as it does for torch_ref. Unlike torch_ref it is the code under test: it runs
    in the session's precision switches and autograd mode, and low precision is judged against the
    bundled torch_ref's baseline, never against itself. Only what ``module`` offers is a capability.
    Return it from a module attribute or factory that ``--nnspec-impl`` names::

        IMPL = nnspec.verify.torch_module(mymodel.functional, name="mymodel", device="cuda", dtype="bfloat16")

    ``conventions`` declares the choices the code made (a :class:`Conventions` or a dict of its
    fields); left out, the module's own ``nnspec_conventions`` where it has one, else the
    references' defaults.
    """
    dtype = _declared_dtype(dtype, name, what="dtype")  # torch.bfloat16 as well as "bf16"
    result_dtypes: set[str] = set()
    namespace = _torch_namespace(module, device, dtype, pin=False, seen=result_dtypes)
    if not namespace:
        raise UnknownImplementation(
            f"implementation {name!r}: {module!r} offers none of the capabilities "
            f"({', '.join(CAPABILITIES[:5])}, ...); name its functions as torch_ref does"
        )
    available, reason = _device_available(device.partition(":")[0])
    version = getattr(module, "__version__", "")
    if conventions is None:  # what the module declares, as for an implementation named by path
        conventions = getattr(module, "nnspec_conventions", None)
    impl = Implementation(
        name, namespace, dtype=dtype, device=device, version=str(version), conventions=conventions,
        framework="third-party", available=available, unavailable_reason=reason,
    )
    impl.result_dtypes = result_dtypes
    return impl


def numpy_implementation() -> Implementation:
    """The oracle as an implementation (it must pass every clause: the catalogue's self-check)."""
    from nnspec.reference import numpy_ref

    namespace = {name: getattr(numpy_ref, name) for name in CAPABILITIES if hasattr(numpy_ref, name)}
    for name, target in shared_capabilities().items():
        namespace.setdefault(name, target)
    return Implementation(
        "numpy", namespace, dtype="float64", device="cpu", version=f"numpy {np.__version__}"
    )


# ------------------------------------------------------------------------------------------------
# Names -> implementations
# ------------------------------------------------------------------------------------------------

SYNTAX_HELP = (
    "use 'numpy', 'torch[:device[:dtype]]' (e.g. torch:cpu:float32, torch:cuda:bfloat16), "
    "'package.module:object' (or a module's name), or the name of an installed entry point in the group "
    f"'{ENTRY_POINT_GROUP}'"
)


def _parse_torch(name: str) -> tuple[str, str]:
    parts = name.split(":")
    device = parts[1] if len(parts) > 1 and parts[1] else "cpu"
    dtype = parts[2] if len(parts) > 2 and parts[2] else "float32"
    if len(parts) > 3:
        raise UnknownImplementation(f"implementation {name!r}: too many ':' parts; {SYNTAX_HELP}")
    if device in DTYPE_ALIASES and len(parts) == 2:  # torch:float64 -> cpu
        device, dtype = "cpu", device
    if device not in DEVICES:
        raise UnknownImplementation(
            f"implementation {name!r}: unknown device {device!r}; choose one of {list(DEVICES)} "
            "(pick a GPU with CUDA_VISIBLE_DEVICES)"
        )
    if dtype.isdigit():
        raise UnknownImplementation(
            f"implementation {name!r}: {dtype!r} is a device index, where the dtype goes "
            f"(torch:device:dtype); torch:{device} runs on the first visible one: choose it with "
            f"CUDA_VISIBLE_DEVICES={dtype} nnspec verify torch:{device}:float32"
        )
    if dtype not in DTYPE_ALIASES:
        raise UnknownImplementation(
            f"implementation {name!r}: unknown dtype {dtype!r}; choose one of {list(DTYPES)}"
        )
    return device, DTYPE_ALIASES[dtype]


def _declared_dtype(value: Any, name: str, what: str = "nnspec_dtype") -> str:
    """``nnspec_dtype`` in any spelling a framework has: ``"fp16"``, ``torch.float16``,
    ``np.float16``, ``np.dtype("float16")``, ``"torch.float16"``. One nnspec cannot read is refused,
    never taken for float64: a half-precision model judged by float64's tolerances fails every
    clause, and none for the reason it reports."""
    text = value if isinstance(value, str) else None
    if text is None:
        try:
            text = str(value) if type(value).__module__.startswith("torch") else np.dtype(value).name
        except (TypeError, ValueError):
            text = None
    dtype = DTYPE_ALIASES.get(text.strip().lower().removeprefix("torch.")) if isinstance(text, str) else None
    if dtype is None:
        raise UnknownImplementation(
            f"implementation {name!r}: {what} = {value!r}: unknown dtype {value!r}, not a floating-point "
            f"precision nnspec checks; choose one of {list(DTYPES)} (or a torch/NumPy dtype of one)"
        )
    return dtype


def _declared_device(value: Any, name: str) -> str:
    """``nnspec_device`` as a name: ``"cpu"``, ``"cuda:1"``, or a ``torch.device``."""
    if type(value).__module__.startswith("torch") and hasattr(value, "type"):
        value = str(value)  # torch.device("cuda", 1) -> "cuda:1"
    if not isinstance(value, str) or not value.strip():
        raise UnknownImplementation(
            f"implementation {name!r}: nnspec_device = {value!r} is not a device; "
            "declare a device name such as 'cpu' or 'cuda:0' (or a torch.device)"
        )
    return value.strip()


def _instance_methods(cls: type) -> list[str]:
    """The capabilities of a class that are methods of its instances: plain functions whose first
    parameter is ``self`` (a class used as a namespace of functions, ``def relu(z)``, has none)."""

    def takes_self(attribute: Any) -> bool:
        if not inspect.isfunction(attribute):  # staticmethod, classmethod, a network class
            return False
        signature = _signature(attribute)
        return signature is not None and next(iter(signature.parameters), None) == "self"

    return [c for c in CAPABILITIES if c not in NETWORK_CLASSES and takes_self(inspect.getattr_static(cls, c, None))]


def from_object(obj: Any, *, name: str) -> Implementation:
    """Wrap a third-party object (a module, an instance, a class or a factory; see the module
    docstring) as an implementation, as a name would load it: for ``run_clause`` on an object
    built in Python. Factories are called first."""
    if isinstance(obj, Implementation):
        return obj
    given = obj
    if callable(obj) and not inspect.ismodule(obj) and not any(hasattr(obj, c) for c in CAPABILITIES):
        attr = name.rpartition(":")[2].rpartition(".")[2]
        if attr in CAPABILITIES and inspect.isroutine(obj):
            # `mymod:softmax` names one capability, which would be taken for a factory and called
            raise UnknownImplementation(
                f"implementation {name!r}: {attr} is a capability, not an implementation; name the "
                f"module or object that offers it ({name.rpartition(':')[0] or name}), and nnspec "
                f"finds {attr} in it (to check only {attr}, offer only {attr}: see 'Offer what you have')"
            )
        obj = obj()
        if isinstance(obj, Implementation):
            return obj
    if inspect.isclass(obj) and (methods := _instance_methods(obj)):
        try:
            obj = obj()  # its capabilities need an instance: a class is a factory of one
        except TypeError as exc:
            raise UnknownImplementation(
                f"implementation {name!r}: {obj.__name__} is a class whose capabilities "
                f"({', '.join(methods[:3])}) are instance methods, and it cannot be built without "
                f"arguments ({exc}); name an instance (IMPL = {obj.__name__}(...)) or a factory"
            ) from None
    namespace = {c: getattr(obj, c) for c in CAPABILITIES if callable(getattr(obj, c, None))}
    if not namespace:
        inside = _offering(obj) if inspect.ismodule(obj) else []
        # a module reached through an entry point is named by its import path, not the entry's name
        path = obj.__name__ if inspect.ismodule(obj) else name
        entry = (f", or point the entry point at the object: {name} = \"{path}:{inside[0]}\""
                 if inside and path != name else "")
        fix = (
            f"objects in it do: name one, e.g. {path}:{inside[0]} (it has {', '.join(inside[:8])}){entry}"
            if inside else
            "expose functions named as in numpy_ref or return an nnspec.verify.Implementation"
        )
        raise UnknownImplementation(
            f"implementation {name!r}: {obj!r} offers none of the capabilities "
            f"({', '.join(CAPABILITIES[:5])}, ...); {fix}"
        )
    # A reason it cannot run here (its device is absent, say): its clauses are then not applicable.
    unavailable = getattr(obj, "nnspec_unavailable", "")
    version = getattr(obj, "__version__", "")
    if not version and inspect.ismodule(obj):
        try:
            version = package_version(obj.__name__.split(".")[0])
        except Exception:
            version = ""
    impl = Implementation(
        getattr(obj, "nnspec_name", name),
        namespace,
        dtype=_declared_dtype(getattr(obj, "nnspec_dtype", "float64"), name),
        device=_declared_device(getattr(obj, "nnspec_device", "cpu"), name),
        version=str(version),
        conventions=getattr(obj, "nnspec_conventions", None),
        framework="third-party",
        available=not unavailable,
        unavailable_reason=str(unavailable),
    )
    if impl.name != name:  # a display name of its own: failures reproduce with the one that loads
        impl.loaded_as = name
    impl.wrapped = given
    return impl


def _raised_inside(exc: BaseException, module_name: str) -> str:
    """`` at FILE:LINE``: where an ImportError was raised inside the module's own files (not by the
    import system failing to find it), or ""."""
    try:
        found = importlib.util.find_spec(module_name)
    except (ImportError, ValueError):
        return ""
    if found is None or not found.origin:
        return ""
    package = str(Path(found.origin).parent)
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if f.filename.startswith(package)]
    return f" at {frames[-1].filename}:{frames[-1].lineno}" if frames else ""


def _import_object(spec: str) -> Any:
    module_name, _, attr = spec.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        missing = getattr(exc, "name", None) or ""
        inside = _raised_inside(exc, module_name)
        if missing and module_name != missing and not module_name.startswith(missing + "."):
            fix = f"{module_name} imports {missing}, which is not installed here"
        elif inside:  # found, and its own code raised (a shared library that fails to load, say)
            fix = f"the module was found, and its own code raised this{inside}"
        else:
            fix = (
                f"run from the directory that holds {module_name.split('.')[0]} (`nnspec verify` and "
                "`python -m pytest` import from the current directory, plain `pytest` does not), "
                "install its package (pip install -e), add its directory to PYTHONPATH, or fix the "
                "import path"
            )
        raise UnknownImplementation(
            f"implementation {spec!r}: cannot import module {module_name!r} "
            f"({type(exc).__name__}: {exc}); {fix}"
        ) from exc
    obj: Any = module
    for part in attr.split(".") if attr else ():
        try:
            obj = getattr(obj, part)
        except AttributeError as exc:
            names = _defined_names(module)
            close = difflib.get_close_matches(attr, names, n=1)
            hint = (f"did you mean {module_name}:{close[0]}?" if close
                    else f"available: {', '.join(names[:12])}" if names
                    else "it defines no object that could be one (a module, an object or a factory)")
            own = str(exc)  # a module __getattr__'s own advice, when it gives more than the default
            if "; " in own and obj is module:
                hint = own.split("; ", 1)[1]
            raise UnknownImplementation(
                f"implementation {spec!r}: module {module_name!r} has no attribute {attr!r}; {hint}"
            ) from None
    return obj


def by_device_and_dtype(
    module_name: str, module_globals: dict[str, Any], make: Callable[[str, str], Any], *,
    dtypes: Iterable[str], devices: Iterable[str],
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """A module's ``__getattr__`` and ``__dir__`` (PEP 562) that make its implementations by name:
    ``DTYPE`` on the CPU (``float32``) or ``DEVICE_DTYPE`` (``cuda_bfloat16``), so that an import
    path names both (``nnspec verify mypkg.adapter:cuda_bfloat16``). ``make(device, dtype)`` builds
    one; a wrong name says which exist::

        __getattr__, __dir__ = by_device_and_dtype(__name__, globals(), MyAdapter, dtypes=..., devices=...)
    """
    dtypes, devices = tuple(dtypes), tuple(devices)
    names = [f"{d + '_' if d != 'cpu' else ''}{t}" for d in devices for t in dtypes]

    def module_getattr(name: str) -> Any:
        device, _, dtype = name.rpartition("_")
        if dtype in dtypes and device in ("", *devices):
            return make(device or "cpu", dtype)
        raise AttributeError(
            f"module {module_name!r} has no attribute {name!r}; name DTYPE or DEVICE_DTYPE, e.g. float32 "
            f"or cuda_bfloat16 (dtypes: {', '.join(dtypes)}; devices: {', '.join(devices)})"
        )

    def module_dir() -> list[str]:
        return sorted({*module_globals, *names})

    return module_getattr, module_dir


def _defined_names(module: Any) -> list[str]:
    """The public names a module defines or makes (``__dir__``), without what it imported: no
    modules, no functions or classes of other modules, no typing constructs or constants."""
    names = []
    for n in dir(module):
        if n.startswith("_"):
            continue
        try:
            v = getattr(module, n)
        except AttributeError:
            continue
        imported = (inspect.isfunction(v) or inspect.isclass(v)) and v.__module__ != module.__name__
        typing_like = type(v).__module__ in ("typing", "__future__", "typing_extensions")
        if inspect.ismodule(v) or imported or typing_like or isinstance(v, (int, float, str, bytes, type(None))):
            continue
        names.append(n)
    return names


def _offering(module: Any) -> list[str]:
    """Names in ``module`` of objects that offer capabilities: what to name instead of the module."""
    found = []
    for n in _defined_names(module):
        v = getattr(module, n)
        if isinstance(v, Implementation) or (
            not inspect.isroutine(v) and any(hasattr(v, c) for c in CAPABILITIES)
        ):
            found.append(n)
    return sorted(found, key=lambda n: inspect.isclass(getattr(module, n)))  # ready objects first


def _importable(module_name: str) -> bool:
    try:
        return importlib.util.find_spec(module_name) is not None
    except (ImportError, ValueError):
        return False


def _entry_point(name: str) -> Any | None:
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        if ep.name == name:
            return ep
    return None


_CACHE: dict[str, Implementation] = {}


def load_implementation(name: str | Implementation) -> Implementation:
    """Resolve an implementation name (see the module docstring); cached per name."""
    if isinstance(name, Implementation):
        return name
    if not isinstance(name, str):
        raise TypeError(
            f"an implementation is a name or an Implementation, not a {type(name).__name__}: wrap the "
            f"object with nnspec.verify.from_object(obj, name=...) (or torch_module(model, name=...) for "
            "torch code), or pass 'package.module:object'"
        )
    name = name.strip()
    if name in _CACHE:
        return _CACHE[name]
    try:
        impl = _resolve(name)
    except SystemExit as exc:  # not an Exception: it would end the run, or pytest with INTERNALERROR
        raise UnknownImplementation(
            f"implementation {name!r}: importing or building it called sys.exit({exc.code!r}): a script "
            "that parses the command line (here nnspec's or pytest's) or does its work at import time; "
            "put that under `if __name__ == '__main__':`, or name a module without such side effects"
        ) from None
    _CACHE[name] = impl
    return impl


def _resolve(name: str) -> Implementation:
    module_part, colon, attr = name.partition(":")
    if module_part.endswith(".py") or "/" in module_part or "\\" in module_part:
        # a file path: the natural guess, but implementations are named as Python imports them
        module = Path(module_part).name.removesuffix(".py")
        folder = str(Path(module_part).parent)
        where = "" if folder == "." else f" from {folder} (cd {folder}, or add it to PYTHONPATH)"
        raise UnknownImplementation(
            f"implementation {name!r}: a file path; name the module as Python imports it: "
            f"{module}{colon}{attr}{where}"
        )
    if name == "numpy":
        impl = numpy_implementation()
    elif name == "torch" or name.startswith("torch:"):
        impl = torch_implementation(*_parse_torch(name))
    elif (ep := _entry_point(name)) is not None:
        try:
            obj = ep.load()
        except Exception as exc:
            raise UnknownImplementation(
                f"implementation {name!r}: the entry point {ep.value!r} failed to load "
                f"({type(exc).__name__}: {exc}); reinstall the package that provides it"
            ) from exc
        impl = from_object(obj, name=name)
    elif re.fullmatch(r"[A-Za-z_][\w.]*(:[A-Za-z_][\w.]*)?", name) and (":" in name or "." in name):
        impl = from_object(_import_object(name), name=name)
    elif name.isidentifier() and _importable(name):  # myimpl.py in the current directory
        impl = from_object(_import_object(name), name=name)
    else:
        known = sorted(ep.name for ep in entry_points(group=ENTRY_POINT_GROUP))
        extra = f" (installed entry points: {', '.join(known)})" if known else ""
        spellings = ["numpy", "torch", *(f"torch:{d}" for d in ("cpu", "cuda", "mps")), *known]
        close = difflib.get_close_matches(name, spellings, n=1)
        hint = f"did you mean {close[0]!r}? " if close else ""
        raise UnknownImplementation(f"unknown implementation {name!r}; {hint}{SYNTAX_HELP}{extra}")
    return impl


def _without_method(network: Any, method: str) -> type:
    """A network class (or an adapter's factory of one) whose class and instances lack ``method``:
    a model without ``train``, say. The engine asks a factory through ``nnspec_has_method``."""
    inner_has = _has_method_probe(network) or functools.partial(offers_method, network)

    class Without:
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            self._network = network(*args, **kwargs)

        def __getattr__(self, name: str) -> Any:
            if name == method:
                raise AttributeError(f"{name} (removed by patched(without=...))")
            return getattr(self._network, name)

        @staticmethod
        def nnspec_has_method(name: str) -> bool:
            return name != method and bool(inner_has(name))

    Without.__name__ = Without.__qualname__ = getattr(network, "__name__", "Network")
    return Without


def patched(
    base: str | Implementation, *, name: str, without: Iterable[str] = (), **overrides: Any
) -> Implementation:
    """``base`` with some capabilities replaced (how tests plant bugs) or removed (value ``None``).

    Overrides work at the NumPy boundary, whatever the base: they take and return NumPy arrays,
    like every capability the facade exposes::

        bad = patched("torch:cpu:float64", name="softmax-no-shift",
                      softmax=lambda x, axis=-1, temperature=1.0: np.exp(x) / np.exp(x).sum(axis, keepdims=True))

    ``without`` removes capabilities, methods of a network class among them: ``patched("numpy",
    name="kernel", without=["multi_head_attention", "MLP.train"])`` is the oracle as code that
    offers part of what it does (how the partial checks of clauses with alternatives are tested).
    """
    base = load_implementation(base)
    without = list(without)
    unknown = [k for k in [*overrides, *(w.partition(".")[0] for w in without)] if k not in CAPABILITIES]
    if unknown:
        raise ValueError(f"patched(): {unknown} are not capabilities; known: {list(CAPABILITIES)}")
    namespace = {**base._namespace, **overrides}
    for capability in without:
        head, _, method = capability.partition(".")
        if not method:
            namespace[head] = None
        elif namespace.get(head) is not None:
            namespace[head] = _without_method(namespace[head], method)
    impl = Implementation(
        name,
        namespace,
        dtype=base.dtype,
        device=base.device,
        version=base.version,
        conventions=base.conventions,
        available=base.available,
        unavailable_reason=base.unavailable_reason,
        framework=base.framework,
    )
    # A patched implementation has no name a command line can load: failures reproduce in Python.
    impl.patched_from = base.loaded_as or base.name  # the name that loads the base again
    impl.overridden = base.overridden | {k for k, v in overrides.items() if v is not None}
    return impl
