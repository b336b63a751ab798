"""Analyses over the store that return small frozen dataclasses (no UI imports)."""
