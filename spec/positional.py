"""Clauses on positional (to be written)."""
