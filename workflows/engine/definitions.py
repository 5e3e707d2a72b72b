"""Workflow definitions: validated, immutable per id + version."""

from __future__ import annotations

import threading
from datetime import datetime
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from opscore_project.errors import Conflict, NotFound, ValidationFailed
from workflows.models import DefinitionSource, WorkflowDefinition
from workflows.validation import DefinitionInvalid, content_hash, validate_definition


def definition_create(
    *, data: Any, source: str = DefinitionSource.API, default_id: str | None = None, now: datetime | None = None
) -> tuple[WorkflowDefinition, bool]:
    """Validate and store one definition version. Returns (definition, created).

    The same id+version with identical content returns the stored row (idempotent); with different content
    raises Conflict. Raises ValidationFailed naming every fault by field path.
    """
    try:
        spec = validate_definition(data, default_id=default_id)
    except DefinitionInvalid as exc:
        raise ValidationFailed(exc.errors, message="Invalid workflow definition.") from exc
    digest = content_hash(spec)
    existing = WorkflowDefinition.objects.filter(workflow_id=spec["id"], version=spec["version"]).first()
    if existing is None:
        try:
            with transaction.atomic():
                return WorkflowDefinition.objects.create(
                    workflow_id=spec["id"],
                    version=spec["version"],
                    name=spec["name"],
                    description=spec["description"],
                    spec=spec,
                    content_hash=digest,
                    source=source,
                    created_at=now or timezone.now(),
                ), True
        except IntegrityError:  # created concurrently: compare with the winner
            existing = WorkflowDefinition.objects.get(workflow_id=spec["id"], version=spec["version"])
    if existing.content_hash != digest:
        raise Conflict(
            f"Workflow {spec['id']!r} version {spec['version']!r} already exists with different content; "
            "publish a new version.",
            errors={"version": ["This version exists with different content."]},
        )
    return existing, False


# Definitions never change once stored, so each process keeps the ones it has read (with their parsed graph): a
# trigger then reads only the id (and content hash) of the version it wants. Bounded; the oldest go first.
_DEFINITIONS_KEPT = 256
_definitions: dict[tuple[int, str], WorkflowDefinition] = {}
_definitions_lock = threading.Lock()


def definition_get(*, workflow_id: str, version: str | None = None) -> WorkflowDefinition:
    """The given version, or the latest one. Raises NotFound."""
    queryset = WorkflowDefinition.objects.filter(workflow_id=workflow_id)
    if version:
        queryset = queryset.filter(version=version)
    key = queryset.order_by("-created_at", "-id").values_list("pk", "content_hash").first()
    if key is None:
        suffix = f" version {version!r}" if version else ""
        raise NotFound(f"Workflow definition {workflow_id!r}{suffix} does not exist.")
    definition = _definitions.get(key)
    if definition is None:
        definition = WorkflowDefinition.objects.get(pk=key[0])
        with _definitions_lock:
            if len(_definitions) >= _DEFINITIONS_KEPT:
                _definitions.pop(next(iter(_definitions)))
            _definitions[key] = definition
    return definition
