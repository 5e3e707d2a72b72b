"""API authentication: the shared OPSCORE_API_KEY and per-user API tokens managed in the admin."""
