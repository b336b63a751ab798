"""Analyses over the events table and the happens-before tables (SQL)."""
