"""Scope checks for DRF views.

A view declares ``required_scopes = {"GET": "agent", "POST": "operator"}`` (or ``required_scope = "operator"`` for
every method). ``ScopePermission`` is the default permission class, so a view that declares nothing is refused to
every caller: a new endpoint cannot be open by accident (the auth matrix test also fails for it).
"""

from __future__ import annotations

from rest_framework.permissions import BasePermission

from opscore_project.authn.authentication import AGENT_MISMATCH_MESSAGE, missing_scope_message
from opscore_project.authn.scopes import scopes_for_user


def required_scope(view, method: str) -> str | None:
    scopes = getattr(view, "required_scopes", None)
    if scopes is not None:
        if method == "HEAD":
            method = "GET"
        return scopes.get(method) or scopes.get("*")
    return getattr(view, "required_scope", None)


def caller_scopes(user) -> frozenset[str]:
    scopes = getattr(user, "scopes", None)
    if scopes is not None:
        return scopes
    return scopes_for_user(user)


class ScopePermission(BasePermission):
    message = "This endpoint declares no scope; it is closed."

    def has_permission(self, request, view) -> bool:
        if request.method == "OPTIONS":
            scope = next(iter(getattr(view, "required_scopes", {}).values()), getattr(view, "required_scope", None))
        else:
            scope = required_scope(view, request.method)
        if scope is None:
            return False
        user = request.user
        if not getattr(user, "is_authenticated", False):
            return False  # DRF answers 401 when no credentials were given
        if scope not in caller_scopes(user):
            self.message = missing_scope_message(scope)
            return False
        agent_id = view.kwargs.get("agent_id") if hasattr(view, "kwargs") else None
        may_act_for = getattr(user, "may_act_for", None)
        if agent_id is not None and may_act_for is not None and not may_act_for(agent_id):
            self.message = AGENT_MISMATCH_MESSAGE
            return False
        return True
