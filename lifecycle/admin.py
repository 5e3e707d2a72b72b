from django import forms
from django.contrib import admin, messages

from lifecycle import controls
from lifecycle.models import Agent, AgentStateRecord, BreakerState
from opscore_project.errors import ApiError


class CapabilityFilter(admin.SimpleListFilter):
    title = "capability"
    parameter_name = "capability"

    def lookups(self, request, model_admin):
        seen: set[str] = set()
        for caps in Agent.objects.filter(capabilities_known=True).values_list("capabilities", flat=True)[:2000]:
            seen.update(c for c in caps or [] if isinstance(c, str))
        return [(c, c) for c in sorted(seen)]

    def queryset(self, request, queryset):
        from lifecycle.selectors import with_capability

        return with_capability(queryset, self.value()) if self.value() else queryset


class RegisteredFilter(admin.SimpleListFilter):
    title = "registration"
    parameter_name = "registered"

    def lookups(self, request, model_admin):
        return [("yes", "Registered"), ("no", "Deregistered")]

    def queryset(self, request, queryset):
        if self.value() == "yes":
            return queryset.filter(deregistered_at__isnull=True)
        if self.value() == "no":
            return queryset.filter(deregistered_at__isnull=False)
        return queryset


class StateHistoryInline(admin.TabularInline):
    model = AgentStateRecord
    fields = ("state", "reported_at", "received_at", "details")
    readonly_fields = fields
    ordering = ("-reported_at", "-id")
    extra = 0
    max_num = 0
    can_delete = False
    show_change_link = False
    verbose_name_plural = "State history (most recent 50)"

    def get_queryset(self, request):
        queryset = super().get_queryset(request)
        # An inline cannot be sliced directly; limit through the newest 50 ids.
        agent_id = request.resolver_match.kwargs.get("object_id") if request.resolver_match else None
        if agent_id:
            ids = list(
                AgentStateRecord.objects.filter(agent_id=agent_id)
                .order_by("-reported_at", "-id")
                .values_list("id", flat=True)[:50]
            )
            queryset = queryset.filter(id__in=ids)
        return queryset


class DrainedFilter(admin.SimpleListFilter):
    title = "drained"
    parameter_name = "drained"

    def lookups(self, request, model_admin):
        return [("yes", "Drained"), ("no", "In rotation")]

    def queryset(self, request, queryset):
        if self.value() in ("yes", "no"):
            return queryset.filter(drained_at__isnull=self.value() == "no")
        return queryset


class AgentForm(forms.ModelForm):
    class Meta:
        model = Agent
        fields = ["name", "version", "capabilities", "contact_endpoint", "metadata"]

    def clean_capabilities(self):
        try:
            return controls.clean_capabilities(self.cleaned_data.get("capabilities"))
        except ApiError as exc:
            raise forms.ValidationError(exc.errors["capabilities"]) from None


@admin.register(Agent)
class AgentAdmin(admin.ModelAdmin):
    form = AgentForm
    actions = ["drain_agents", "undrain_agents", "quarantine_agents", "release_agents"]
    list_display = (
        "agent_id",
        "name",
        "version",
        "state",
        "state_timestamp",
        "source",
        "registered",
        "last_seen_at",
        "busy",
        "delivery_failures",
        "drained",
        "breaker_state",
        "quarantined_until",
        "consecutive_failures",
        "capabilities_source",
    )
    list_filter = ("state", CapabilityFilter, "source", RegisteredFilter, DrainedFilter, "breaker_state")
    search_fields = ("agent_id", "name")
    readonly_fields = (
        "agent_id",
        "source",
        "state",
        "state_timestamp",
        "state_details",
        "last_seen_at",
        "registered_at",
        "deregistered_at",
        "assigned_task",
        "last_assigned_at",
        "delivery_failures",
        "last_delivery_failure_at",
        "created_at",
        "updated_at",
        "capabilities_known",
        "capabilities_source",
        "drained_at",
        "breaker_state",
        "quarantined_until",
        "quarantine_reason",
        "breaker_cooldown_seconds",
        "breaker_changed_at",
        "consecutive_failures",
    )
    fields = (
        "agent_id",
        "name",
        "version",
        "capabilities",
        "capabilities_known",
        "capabilities_source",
        "contact_endpoint",
        "metadata",
        "source",
        "registered_at",
        "deregistered_at",
        "state",
        "state_timestamp",
        "state_details",
        "last_seen_at",
        "assigned_task",
        "last_assigned_at",
        "delivery_failures",
        "last_delivery_failure_at",
        "drained_at",
        "breaker_state",
        "quarantined_until",
        "quarantine_reason",
        "breaker_cooldown_seconds",
        "breaker_changed_at",
        "consecutive_failures",
        "created_at",
        "updated_at",
    )
    inlines = [StateHistoryInline]
    list_per_page = 100

    @admin.display(boolean=True)
    def registered(self, agent: Agent) -> bool:
        return agent.is_registered

    @admin.display(boolean=True)
    def busy(self, agent: Agent) -> bool:
        return bool(agent.assigned_task)

    @admin.display(boolean=True, ordering="drained_at")
    def drained(self, agent: Agent) -> bool:
        return agent.is_drained

    def save_model(self, request, obj, form, change):
        # Capabilities set here go through the service: known, source "operator", logged.
        super().save_model(request, obj, form, change)
        if "capabilities" in form.changed_data:
            controls.agent_capabilities_set(agent_id=obj.agent_id, capabilities=obj.capabilities)
            obj.refresh_from_db()

    def _each(self, request, queryset, service, verb: str) -> None:
        done = 0
        for agent in queryset:
            try:
                service(agent_id=agent.agent_id)
                done += 1
            except ApiError as exc:
                self.message_user(request, f"{agent.agent_id}: {exc.message}", messages.WARNING)
        if done:
            self.message_user(request, f"{done} agent(s) {verb}.", messages.SUCCESS)

    @admin.action(description="Drain selected agents (no new tasks; current tasks finish)")
    def drain_agents(self, request, queryset):
        self._each(request, queryset, controls.agent_drain, "drained")

    @admin.action(description="Undrain selected agents (back in rotation)")
    def undrain_agents(self, request, queryset):
        self._each(request, queryset, controls.agent_undrain, "back in rotation")

    @admin.action(description="Quarantine selected agents until released")
    def quarantine_agents(self, request, queryset):
        self._each(request, queryset, controls.agent_quarantine, "quarantined")

    @admin.action(description="Release selected agents from quarantine")
    def release_agents(self, request, queryset):
        quarantined = queryset.exclude(breaker_state=BreakerState.CLOSED)
        self._each(request, quarantined, controls.agent_quarantine_release, "released")


@admin.register(AgentStateRecord)
class AgentStateRecordAdmin(admin.ModelAdmin):
    list_display = ("agent", "state", "reported_at", "received_at")
    list_filter = ("state",)
    search_fields = ("agent__agent_id",)
    list_select_related = ("agent",)
    readonly_fields = ("agent", "state", "details", "reported_at", "received_at")
    date_hierarchy = None
    show_full_result_count = False

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False
