"""Template filters of the fleet pages: durations an operator reads at a glance."""

from __future__ import annotations

from datetime import datetime

from django import template

register = template.Library()


@register.filter
def ms(value: float | None) -> str:
    """925 → "925 ms", 60065 → "60.1 s", 185000 → "3 min 5 s", 7500000 → "2 h 5 min"; None → "—"."""
    if value is None:
        return "—"
    value = float(value)
    if value < 1000:
        return f"{value:.0f} ms"
    seconds = value / 1000
    if seconds < 100:
        return f"{seconds:.1f} s"
    minutes, seconds = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {seconds} s" if seconds else f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min" if minutes else f"{hours} h"


@register.filter
def duration_to(start: datetime | None, end: datetime | None) -> str:
    """The time from ``start`` to ``end`` as ``ms`` writes it."""
    if start is None or end is None:
        return "—"
    return ms((end - start).total_seconds() * 1000)
