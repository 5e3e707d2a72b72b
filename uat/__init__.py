"""Acceptance scenarios (`make uat`): see docs/development.md."""
