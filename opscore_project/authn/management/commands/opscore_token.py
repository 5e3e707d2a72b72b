"""``manage.py opscore_token create --scope operator --name ci`` — create, list and revoke API tokens.

``create`` prints the raw token alone on stdout (everything else goes to stderr), so it can be captured:
``TOKEN=$(python manage.py opscore_token create --scope operator --name ci)``.
"""

from __future__ import annotations

import sys
from datetime import timedelta
from pathlib import Path

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from opscore_project.authn.models import ApiToken
from opscore_project.authn.scopes import SCOPES
from opscore_project.authn.services import InvalidScopes, api_token_create, api_token_is_valid, api_token_revoke


class Command(BaseCommand):
    help = "Create, list, check and revoke scoped API tokens."

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="action", required=True)
        create = sub.add_parser("create", help="Create a token and print it on stdout (shown once).")
        create.add_argument("--name", required=True, help="What the token is for, e.g. 'ci'.")
        create.add_argument(
            "--scope", action="append", required=True, choices=SCOPES, help="Repeat for several scopes."
        )
        create.add_argument("--user", help="Owner's username (the token dies with the user's account).")
        create.add_argument("--agent", default="", help="Bind the token to one agent id (agent scope).")
        create.add_argument("--expires-days", type=float, help="Expire after this many days.")
        create.add_argument("--output", help="Write the token to this file (mode 600) instead of stdout.")
        sub.add_parser("list", help="List tokens (never the keys).")
        revoke = sub.add_parser("revoke", help="Revoke tokens by key prefix.")
        revoke.add_argument("prefix", nargs="+")
        check = sub.add_parser("check", help="Exit 0 if the token in FILE is active, 1 otherwise.")
        check.add_argument("file")

    def handle(self, *args, action: str, **options):
        return getattr(self, f"_{action}")(**options)

    def _create(self, *, name, scope, user, agent, expires_days, output, **_):
        owner = None
        if user:
            owner = get_user_model().objects.filter(username=user).first()
            if owner is None:
                raise CommandError(f"No user {user!r}.")
        expires_at = timezone.now() + timedelta(days=expires_days) if expires_days else None
        try:
            token, raw = api_token_create(name=name, scopes=scope, user=owner, agent_id=agent, expires_at=expires_at)
        except InvalidScopes as exc:
            raise CommandError(str(exc)) from exc
        if output:
            path = Path(output)
            path.touch(mode=0o600)
            path.write_text(raw + "\n")
            self.stderr.write(f"Created token {token.prefix}… ({token.scopes}) in {path}")
        else:
            self.stderr.write(f"Created token {token.prefix}… '{token.name}' with scopes: {token.scopes}")
            sys.stdout.write(raw + "\n")
            sys.stdout.flush()

    def _list(self, **_):
        for token in ApiToken.objects.select_related("user"):
            state = "revoked" if token.revoked_at else ("active" if token.is_active else "expired")
            self.stdout.write(
                f"{token.prefix}…  {token.name!r}  scopes={token.scopes}  agent={token.agent_id or '-'}  {state}"
            )

    def _revoke(self, *, prefix, **_):
        ids = list(ApiToken.objects.filter(prefix__in=prefix).values_list("id", flat=True))
        self.stdout.write(f"Revoked {api_token_revoke(token_ids=ids)} token(s).")

    def _check(self, *, file, **_):
        path = Path(file)
        raw = path.read_text().strip() if path.exists() else ""
        if not (raw and api_token_is_valid(raw=raw)):
            raise CommandError("Not an active token.", returncode=1)
