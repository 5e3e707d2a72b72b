from __future__ import annotations

import io
import json
import logging

import pytest

from opscore_project.observability.logs import ContextFilter, JsonFormatter, RedactionFilter
from opscore_project.observability.tests.browsing import chromium_driver


class LogCapture:
    def __init__(self, stream: io.StringIO) -> None:
        self.stream = stream

    @property
    def text(self) -> str:
        return self.stream.getvalue()

    def lines(self) -> list[dict]:
        """Every captured line, parsed (fails the test if one is not valid JSON)."""
        return [json.loads(line) for line in self.text.splitlines() if line.strip()]

    def find(self, **fields) -> list[dict]:
        return [line for line in self.lines() if all(line.get(k) == v for k, v in fields.items())]


@pytest.fixture
def json_logs():
    """The JSON lines the configured console handler would write (same formatter and filters as LOGGING)."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    handler.addFilter(RedactionFilter())
    handler.addFilter(ContextFilter())
    root = logging.getLogger()
    old_level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    try:
        yield LogCapture(stream)
    finally:
        root.removeHandler(handler)
        root.setLevel(old_level)


@pytest.fixture
def browser():
    """A headless Chromium 1,280 px wide (the width the dashboard must stay usable at)."""
    yield from chromium_driver()
