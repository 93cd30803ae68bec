"""Clauses on blocks (to be written)."""
