"""`make uat` from a clean state: with no stack running it starts its own, runs every scenario (the browser one in
headless Chromium), passes, and writes the report with a screenshot per browser step."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlparse

import pytest
from django.conf import settings

pytestmark = [pytest.mark.integration, pytest.mark.browser]

ROOT = Path(__file__).resolve().parents[2]


def test_make_uat_passes_on_its_own_stack_and_writes_the_report():
    if not shutil.which("chromedriver") and os.environ.get("CI", "").lower() != "true":
        pytest.skip("chromium/chromedriver not installed")
    database = urlparse(settings.DATABASE_URL)
    env = dict(
        os.environ,
        UAT_STACK="own",
        # The test run's own Postgres server and Redis db, so parallel checkouts do not meet.
        UAT_POSTGRES_URL=database._replace(path="").geturl(),
        UAT_REDIS_URL=settings.REDIS_URL,
    )
    result = subprocess.run(
        [sys.executable, "-m", "uat"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    report = (ROOT / "var" / "uat-report.md").read_text()
    assert "**6 passed, 0 failed, 0 skipped**" in report
    for shot in ("operator-1-dashboard-errors", "operator-2-timeline-failed", "operator-3-timeline-completed"):
        assert f"![{shot}](uat/{shot}.png)" in report
        assert (ROOT / "var" / "uat" / f"{shot}.png").stat().st_size > 10_000
