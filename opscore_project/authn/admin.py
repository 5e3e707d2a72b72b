from django.contrib import admin, messages

from opscore_project.authn.authentication import token_cache
from opscore_project.authn.models import ApiToken, hash_token
from opscore_project.authn.services import api_token_revoke


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    list_display = ("name", "user", "prefix", "created_at", "revoked_at")
    list_filter = ("revoked_at",)
    search_fields = ("name", "user__username", "prefix")
    fields = ("user", "name", "prefix", "created_at", "revoked_at")
    readonly_fields = ("prefix", "created_at", "revoked_at")
    actions = ["revoke_tokens"]
    list_select_related = ("user",)

    def save_model(self, request, obj, form, change):
        if not change:
            raw = ApiToken.generate_key()
            obj.prefix = raw[:8]
            obj.key_hash = hash_token(raw)
            messages.warning(request, f"New API token for {obj.user}: {raw} — copy it now, it will not be shown again.")
        super().save_model(request, obj, form, change)

    @admin.action(description="Revoke selected tokens")
    def revoke_tokens(self, request, queryset):
        count = api_token_revoke(token_ids=list(queryset.values_list("id", flat=True)))
        token_cache.clear()
        self.message_user(request, f"Revoked {count} token(s).")
