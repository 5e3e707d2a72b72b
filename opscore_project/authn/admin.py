from django import forms
from django.contrib import admin, messages

from opscore_project.authn.models import ApiToken
from opscore_project.authn.scopes import SCOPE_CHOICES, parse_scopes
from opscore_project.authn.services import api_token_create, api_token_revoke


class ApiTokenForm(forms.ModelForm):
    scopes = forms.MultipleChoiceField(choices=SCOPE_CHOICES, widget=forms.CheckboxSelectMultiple, initial=["operator"])

    class Meta:
        model = ApiToken
        fields = ("name", "scopes", "user", "agent_id", "expires_at")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.instance.pk:
            self.initial["scopes"] = self.instance.scope_list

    def clean_scopes(self) -> str:
        return " ".join(parse_scopes(" ".join(self.cleaned_data["scopes"])))


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    form = ApiTokenForm
    list_display = ("name", "scopes", "agent_id", "user", "prefix", "created_at", "expires_at", "revoked_at")
    list_filter = ("revoked_at", "scopes")
    search_fields = ("name", "user__username", "prefix", "agent_id")
    readonly_fields = ("prefix", "created_at", "revoked_at")
    actions = ["revoke_tokens"]
    list_select_related = ("user",)

    def get_fields(self, request, obj=None):
        fields = ["name", "scopes", "user", "agent_id", "expires_at"]
        return fields + (["prefix", "created_at", "revoked_at"] if obj is not None else [])

    def get_readonly_fields(self, request, obj=None):
        # A token's powers are fixed when it is made: create a new one rather than widen an existing key.
        if obj is not None:
            return ["name", "scopes", "user", "agent_id", "expires_at", "prefix", "created_at", "revoked_at"]
        return self.readonly_fields

    def save_model(self, request, obj, form, change):
        if change:
            return
        token, raw = api_token_create(
            name=obj.name,
            scopes=parse_scopes(obj.scopes),
            user=obj.user,
            agent_id=obj.agent_id,
            expires_at=obj.expires_at,
        )
        obj.pk = obj.id = token.pk
        obj.prefix, obj.key_hash, obj.created_at = token.prefix, token.key_hash, token.created_at
        obj._state.adding = False
        messages.warning(
            request, f"New API token '{token.name}' ({token.scopes}): {raw} — copy it now, it will not be shown again."
        )

    @admin.action(description="Revoke selected tokens")
    def revoke_tokens(self, request, queryset):
        count = api_token_revoke(token_ids=list(queryset.values_list("id", flat=True)))
        self.message_user(request, f"Revoked {count} token(s).")
