"""Operation log, request logging, tracing and metrics."""
