"""What an implementation may offer, one ``typing.Protocol`` per capability group.

An implementation never subclasses anything: it offers some of the public names of
:mod:`nnspec.reference.numpy_ref` (see ``reference/PARAMETERS.md``) with the same signatures, taking
and returning NumPy arrays. Each name is a *capability*; a clause lists the capabilities it needs and
is *not applicable* to an implementation that lacks one (an entry of alternatives, ``"a | b"``, is
met by either, and the clause checks the part that is offered). The protocols below document the groups and
give static checkers something to check against; the engine itself only asks "is the name there".

A capability may also name a method of a network class, ``"GPT.forward_cached"``: the implementation
offers ``GPT`` and its networks have a ``forward_cached`` method. ``GPT`` may be the class or a
factory of networks (the signatures below): the engine builds one tiny network to see its methods.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol, runtime_checkable

import numpy as np

Array = np.ndarray


@runtime_checkable
class Activations(Protocol):
    """The documents' squashing functions and their derivatives (3Blue1Brown ch. 1 and 4)."""

    def sigmoid(self, z: Array) -> Array: ...
    def sigmoid_prime(self, z: Array) -> Array: ...
    def relu(self, z: Array) -> Array: ...
    def relu_prime(self, z: Array) -> Array: ...
    def tanh(self, z: Array) -> Array: ...
    def tanh_prime(self, z: Array) -> Array: ...
    def gelu(self, z: Array, approximate: str = "none") -> Array: ...
    def gelu_prime(self, z: Array, approximate: str = "none") -> Array: ...
    def activation(self, name: str | None) -> Callable[[Array], Array]: ...


@runtime_checkable
class Layers(Protocol):
    """A fully connected layer, softmax and the squared-error cost."""

    def dense(self, a: Array, W: Array, b: Array | None, activation: str | None = "sigmoid") -> Array: ...
    def softmax(self, x: Array, axis: int = -1, temperature: float = 1.0) -> Array: ...
    def squared_error_cost(self, a: Array, y: Array) -> Array: ...


@runtime_checkable
class Embeddings(Protocol):
    """Tokens to vectors and back, and where a token sits in the sequence."""

    def embed(self, token_ids: Array, W_E: Array) -> Array: ...
    def unembed(self, h: Array, W_U: Array, b_U: Array | None = None) -> Array: ...
    def positional_encoding(self, n_positions: int, d_model: int) -> Array: ...


@runtime_checkable
class Normalisation(Protocol):
    """Layer and batch normalisation (biased variance, eps inside the square root)."""

    def layer_norm(self, x: Array, gamma: Array, beta: Array, eps: float = 1e-5) -> Array: ...
    def batch_norm(self, x: Array, gamma: Array, beta: Array, eps: float = 1e-5) -> Array: ...


@runtime_checkable
class Attention(Protocol):
    """Masks, scaled dot-product and multi-head attention, and the position-wise feed-forward."""

    def causal_mask(self, n_queries: int, n_keys: int) -> Array: ...
    def padding_mask(self, token_ids: Array, pad_id: int) -> Array: ...
    def scaled_dot_product_attention(
        self, q: Array, k: Array, v: Array, mask: Array | None = None
    ) -> tuple[Array, Array]: ...
    def multi_head_attention(
        self, params: dict, x_q: Array, x_kv: Array, n_heads: int, mask: Array | None = None
    ) -> tuple[Array, Array]: ...
    def feed_forward(self, params: dict, x: Array, activation: str | None = "relu") -> Array: ...


@runtime_checkable
class Recurrent(Protocol):
    """The recurrent encoder-decoder's pieces: LSTM, Bahdanau and Luong attention."""

    def additive_attention(
        self, params: dict, s_prev: Array, h: Array, mask: Array | None = None
    ) -> tuple[Array, Array]: ...
    def dot_attention(self, s: Array, h: Array, mask: Array | None = None) -> tuple[Array, Array]: ...
    def lstm_cell(self, params: dict, x: Array, h: Array, c: Array) -> tuple[Array, Array]: ...
    def lstm(
        self, params: dict, xs: Array, h0: Array | None = None, c0: Array | None = None
    ) -> tuple[Array, tuple[Array, Array]]: ...


@runtime_checkable
class Networks(Protocol):
    """Whole networks, constructed from a config and a NumPy parameter dict."""

    def init_params(self, config: Any, seed: int = 0) -> dict: ...
    def MLP(self, config: Any, params: dict) -> Any: ...
    def Transformer(self, config: Any, params: dict) -> Any: ...
    def GPT(self, config: Any, params: dict) -> Any: ...
    def Seq2Seq(self, config: Any, params: dict) -> Any: ...


@runtime_checkable
class Blocks(Protocol):
    """One encoder or decoder layer of the Transformer (add & norm placement from the config)."""

    def encoder_layer(self, params: dict, x: Array, config: Any, mask: Array | None = None) -> Array: ...
    def decoder_layer(
        self, params: dict, y: Array, memory: Array, config: Any,
        self_mask: Array | None = None, cross_mask: Array | None = None,
    ) -> Array: ...


@runtime_checkable
class Text(Protocol):
    """Framework-neutral pieces both references share: the vocabulary and the weight tally."""

    def tokenize(self, sentence: str) -> list[str]: ...
    def Vocabulary(self, words: list[str]) -> Any: ...
    def parameter_count(self, config: Any, *, biases_and_norms: bool = False) -> Any: ...


GROUPS: dict[str, type] = {
    "activations": Activations,
    "layers": Layers,
    "embeddings": Embeddings,
    "normalisation": Normalisation,
    "attention": Attention,
    "recurrent": Recurrent,
    "blocks": Blocks,
    "networks": Networks,
    "text": Text,
}


def _members(protocol: type) -> tuple[str, ...]:
    return tuple(
        name for name in vars(protocol) if not name.startswith("_") and callable(vars(protocol)[name])
    )


# Every capability name, in the order of PARAMETERS.md, and the group each belongs to.
CAPABILITY_GROUP: dict[str, str] = {
    name: group for group, protocol in GROUPS.items() for name in _members(protocol)
}
CAPABILITIES: tuple[str, ...] = tuple(CAPABILITY_GROUP)

# The network classes: the adapters wrap their instances so every method crosses as NumPy.
NETWORK_CLASSES: tuple[str, ...] = ("MLP", "Transformer", "GPT", "Seq2Seq")

# Capabilities that create an array from nothing: torch adapters pass them device= and dtype=.
CREATORS: tuple[str, ...] = ("positional_encoding", "causal_mask", "init_params")

# Framework-neutral capabilities (plain Python): both built-in implementations offer them unchanged.
SHARED: dict[str, str] = {
    "tokenize": "nnspec.reference.vocabulary",
    "Vocabulary": "nnspec.reference.vocabulary",
    "parameter_count": "nnspec.reference.accounting",
}


def shared_capabilities() -> dict[str, Any]:
    """The framework-neutral capabilities that exist in this installation."""
    import importlib

    found = {}
    for name, module in SHARED.items():
        try:
            found[name] = getattr(importlib.import_module(module), name)
        except (ImportError, AttributeError):
            continue
    return found
