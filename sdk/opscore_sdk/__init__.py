"""Python client for Ops-Core."""
