from __future__ import annotations

import json
from pathlib import Path

import yaml
from django.core.management.base import BaseCommand, CommandError

from opscore_project.errors import ApiError
from workflows import services
from workflows.models import DefinitionSource

SUFFIXES = {".json", ".yaml", ".yml"}


class Command(BaseCommand):
    help = "Load workflow definitions from JSON/YAML files or directories (idempotent: unchanged versions are kept)."

    def add_arguments(self, parser):
        parser.add_argument("paths", nargs="+", help="Files, or directories searched recursively.")

    def handle(self, *args, paths: list[str], **options):
        files: list[Path] = []
        for raw in paths:
            path = Path(raw)
            if path.is_dir():
                files.extend(sorted(p for p in path.rglob("*") if p.suffix.lower() in SUFFIXES and p.is_file()))
            elif path.is_file():
                files.append(path)
            else:
                raise CommandError(f"{raw}: no such file or directory")
        failures = 0
        for file in files:
            try:
                text = file.read_text()
                data = json.loads(text) if file.suffix.lower() == ".json" else yaml.safe_load(text)
            except (OSError, ValueError, yaml.YAMLError) as exc:
                failures += 1
                self.stderr.write(f"{file}: cannot parse: {exc}")
                continue
            try:
                definition, created = services.definition_create(data=data, source=DefinitionSource.FILE)
            except ApiError as exc:
                failures += 1
                details = "; ".join(f"{k}: {' '.join(v)}" for k, v in (exc.errors or {}).items())
                self.stderr.write(f"{file}: {exc.message} {details}".rstrip())
                continue
            state = "created" if created else "unchanged"
            self.stdout.write(f"{file}: {definition.workflow_id} v{definition.version} {state}")
        if failures:
            raise CommandError(f"{failures} file(s) could not be loaded")
