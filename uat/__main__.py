"""``make uat``: run the acceptance scenarios and write var/uat-report.md (screenshots in var/uat/).

Exit status 0 when no scenario failed (skipped ones are listed with the reason)."""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
import time
import traceback
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "opscore_project.settings")

from uat import scenarios  # noqa: E402
from uat.stack import target  # noqa: E402

REPORT = ROOT / "var" / "uat-report.md"


@contextmanager
def headless_chromium():
    chromium = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
    chromedriver = shutil.which("chromedriver")
    if not (chromium and chromedriver):
        yield None
        return
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    profile = tempfile.mkdtemp(prefix="opscore-uat-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run"]
    flags += ["--disable-background-networking", "--window-size=1400,1000", f"--user-data-dir={profile}"]
    for flag in flags:
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(chromedriver), options=options)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def main() -> int:
    started = time.monotonic()
    results = []
    print("[uat] preparing the stack…", flush=True)
    with target() as where, headless_chromium() as browser:
        print(f"[uat] running against {where.description}", flush=True)
        for persona, title, scenario, _browser in scenarios.SCENARIOS:
            ctx = scenarios.Context(target=where, browser=browser)
            t0 = time.monotonic()
            try:
                outcome, message = "PASS", scenario(ctx)
            except scenarios.Skipped as exc:
                outcome, message = "SKIP", str(exc)
            except Exception as exc:  # noqa: BLE001 - a scenario's crash is its failure, the others still run
                outcome, message = "FAIL", f"{type(exc).__name__}: {exc}"
                ctx.step("traceback:\n\n```text\n" + traceback.format_exc().strip() + "\n```")
            seconds = time.monotonic() - t0
            print(f"[uat] {outcome} {persona}: {title} ({seconds:.1f}s) — {message}", flush=True)
            results.append((persona, title, scenario.__doc__ or "", outcome, message, seconds, ctx))
        description = where.description
    total = time.monotonic() - started
    write_report(results, description, total)
    failed = [r for r in results if r[3] == "FAIL"]
    print(f"[uat] {len(results) - len(failed)} passed or skipped, {len(failed)} failed in {total:.0f}s — {REPORT}")
    return 1 if failed else 0


def write_report(results, description: str, total: float) -> None:
    REPORT.parent.mkdir(parents=True, exist_ok=True)
    counts = {k: sum(1 for r in results if r[3] == k) for k in ("PASS", "FAIL", "SKIP")}
    lines = [
        "# Ops-Core acceptance report",
        "",
        f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC, against {description}: **{counts['PASS']} passed, "
        f"{counts['FAIL']} failed, {counts['SKIP']} skipped** in {total:.0f} s.",
        "",
        "| # | user | scenario | result | time | outcome |",
        "|---|---|---|---|---|---|",
    ]
    for i, (persona, title, _doc, outcome, message, seconds, _ctx) in enumerate(results, 1):
        short = message if len(message) <= 240 else message[:239] + "…"
        lines.append(f"| {i} | {persona} | {title} | {outcome} | {seconds:.1f} s | {short.replace('|', '/')} |")
    for i, (persona, title, doc, outcome, _message, _seconds, ctx) in enumerate(results, 1):
        lines += ["", f"## {i}. {persona}: {title} — {outcome}", "", " ".join(doc.split()), ""]
        lines += [f"{n}. {step}" for n, step in enumerate(ctx.steps, 1)]
        for shot in ctx.screenshots:
            lines += ["", f"![{shot.stem}](uat/{shot.name})"]
    REPORT.write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    sys.exit(main())
