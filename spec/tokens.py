"""Clauses on tokens (to be written)."""
