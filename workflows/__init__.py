"""Workflow definitions, sessions, task runs and the engine that runs them."""
