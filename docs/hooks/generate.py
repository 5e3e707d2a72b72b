"""MkDocs hooks: pages generated from the code when the site is built.

- ``openapi.md`` and ``openapi.yaml``: the OpenAPI schema from ``manage.py spectacular``, rendered as Markdown.
- ``cli.md`` is committed (readable in the repository) but checked here against the parser: a stale page fails
  the build, like a broken link does.
"""

from __future__ import annotations

import sys
from pathlib import Path

from mkdocs.exceptions import PluginError
from mkdocs.structure.files import File, Files

sys.path.insert(0, str(Path(__file__).resolve().parent))

import cli_reference
import openapi_page


def on_files(files: Files, config) -> Files:
    try:
        schema = openapi_page.schema_yaml()
    except RuntimeError as exc:
        raise PluginError(str(exc)) from exc
    files.append(File.generated(config, "openapi.yaml", content=schema))
    files.append(File.generated(config, "openapi.md", content=openapi_page.render_yaml(schema)))
    if cli_reference.PAGE.read_text() != cli_reference.render():
        raise PluginError("docs/cli.md is out of date: run `python docs/hooks/cli_reference.py` (or `make docs`).")
    return files
