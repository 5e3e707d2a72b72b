"""The API guide has a curl example for every JSON endpoint Ops-Core serves (read from the URL configuration)."""

from __future__ import annotations

import re
from pathlib import Path

from django.urls import URLPattern, URLResolver, get_resolver

PAGE = Path(__file__).resolve().parents[1] / "api.md"
API_PREFIXES = ("v1/", "health", "metrics")


def _routes(patterns, prefix: str = "") -> list[str]:
    routes = []
    for pattern in patterns:
        route = prefix + str(pattern.pattern)
        if isinstance(pattern, URLResolver):
            routes += _routes(pattern.url_patterns, route)
        elif isinstance(pattern, URLPattern):
            routes.append(route)
    return routes


def api_routes() -> list[str]:
    routes = [r for r in _routes(get_resolver().url_patterns) if r.startswith(API_PREFIXES)]
    return [r for r in routes if "/bench/" not in r]  # the benchmark baseline, off unless benchmarking


def curl_paths() -> set[str]:
    paths = set()
    for line in PAGE.read_text().splitlines():
        if "curl " in line:
            for url in re.findall(r"\$OPS(/[^\s\"'?]*)", line):
                paths.add(url)
    return paths


def test_every_api_endpoint_has_a_curl_example():
    paths = curl_paths()
    missing = []
    for route in api_routes():
        regex = "^/" + re.sub(r"<(?:\w+:)?\w+>", "[^/]+", route) + "$"
        if not any(re.match(regex, path) for path in paths):
            missing.append(route)
    assert not missing, f"add a curl example to docs/api.md for: {missing}"
    assert len(api_routes()) >= 15
