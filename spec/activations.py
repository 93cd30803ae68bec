"""Clauses on activations (to be written)."""
