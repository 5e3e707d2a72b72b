"""Admin for alert rules (written through the services, validated like the API), alerts and deliveries (read-only)."""

from __future__ import annotations

from django import forms
from django.contrib import admin

from opscore_project.alerts import services
from opscore_project.alerts.models import Alert, AlertDelivery, AlertRule
from opscore_project.errors import ValidationFailed

# API field names in the service's errors -> this form's fields.
_FORM_FIELDS = {api: model for model, api in services.API_NAMES.items()}


class AlertRuleForm(forms.ModelForm):
    class Meta:
        model = AlertRule
        fields = list(services.RULE_FIELDS)

    def clean(self):
        cleaned = super().clean()
        if self.errors:
            return cleaned
        values = {name: cleaned.get(name) for name in services.RULE_FIELDS}
        for text in ("name", "workflow_id", "target"):
            values[text] = (values[text] or "").strip()
        try:
            services.alert_rule_check(values)
        except ValidationFailed as exc:
            for field, messages in (exc.errors or {}).items():
                self.add_error(_FORM_FIELDS.get(field), messages)
        return cleaned


class AlertDeliveryInline(admin.TabularInline):
    model = AlertDelivery
    extra = 0
    can_delete = False
    fields = ("kind", "channel", "status", "attempts", "status_code", "reason", "next_attempt_at", "sent_at")
    readonly_fields = fields

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(AlertRule)
class AlertRuleAdmin(admin.ModelAdmin):
    form = AlertRuleForm
    list_display = ("name", "condition", "threshold", "workflow_id", "channel", "quiet_period_seconds", "enabled")
    list_filter = ("condition", "channel", "enabled")
    search_fields = ("name", "workflow_id")

    def save_model(self, request, obj, form, change):
        values = {name: form.cleaned_data[name] for name in services.RULE_FIELDS}
        saved = services.alert_rule_update(rule_id=obj.pk, **values) if change else services.alert_rule_create(**values)
        obj.pk, obj.created_at, obj.updated_at = saved.pk, saved.created_at, saved.updated_at

    def delete_model(self, request, obj):
        services.alert_rule_delete(rule_id=obj.pk)

    def delete_queryset(self, request, queryset):
        for rule_id in queryset.values_list("pk", flat=True):
            services.alert_rule_delete(rule_id=rule_id)


@admin.register(Alert)
class AlertAdmin(admin.ModelAdmin):
    """Read-only: alerts are raised and resolved by the evaluator."""

    list_display = ("fired_at", "rule", "dedupe_key", "status", "summary", "occurrences", "resolved_at")
    list_filter = ("status", "rule__condition", "rule")
    search_fields = ("=dedupe_key", "summary")
    readonly_fields = (
        "rule",
        "dedupe_key",
        "status",
        "summary",
        "details",
        "occurrences",
        "fired_at",
        "last_occurred_at",
        "resolved_at",
        "notified_status",
        "last_notified_at",
    )
    fields = readonly_fields
    inlines = [AlertDeliveryInline]
    list_select_related = ("rule",)

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(AlertDelivery)
class AlertDeliveryAdmin(admin.ModelAdmin):
    list_display = ("created_at", "alert", "kind", "channel", "status", "attempts", "status_code", "reason")
    list_filter = ("status", "kind", "channel")
    list_select_related = ("alert__rule",)
    readonly_fields = (
        "alert",
        "kind",
        "channel",
        "target",
        "status",
        "attempts",
        "status_code",
        "reason",
        "next_attempt_at",
        "created_at",
        "sent_at",
    )
    fields = readonly_fields

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False
