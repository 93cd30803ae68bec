"""Clauses on embeddings (to be written)."""
