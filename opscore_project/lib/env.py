"""Read typed settings from the environment, failing loudly on values that do not parse."""

from __future__ import annotations

import os
from pathlib import Path


class ConfigurationError(RuntimeError):
    """A setting is missing or malformed."""


def env_str(name: str, default: str = "") -> str:
    """Return ``name`` from the environment; ``NAME_FILE`` (a path) wins, for secrets mounted as files."""
    file_path = os.environ.get(f"{name}_FILE")
    if file_path:
        try:
            return Path(file_path).read_text().strip()
        except OSError as exc:
            raise ConfigurationError(f"{name}_FILE={file_path!r} cannot be read: {exc}") from exc
    return os.environ.get(name, default)


def env_bool(name: str, default: bool = False) -> bool:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    value = raw.strip().lower()
    if value in {"1", "true", "yes", "on"}:
        return True
    if value in {"0", "false", "no", "off"}:
        return False
    raise ConfigurationError(f"{name}={raw!r} is not a boolean (use true/false)")


def env_int(name: str, default: int, *, minimum: int | None = None) -> int:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError as exc:
        raise ConfigurationError(f"{name}={raw!r} is not an integer") from exc
    if minimum is not None and value < minimum:
        raise ConfigurationError(f"{name}={value} must be at least {minimum}")
    return value


def env_float(name: str, default: float, *, minimum: float | None = None) -> float:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = float(raw)
    except ValueError as exc:
        raise ConfigurationError(f"{name}={raw!r} is not a number") from exc
    if minimum is not None and value < minimum:
        raise ConfigurationError(f"{name}={value} must be at least {minimum}")
    return value


def env_list(name: str, default: list[str]) -> list[str]:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return list(default)
    return [item.strip() for item in raw.split(",") if item.strip()]


# Values published in this repository (examples, old compose fallbacks, development defaults): anyone can read
# them, so they are no secret. A value containing one of the markers is refused as well.
KNOWN_EXAMPLE_SECRETS = frozenset(
    {
        "dev-api-key",
        "insecure-dev-only-secret-key-change-me",
        "compose-dev-secret-key-change-me",
        "compose-dev-api-key",
        "compose-dev-webhook-secret",
        "change-me-to-a-long-random-string",
        "change-me-agents-use-this-key",
        "change-me-shared-with-agentkit",
    }
)
_EXAMPLE_MARKERS = ("change-me", "changeme", "example", "insecure")
MIN_SECRET_LENGTH = 32


def weak_secrets(values: dict[str, str]) -> list[str]:
    """Describe each set secret that is a published example value or shorter than ``MIN_SECRET_LENGTH``.

    Empty values are skipped: whether a secret is required is decided by the caller.
    """
    problems = []
    for name, value in values.items():
        if not value:
            continue
        lowered = value.lower()
        if value in KNOWN_EXAMPLE_SECRETS or any(marker in lowered for marker in _EXAMPLE_MARKERS):
            problems.append(f"{name} is a published example value")
        elif len(value) < MIN_SECRET_LENGTH:
            problems.append(f"{name} is shorter than {MIN_SECRET_LENGTH} characters")
    return problems
