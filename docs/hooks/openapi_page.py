"""Render Ops-Core's OpenAPI schema (from ``manage.py spectacular``) as a Markdown page.

The page is built from the schema file at docs build time, so it lists exactly the endpoints the code serves; no
JavaScript viewer and nothing fetched from elsewhere. ``schema_yaml()`` runs the management command in a
subprocess (with development settings, so no secrets are needed) and ``render(schema)`` turns it into Markdown.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
METHODS = ("get", "post", "put", "patch", "delete")


def schema_yaml() -> str:
    """The OpenAPI 3 schema as YAML, generated from the code by ``manage.py spectacular``."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "openapi.yaml"
        env = dict(os.environ, DEBUG="true", DJANGO_SETTINGS_MODULE="opscore_project.settings")
        # The schema does not depend on the database; a placeholder keeps a missing server from mattering.
        env.setdefault("DATABASE_URL", f"sqlite:///{Path(tmp) / 'schema.sqlite3'}")
        result = subprocess.run(
            [sys.executable, "manage.py", "spectacular", "--file", str(out), "--validate", "--fail-on-warn"],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
        )
        if result.returncode != 0:
            raise RuntimeError(f"manage.py spectacular failed:\n{result.stdout}{result.stderr}")
        return out.read_text()


def _anchor(name: str) -> str:
    return f"schema-{name.lower()}"


def _type(schema: dict[str, Any] | None) -> str:
    if not schema:
        return "any"
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        return f"[{name}](#{_anchor(name)})"
    for key in ("allOf", "oneOf", "anyOf"):
        if key in schema:
            joiner = " and " if key == "allOf" else " or "
            return joiner.join(_type(s) for s in schema[key])
    kind = schema.get("type", "object")
    if "enum" in schema:
        values = ", ".join(f"`{v}`" for v in schema["enum"] if v not in ("", None))
        return f"{kind}: {values}"
    if kind == "array":
        return f"list of {_type(schema.get('items'))}"
    if kind == "object" and "additionalProperties" in schema and not schema.get("properties"):
        extra = schema["additionalProperties"]
        return "object" if extra is True or extra == {} else f"object of {_type(extra)}"
    fmt = schema.get("format")
    text = f"{kind} ({fmt})" if fmt else kind
    if schema.get("nullable"):
        text += ", nullable"
    return text


def _cell(text: Any) -> str:
    return " ".join(str(text or "").split()).replace("|", "\\|")


def _body_schema(content: dict[str, Any] | None) -> tuple[str, str]:
    """(media type, rendered type) of the first media type of a request or response body."""
    if not content:
        return "", ""
    media, spec = next(iter(content.items()))
    return media, _type(spec.get("schema"))


def render(schema: dict[str, Any]) -> str:
    info = schema.get("info", {})
    lines = [
        "# OpenAPI schema",
        "",
        f"{info.get('title', 'API')} {info.get('version', '')} — generated from the code by "
        "`manage.py spectacular` when the site is built. The same schema is served by a running Ops-Core at "
        "`/api/schema/` (Swagger UI at `/api/docs/`, ReDoc at `/api/redoc/`); the file used for this page is "
        "[openapi.yaml](openapi.yaml). Curl examples for every endpoint: [HTTP API guide](api.md).",
        "",
        _cell(info.get("description", "")),
        "",
    ]
    by_tag: dict[str, list[tuple[str, str, dict[str, Any]]]] = {}
    for path, item in schema.get("paths", {}).items():
        for method in METHODS:
            if method in item:
                operation = item[method]
                tag = (operation.get("tags") or ["other"])[0]
                by_tag.setdefault(tag, []).append((method, path, operation))
    for tag in sorted(by_tag):
        lines += [f"## {tag}", ""]
        for method, path, operation in by_tag[tag]:
            lines += [f"### `{method.upper()} {path}`", ""]
            text = operation.get("description") or operation.get("summary")
            if text:
                lines += [text.strip(), ""]
            params = operation.get("parameters", [])
            if params:
                lines += ["| parameter | in | type | required | description |", "|---|---|---|---|---|"]
                for p in params:
                    lines.append(
                        f"| `{p['name']}` | {p['in']} | {_cell(_type(p.get('schema')))} | "
                        f"{'yes' if p.get('required') else 'no'} | {_cell(p.get('description'))} |"
                    )
                lines.append("")
            body = operation.get("requestBody")
            if body:
                media, kind = _body_schema(body.get("content"))
                required = " (required)" if body.get("required") else ""
                lines += [f"Request body{required}: `{media}` {kind}", ""]
            lines += ["| status | description | body |", "|---|---|---|"]
            for status, response in operation.get("responses", {}).items():
                _, kind = _body_schema(response.get("content"))
                lines.append(f"| {status} | {_cell(response.get('description'))} | {_cell(kind)} |")
            lines.append("")
    components = schema.get("components", {}).get("schemas", {})
    if components:
        lines += ["## Schemas", ""]
        for name in sorted(components):
            component = components[name]
            lines += [f"### {name} {{#{_anchor(name)}}}", ""]
            if component.get("description"):
                lines += [_cell(component["description"]), ""]
            props = component.get("properties")
            if props:
                required = set(component.get("required", []))
                lines += ["| field | type | required | description |", "|---|---|---|---|"]
                for field, spec in props.items():
                    flags = " (read-only)" if spec.get("readOnly") else ""
                    lines.append(
                        f"| `{field}` | {_cell(_type(spec))}{flags} | {'yes' if field in required else 'no'} | "
                        f"{_cell(spec.get('description'))} |"
                    )
            else:
                lines.append(f"Type: {_cell(_type(component))}")
            lines.append("")
    return "\n".join(lines)


def render_yaml(text: str) -> str:
    return render(yaml.safe_load(text))
