"""Clauses on backprop (to be written)."""
