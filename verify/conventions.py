"""Conventions an implementation declares, and the oracle configured to match them.

The documents leave several choices open (which mask value means "may attend", how a causal mask is
aligned when there are fewer queries than keys, pre- or post-LN, LayerNorm's eps, exact or tanh
GELU, interleaved or concatenated sinusoids, biases). ``reference/PARAMETERS.md`` pins one answer
for the references; another implementation may make a different, equally valid choice. It declares
it in a :class:`Conventions`, which travels with the implementation:

- *translated* conventions are hidden by the adapter: a mask polarity of ``"masked"`` (True = blocked)
  is inverted on the way in and out, so clauses always speak "True = may attend"; a
  ``positional_encoding`` table declared concatenated comes back interleaved, so the PE clauses
  read the documents' formula;
- *matched* conventions configure the oracle (:class:`ConfiguredOracle`): its ``causal_mask`` uses
  the declared alignment, ``layer_norm`` the declared eps, ``gelu`` the declared variant, its
  networks add sinusoids in the declared layout, and network configs get the declared norm
  placement, activation, positional style, bias and embedding scale. The implementation's own
  network constructors receive the same adjusted config, so both sides always build the same
  network. Clauses that build a config read it through ``spec.clause.as_declared``, so their own
  formulas see the network the two sides build.

A field left at ``None`` means "follows the argument or the config" (the references' behaviour).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from nnspec.spec.clause import in_layout

MaskPolarity = Literal["attend", "masked"]
CausalAlignment = Literal["bottom_right", "top_left"]
SinusoidLayout = Literal["interleaved", "concatenated"]

# Config fields a declared convention may pin (TransformerConfig and GPTConfig have them all).
CONFIG_CONVENTIONS = (
    "norm_placement", "activation", "positional", "bias", "layer_norm_eps", "scale_embeddings",
)
# The oracle's functions (besides the network classes) that take a config: called with the
# declared choices applied, as the implementation's are.
_TAKES_CONFIG = ("init_params", "encoder_layer", "decoder_layer")


@dataclass(frozen=True)
class Conventions:
    """The open choices an implementation made. Defaults are the references' (PARAMETERS.md)."""

    mask_true_means: MaskPolarity = "attend"
    causal_alignment: CausalAlignment = "bottom_right"
    sinusoid_layout: SinusoidLayout = "interleaved"
    gelu_approximate: Literal["none", "tanh"] = "none"
    layer_norm_eps: float | None = None
    norm_placement: Literal["post", "pre"] | None = None
    activation: str | None = None
    positional: Literal["sinusoidal", "learned", "none"] | None = None
    bias: bool | None = None
    # token embeddings times sqrt(d_model) (Vaswani et al. 3.4) or not (GPT-2)
    scale_embeddings: bool | None = None

    def __post_init__(self) -> None:
        allowed = {
            "mask_true_means": ("attend", "masked"),
            "causal_alignment": ("bottom_right", "top_left"),
            "sinusoid_layout": ("interleaved", "concatenated"),
            "gelu_approximate": ("none", "tanh"),
            "norm_placement": (None, "post", "pre"),
            "positional": (None, "sinusoidal", "learned", "none"),
            "activation": (None, "sigmoid", "relu", "tanh", "gelu", "gelu_tanh"),
        }
        for name, values in allowed.items():
            if getattr(self, name) not in values:
                raise ValueError(
                    f"convention {name}={getattr(self, name)!r} is not one of {list(values)}"
                )
        # a string would pass into every config as is ("false" is true, "1e-6" no number)
        for name in ("bias", "scale_embeddings"):
            value = getattr(self, name)
            if value is not None and not isinstance(value, bool | np.bool_):
                raise ValueError(f"convention {name}={value!r} is not True, False or None (a bool, not a string)")
        eps = self.layer_norm_eps
        if eps is not None and (isinstance(eps, bool) or not isinstance(eps, int | float | np.floating)
                                or not 0 < eps < float("inf")):
            raise ValueError(f"convention layer_norm_eps={eps!r} is not a positive number (such as 1e-6) or None")

    @classmethod
    def coerce(cls, value: Conventions | dict[str, Any] | None) -> Conventions:
        """Accept a :class:`Conventions`, a plain dict of its fields (what a third party declares)
        or None."""
        if value is None:
            return cls()
        if isinstance(value, Conventions):
            return value
        unknown = set(value) - {f.name for f in dataclasses.fields(cls)}
        if unknown:
            raise ValueError(
                f"unknown convention(s) {sorted(unknown)}; known: "
                f"{[f.name for f in dataclasses.fields(cls)]}"
            )
        return cls(**value)

    def differences(self) -> dict[str, Any]:
        """The declared choices that differ from the references' (for headers and reports)."""
        default = Conventions()
        return {
            f.name: getattr(self, f.name)
            for f in dataclasses.fields(self)
            if getattr(self, f.name) != getattr(default, f.name)
        }

    def apply(self, config: Any) -> Any:
        """``config`` with every pinned field replaced by the declared choice (other objects as is)."""
        if not dataclasses.is_dataclass(config) or isinstance(config, type):
            return config
        names = {f.name for f in dataclasses.fields(config)}
        changes = {
            name: getattr(self, name)
            for name in CONFIG_CONVENTIONS
            if name in names and getattr(self, name) is not None and name != "activation"
        }
        # An activation convention pins the transformer blocks' activation, not an MLP's choice.
        if self.activation is not None and "activation" in names and "norm_placement" in names:
            changes["activation"] = self.activation
        return dataclasses.replace(config, **changes) if changes else config


def apply_to_arguments(conventions: Conventions, args: tuple, kwargs: dict) -> tuple[tuple, dict]:
    """Apply ``conventions`` to every config dataclass among a call's arguments."""
    return (
        tuple(conventions.apply(a) for a in args),
        {k: conventions.apply(v) for k, v in kwargs.items()},
    )


# Networks that add sinusoidal positions, and their position tables' names when learned.
_POSITIONED = {"Transformer": ("W_P_src", "W_P_tgt"), "GPT": ("W_P",)}


def _concatenated_positions(module: Any, name: str, args: tuple, kwargs: dict) -> tuple[tuple, dict]:
    """A network whose sinusoids are concatenated (every sine column, then every cosine column):
    the same network with that table as its learned positions, so the oracle's code is unchanged."""
    args = list(args)
    config = kwargs["config"] if "config" in kwargs else args[0]
    if getattr(config, "positional", None) != "sinusoidal":
        return tuple(args), kwargs
    table = in_layout(module.positional_encoding(config.context, config.d_model), "concatenated")
    learned = dataclasses.replace(config, positional="learned")
    params = kwargs["params"] if "params" in kwargs else args[1]
    params = {**params, **{table_name: table for table_name in _POSITIONED[name]}}
    for key, value, position in (("config", learned, 0), ("params", params, 1)):
        if key in kwargs:
            kwargs = {**kwargs, key: value}
        else:
            args[position] = value
    return tuple(args), kwargs


class ConfiguredOracle:
    """:mod:`numpy_ref` as seen through an implementation's declared conventions.

    Attribute access falls through to ``numpy_ref``; the few names a convention changes are
    overridden here. ``oracle.raw`` is the unconfigured module (for clauses about the pinned
    convention itself).
    """

    def __init__(self, conventions: Conventions, module: Any | None = None) -> None:
        if module is None:
            from nnspec.reference import numpy_ref as module
        self.raw = module
        self.conventions = conventions

    def __getattr__(self, name: str) -> Any:
        try:
            target = getattr(self.raw, name)
        except AttributeError:
            from .protocols import shared_capabilities

            shared = shared_capabilities()
            if name not in shared:
                raise
            return shared[name]
        # (a class of numpy_ref; or a network of an Implementation wrapped as the same-precision
        # baseline, whose constructors are functions)
        if isinstance(target, type) or name in _TAKES_CONFIG or name in _POSITIONED:
            conventions = self.conventions

            def construct(*args: Any, **kwargs: Any) -> Any:
                args, kwargs = apply_to_arguments(conventions, args, kwargs)
                if name in _POSITIONED and conventions.sinusoid_layout == "concatenated":
                    args, kwargs = _concatenated_positions(self.raw, name, args, kwargs)
                return target(*args, **kwargs)

            construct.__name__ = name
            construct.__doc__ = target.__doc__
            return construct
        return target

    def __dir__(self) -> list[str]:
        return sorted(set(dir(self.raw)) | {"raw", "conventions"})

    def causal_mask(self, n_queries: int, n_keys: int) -> np.ndarray:
        """Bottom-right aligned (the pin) unless the implementation declared top-left:
        query ``i`` may see keys ``j <= i + offset`` with offset ``n_keys - n_queries`` or 0."""
        if self.conventions.causal_alignment == "bottom_right":
            return self.raw.causal_mask(n_queries, n_keys)
        i = np.arange(n_queries)[:, None]
        j = np.arange(n_keys)[None, :]
        # top-left: j <= i
        return j <= i

    def layer_norm(self, x: np.ndarray, gamma: np.ndarray, beta: np.ndarray, eps: float | None = None):
        if eps is None:
            eps = self.conventions.layer_norm_eps if self.conventions.layer_norm_eps is not None else 1e-5
        return self.raw.layer_norm(x, gamma, beta, eps=eps)

    def gelu(self, z: np.ndarray, approximate: str | None = None) -> np.ndarray:
        return self.raw.gelu(z, approximate=approximate or self.conventions.gelu_approximate)

    def gelu_prime(self, z: np.ndarray, approximate: str | None = None) -> np.ndarray:
        return self.raw.gelu_prime(z, approximate=approximate or self.conventions.gelu_approximate)

