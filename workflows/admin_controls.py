"""Admin for the operator controls over dispatch. Every save goes through ``workflows.engine.controls`` (so it is
logged and wakes the engine) like the API; the admin never writes these rows itself."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.core.validators import MinValueValidator

from opscore_project.errors import ApiError
from workflows import control_selectors as selectors
from workflows.engine import controls
from workflows.models import CapabilityLimit, DispatchControl, WorkflowControl, WorkflowDefinition


class WorkflowControlForm(forms.ModelForm):
    paused = forms.BooleanField(
        required=False, help_text="New sessions wait as pending (running sessions finish) until unticked."
    )

    class Meta:
        model = WorkflowControl
        fields = ["workflow_id", "paused", "reject_when_paused", "pause_reason", "max_running_sessions"]

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["paused"].initial = bool(self.instance.pk and self.instance.paused_at)
        if self.instance.pk:
            self.fields["workflow_id"].disabled = True
        self.fields["max_running_sessions"].validators.append(MinValueValidator(1))

    def clean_workflow_id(self) -> str:
        workflow_id = self.cleaned_data["workflow_id"]
        if not WorkflowDefinition.objects.filter(workflow_id=workflow_id).exists():
            raise forms.ValidationError(f"No workflow definition {workflow_id!r}.")
        return workflow_id


@admin.register(WorkflowControl)
class WorkflowControlAdmin(admin.ModelAdmin):
    form = WorkflowControlForm
    list_display = (
        "workflow_id",
        "is_paused",
        "reject_when_paused",
        "max_running_sessions",
        "running_sessions",
        "pending_sessions",
        "updated_at",
    )
    search_fields = ("workflow_id",)
    actions = ["pause_workflows", "resume_workflows"]

    @admin.display(boolean=True, description="Paused")
    def is_paused(self, obj: WorkflowControl) -> bool:
        return obj.paused_at is not None

    @admin.display(description="Running")
    def running_sessions(self, obj: WorkflowControl) -> int:
        return selectors.workflow_control_as_dict(obj)["runningSessions"]

    @admin.display(description="Pending")
    def pending_sessions(self, obj: WorkflowControl) -> int:
        return selectors.workflow_control_as_dict(obj)["pendingSessions"]

    def save_model(self, request, obj, form, change):
        data = form.cleaned_data
        workflow_id = obj.workflow_id
        try:
            controls.workflow_limits_set(workflow_id=workflow_id, max_running_sessions=data["max_running_sessions"])
            if data["paused"]:
                controls.workflow_pause(
                    workflow_id=workflow_id,
                    reject_when_paused=data["reject_when_paused"],
                    reason=data["pause_reason"],
                )
            else:
                controls.workflow_resume(workflow_id=workflow_id)
        except ApiError as exc:
            self.message_user(request, exc.message, messages.ERROR)
            raise
        saved = WorkflowControl.objects.get(workflow_id=workflow_id)
        obj.pk = saved.pk
        obj.__dict__.update({k: v for k, v in saved.__dict__.items() if not k.startswith("_")})

    def delete_model(self, request, obj):
        controls.workflow_resume(workflow_id=obj.workflow_id)
        controls.workflow_limits_set(workflow_id=obj.workflow_id, max_running_sessions=None)
        obj.delete()

    def delete_queryset(self, request, queryset):
        for obj in queryset:
            self.delete_model(request, obj)

    @admin.action(description="Pause selected workflows (new sessions wait)")
    def pause_workflows(self, request, queryset):
        for obj in queryset:
            controls.workflow_pause(workflow_id=obj.workflow_id)
        self.message_user(request, f"{queryset.count()} workflow(s) paused.", messages.SUCCESS)

    @admin.action(description="Resume selected workflows")
    def resume_workflows(self, request, queryset):
        for obj in queryset:
            controls.workflow_resume(workflow_id=obj.workflow_id)
        self.message_user(request, f"{queryset.count()} workflow(s) resumed.", messages.SUCCESS)


class DispatchControlForm(forms.ModelForm):
    paused = forms.BooleanField(
        required=False, help_text="Maintenance mode: no engine dispatches anything; state reports are still applied."
    )

    class Meta:
        model = DispatchControl
        fields = ["paused", "reason"]

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["paused"].initial = bool(self.instance.paused_at)


@admin.register(DispatchControl)
class DispatchControlAdmin(admin.ModelAdmin):
    form = DispatchControlForm
    list_display = ("__str__", "paused_at", "reason", "updated_at")

    def has_add_permission(self, request) -> bool:
        return not DispatchControl.objects.exists()

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    def save_model(self, request, obj, form, change):
        if form.cleaned_data["paused"]:
            saved = controls.dispatch_pause(reason=form.cleaned_data["reason"])
        else:
            saved = controls.dispatch_resume()
        obj.pk = saved.pk
        obj.__dict__.update({k: v for k, v in saved.__dict__.items() if not k.startswith("_")})


class CapabilityLimitForm(forms.ModelForm):
    class Meta:
        model = CapabilityLimit
        fields = ["capability", "max_in_flight"]

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["max_in_flight"].validators.append(MinValueValidator(1))
        if self.instance.pk:
            self.fields["capability"].disabled = True


@admin.register(CapabilityLimit)
class CapabilityLimitAdmin(admin.ModelAdmin):
    form = CapabilityLimitForm
    list_display = ("capability", "max_in_flight", "in_flight", "updated_at")
    search_fields = ("capability",)

    @admin.display(description="In flight")
    def in_flight(self, obj: CapabilityLimit) -> int:
        return selectors.capability_limit_as_dict(obj)["inFlight"]

    def save_model(self, request, obj, form, change):
        saved = controls.capability_limit_set(capability=obj.capability, max_in_flight=obj.max_in_flight)
        obj.pk = saved.pk
        obj.__dict__.update({k: v for k, v in saved.__dict__.items() if not k.startswith("_")})

    def delete_model(self, request, obj):
        controls.capability_limit_delete(capability=obj.capability)

    def delete_queryset(self, request, queryset):
        for obj in queryset:
            controls.capability_limit_delete(capability=obj.capability)
