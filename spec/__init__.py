"""The specification catalogue: one module per document topic, each declaring its clauses.

Importing this package registers every clause in :data:`nnspec.spec.clause.REGISTRY`.
"""

from importlib import import_module

from .clause import INFORMATIVE, REGISTRY, Clause, ClauseFailure, Informative, Source, clause

TOPICS = (
    "activations",
    "cost_learning",
    "backprop",
    "softmax",
    "tokens",
    "embeddings",
    "attention",
    "positional",
    "normalisation",
    "blocks",
    "rnn_attention",
)

for _topic in TOPICS:
    import_module(f"{__name__}.{_topic}")

__all__ = ["INFORMATIVE", "REGISTRY", "TOPICS", "Clause", "ClauseFailure", "Informative", "Source", "clause"]
