"""Agents known to Ops-Core, their current state and their append-only state history."""
