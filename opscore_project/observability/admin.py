from django.contrib import admin

from opscore_project.observability.models import MetricCounter, OperationEvent


@admin.register(OperationEvent)
class OperationEventAdmin(admin.ModelAdmin):
    """Read-only: the log is written by services only."""

    list_display = ("created_at", "level", "event_type", "agent_id", "session_id", "task_id", "short_message")
    list_filter = ("level", "event_type", ("created_at", admin.DateFieldListFilter))
    search_fields = ("=agent_id", "=session_id", "=task_id", "=request_id", "message")
    readonly_fields = (
        "created_at",
        "level",
        "event_type",
        "agent_id",
        "session_id",
        "task_id",
        "request_id",
        "message",
        "context",
    )
    fields = readonly_fields
    date_hierarchy = "created_at"
    list_per_page = 100
    show_full_result_count = False

    @admin.display(description="message")
    def short_message(self, event: OperationEvent) -> str:
        return event.message[:120]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(MetricCounter)
class MetricCounterAdmin(admin.ModelAdmin):
    list_display = ("name", "labels", "value")
    search_fields = ("name", "labels")
    readonly_fields = ("name", "labels", "value")

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False
