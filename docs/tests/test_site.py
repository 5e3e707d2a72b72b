"""The documentation site builds strictly, its generated pages are current, and it needs nothing from elsewhere."""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _load(name: str):
    spec = importlib.util.spec_from_file_location(name, ROOT / "docs" / "hooks" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    """``mkdocs build --strict`` (a broken link, anchor or a warning fails) into a temporary directory."""
    out = tmp_path_factory.mktemp("site")
    result = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(out)],
        cwd=ROOT,
        env=dict(os.environ, NO_MKDOCS_2_WARNING="1"),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return out


def test_the_site_builds_strictly_with_every_page_of_the_nav(site):
    for page in ("index", "getting-started", "configuration", "workflows", "agentkit", "agentkit-contract",
                 "operations", "api", "openapi", "sdk", "cli"):  # fmt: skip
        assert (site / f"{page}.html").is_file(), page


def test_the_openapi_page_is_rendered_from_the_generated_schema(site):
    schema = (site / "openapi.yaml").read_text()
    page = (site / "openapi.html").read_text()
    assert schema.startswith("openapi: 3")
    for path in ("/v1/opscore/agent/{agent_id}/state", "/v1/opscore/workflows/{workflow_id}/run"):
        assert path in schema
    assert "POST /v1/opscore/agent/{agent_id}/state" in page
    assert 'id="schema-agent"' in page and 'href="#schema-agent"' in page


def test_the_sdk_reference_is_generated_from_docstrings(site):
    page = (site / "sdk.html").read_text()
    assert "wait_for_session" in page and "SessionWaitTimeout" in page
    assert 'id="opscore_sdk.client.OpsCoreClient"' in page


def test_pages_load_mermaid_from_the_site_not_a_cdn(site):
    page = (site / "index.html").read_text()
    scripts = re.findall(r'<script[^>]+src="([^"]+)"', page)
    assert scripts and all(not s.startswith(("http:", "https:", "//")) for s in scripts), scripts
    local = [i for i, s in enumerate(scripts) if s.endswith("assets/javascripts/mermaid.min.js")]
    bundle = [i for i, s in enumerate(scripts) if "bundle" in s]
    # The theme fetches mermaid from a CDN only when no global `mermaid` exists when its bundle runs.
    assert local and bundle and local[0] < bundle[0], scripts
    assert (site / "assets" / "javascripts" / "mermaid.min.js").stat().st_size > 1_000_000
    assert 'class="mermaid"' in page
    stylesheets = re.findall(r'<link[^>]+href="(https?:[^"]+)"', page)
    assert not stylesheets, stylesheets  # no web fonts either


def test_the_cli_reference_matches_the_parser():
    cli_reference = _load("cli_reference")
    assert cli_reference.PAGE.read_text() == cli_reference.render(), "run: python docs/hooks/cli_reference.py"
    assert "## `opscore sessions retry`" in cli_reference.render()


def test_no_file_refers_to_a_path_outside_the_repository():
    tracked = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    offenders = []
    for name in tracked.splitlines():
        path = ROOT / name
        if path.suffix not in {".py", ".md", ".txt", ".yml", ".yaml", ".toml", ".json", ".cfg", ".html", ""}:
            continue
        if not path.is_file() or path.stat().st_size > 2_000_000:
            continue
        text = path.read_text(errors="replace")
        for match in re.finditer(r"(?<![\w.])/(?:work|home|Users|root)/[\w./-]+", text):
            offenders.append(f"{name}: {match.group(0)}")
    assert not offenders, offenders


@pytest.mark.browser
def test_diagrams_render_in_a_browser_from_the_built_site_alone(site):
    """Opened from disk in headless Chromium, the overview's two Mermaid diagrams are drawn (a diagram that does not
    parse stays a <pre>), with the mermaid served by the site: the test machine reaches no CDN."""
    import shutil
    import tempfile

    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    chromedriver = shutil.which("chromedriver")
    if not (chromium and chromedriver):
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail("Chromium and chromedriver are required in CI (see .ci/run).")
        pytest.skip("chromium/chromedriver not installed")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.support.ui import WebDriverWait

    profile = tempfile.mkdtemp(prefix="opscore-docs-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"]
    flags += ["--disable-background-networking", "--window-size=1400,1000", f"--user-data-dir={profile}"]
    for flag in flags:
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(chromedriver), options=options)
    try:
        driver.get((site / "index.html").as_uri())
        # The theme replaces each <pre class="mermaid"> by a <div> holding the drawing in a closed shadow root:
        # a drawn diagram is a div with a height; one that failed to parse stays a <pre>.
        drawn = (
            "return [...document.querySelectorAll('div.mermaid')].filter(e => e.offsetHeight > 100).length"
            " + '/' + document.querySelectorAll('pre.mermaid').length"
        )
        WebDriverWait(driver, 30, poll_frequency=0.2).until(lambda d: d.execute_script(drawn) == "2/0")
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)
