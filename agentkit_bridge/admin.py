from django.contrib import admin

from agentkit_bridge.models import DispatchAttempt, SyncRun


class ReadOnlyAdmin(admin.ModelAdmin):
    """Records written by the bridge only: viewable, never edited or added by hand."""

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


@admin.register(SyncRun)
class SyncRunAdmin(ReadOnlyAdmin):
    list_display = (
        "started_at",
        "outcome",
        "listed",
        "added",
        "updated",
        "deregistered",
        "reregistered",
        "duration_ms",
        "short_error",
    )
    list_filter = ("outcome",)
    date_hierarchy = "started_at"
    list_per_page = 100

    @admin.display(description="error")
    def short_error(self, run: SyncRun) -> str:
        return run.error[:120]


@admin.register(DispatchAttempt)
class DispatchAttemptAdmin(ReadOnlyAdmin):
    list_display = (
        "created_at",
        "dispatch_ref",
        "agent_id",
        "attempt",
        "outcome",
        "status_code",
        "error_kind",
        "latency_ms",
    )
    list_filter = ("outcome", "error_kind")
    search_fields = ("dispatch_ref", "agent_id")
    date_hierarchy = "created_at"
    list_per_page = 100
