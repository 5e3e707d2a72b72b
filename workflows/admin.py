from __future__ import annotations

import json

import yaml
from django import forms
from django.contrib import admin, messages
from django.db.models import QuerySet

from opscore_project.errors import ApiError
from workflows import admin_controls, services
from workflows.engine.human import actor_for, answer_problems
from workflows.models import (
    CallbackDelivery,
    DefinitionSource,
    PendingHumanTask,
    TaskKind,
    TaskRun,
    TaskRunStatus,
    WorkflowDefinition,
    WorkflowSchedule,
    WorkflowSession,
)
from workflows.validation import DefinitionInvalid, content_hash, validate_definition

__all__ = ["admin_controls"]  # registers the dispatch controls' admin


class DefinitionForm(forms.ModelForm):
    """Paste a definition (JSON or YAML); it goes through the same validator as the API."""

    document = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 30, "cols": 100, "style": "font-family: monospace"}),
        help_text="The workflow definition as JSON or YAML. A version cannot be edited: publish a new one.",
    )

    class Meta:
        model = WorkflowDefinition
        fields: list[str] = []

    def clean_document(self) -> dict:
        text = self.cleaned_data["document"]
        try:
            data = yaml.safe_load(text)  # JSON is YAML too
        except yaml.YAMLError as exc:
            raise forms.ValidationError(f"Not valid JSON or YAML: {exc}") from exc
        try:
            spec = validate_definition(data)
        except DefinitionInvalid as exc:
            raise forms.ValidationError([f"{path}: {' '.join(msgs)}" for path, msgs in exc.errors.items()]) from exc
        existing = WorkflowDefinition.objects.filter(workflow_id=spec["id"], version=spec["version"]).first()
        if existing is not None and existing.content_hash != content_hash(spec):
            raise forms.ValidationError(
                f"{spec['id']} version {spec['version']} already exists with different content: publish a new version."
            )
        return data


@admin.register(WorkflowDefinition)
class WorkflowDefinitionAdmin(admin.ModelAdmin):
    list_display = ("workflow_id", "version", "name", "source", "created_at")
    list_filter = ("source",)
    search_fields = ("workflow_id", "name")
    readonly_fields = ("workflow_id", "version", "name", "description", "source", "created_at", "pretty_spec")
    form = DefinitionForm

    def get_form(self, request, obj=None, **kwargs):
        if obj is not None:  # versions are immutable: show, never edit
            kwargs["form"] = forms.ModelForm
            kwargs["fields"] = []
        return super().get_form(request, obj, **kwargs)

    def get_fields(self, request, obj=None):
        if obj is None:
            return ["document"]
        return list(self.readonly_fields)

    def get_readonly_fields(self, request, obj=None):
        return self.readonly_fields if obj is not None else ()

    @admin.display(description="Definition")
    def pretty_spec(self, obj: WorkflowDefinition) -> str:
        from django.utils.html import format_html

        return format_html("<pre>{}</pre>", json.dumps(obj.spec, indent=2))

    def save_model(self, request, obj, form, change):
        if change:
            return
        try:
            definition, created = services.definition_create(
                data=form.cleaned_data["document"], source=DefinitionSource.ADMIN
            )
        except ApiError as exc:
            self.message_user(request, f"{exc.message} {exc.errors or ''}", messages.ERROR)
            raise
        obj.pk = definition.pk
        obj.__dict__.update({k: v for k, v in definition.__dict__.items() if not k.startswith("_")})
        if not created:
            self.message_user(request, "This version already existed with identical content.", messages.INFO)


class TaskRunInline(admin.TabularInline):
    model = TaskRun
    fk_name = "session"
    extra = 0
    can_delete = False
    fields = (
        "task_id",
        "attempt",
        "status",
        "agent",
        "answered_by",
        "answered_at",
        "answered_via",
        "ready_at",
        "dispatched_at",
        "accepted_at",
        "started_at",
        "ended_at",
        "error",
        "result",
    )
    readonly_fields = fields
    ordering = ("created_at", "attempt")

    def has_add_permission(self, request, obj=None) -> bool:
        return False


@admin.register(WorkflowSession)
class WorkflowSessionAdmin(admin.ModelAdmin):
    list_display = ("id", "workflow_id", "status", "agent", "created_at", "started_at", "ended_at")
    list_filter = ("status", "workflow_id")
    search_fields = ("id", "workflow_id", "agent__agent_id")
    date_hierarchy = "created_at"
    inlines = [TaskRunInline]
    actions = ["cancel_sessions", "retry_sessions"]
    readonly_fields = (
        "id",
        "definition",
        "workflow_id",
        "agent",
        "status",
        "initial_payload",
        "callback_url",
        "idempotency_key",
        "schedule",
        "error",
        "retry_round",
        "created_at",
        "started_at",
        "ended_at",
    )

    def has_add_permission(self, request) -> bool:
        return False

    def _each(self, request, queryset: QuerySet, service, verb: str) -> None:
        done = 0
        for session in queryset:
            try:
                service(session_id=session.pk)
                done += 1
            except ApiError as exc:
                self.message_user(request, f"{session.pk}: {exc.message}", messages.WARNING)
        if done:
            self.message_user(request, f"{done} session(s) {verb}.", messages.SUCCESS)

    @admin.action(description="Cancel selected sessions")
    def cancel_sessions(self, request, queryset):
        self._each(request, queryset, services.session_cancel, "cancelled")

    @admin.action(description="Retry selected failed sessions from their failed step(s)")
    def retry_sessions(self, request, queryset):
        self._each(request, queryset, services.session_retry, "retried")


class ScheduleForm(forms.ModelForm):
    class Meta:
        model = WorkflowSchedule
        fields = [
            "name",
            "workflow_id",
            "version",
            "agent",
            "initial_payload",
            "cron",
            "interval_seconds",
            "enabled",
            "allow_overlap",
        ]

    def clean(self):
        data = super().clean()
        problems = services.workflow_schedule_problems(
            cron=data.get("cron") or "", interval_seconds=data.get("interval_seconds")
        )
        for field, msgs in problems.items():
            self.add_error(field, msgs)
        workflow_id = data.get("workflow_id")
        if workflow_id and not WorkflowDefinition.objects.filter(workflow_id=workflow_id).exists():
            self.add_error("workflow_id", f"No workflow definition {workflow_id!r}.")
        return data


@admin.register(WorkflowSchedule)
class WorkflowScheduleAdmin(admin.ModelAdmin):
    form = ScheduleForm
    list_display = ("name", "workflow_id", "agent", "cron", "interval_seconds", "enabled", "last_run_at")
    list_filter = ("enabled",)
    raw_id_fields = ("agent",)

    def save_model(self, request, obj, form, change):
        services.workflow_schedule_save(schedule=obj)

    def delete_model(self, request, obj):
        services.workflow_schedule_delete(schedule=obj)

    def delete_queryset(self, request, queryset):
        for schedule in queryset:
            services.workflow_schedule_delete(schedule=schedule)


@admin.register(CallbackDelivery)
class CallbackDeliveryAdmin(admin.ModelAdmin):
    list_display = ("session", "attempt", "success", "status_code", "duration_ms", "created_at")
    list_filter = ("success",)
    readonly_fields = ("session", "url", "attempt", "status_code", "success", "error", "duration_ms", "created_at")

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


class AnswerForm(forms.ModelForm):
    """Answer one waiting human task: an option and a comment (approval) or a JSON value (input)."""

    option = forms.CharField(required=False, help_text="Approval: one of the task's options (approve, reject…).")
    comment = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 3, "cols": 80}))
    value = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 8, "cols": 80, "style": "font-family: monospace"}),
        help_text="Input: the value as a JSON object matching the task's inputSchema.",
    )

    class Meta:
        model = PendingHumanTask
        fields: list[str] = []

    def answer_body(self) -> dict:
        data = self.cleaned_data
        if self.instance.kind == TaskKind.APPROVAL:
            return {"option": data.get("option") or "", "comment": data.get("comment") or ""}
        try:
            return {"value": json.loads(data.get("value") or "")}
        except ValueError:
            return {"value": None}

    def clean(self):
        data = super().clean()
        if self.instance.kind == TaskKind.INPUT:
            try:
                json.loads(data.get("value") or "")
            except ValueError:
                self.add_error("value", "Not valid JSON.")
                return data
        for field, msgs in answer_problems(self.instance, self.answer_body()).items():
            self.add_error("option" if field == "option" else "comment" if field == "comment" else "value", msgs)
        return data


@admin.register(PendingHumanTask)
class PendingHumanTaskAdmin(admin.ModelAdmin):
    """Approval and input tasks waiting for a person. Open one to answer it (recorded as answered from the admin,
    by the logged-in user); select approvals to approve or reject them at once."""

    form = AnswerForm
    list_display = ("task_id", "kind", "prompt", "session", "assignees", "created_at", "timeout_at")
    list_filter = ("kind",)
    search_fields = ("task_id", "prompt", "session__workflow_id")
    actions = ["approve_tasks", "reject_tasks"]
    readonly_fields = ("session", "task_id", "kind", "prompt", "assignees", "created_at", "timeout_at", "schema")
    fields = (*readonly_fields, "option", "comment", "value")

    def get_queryset(self, request):
        return super().get_queryset(request).filter(status=TaskRunStatus.WAITING_FOR_INPUT).select_related("session")

    def has_add_permission(self, request) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    @admin.display(description="Options / input schema")
    def schema(self, obj: PendingHumanTask) -> str:
        from django.utils.html import format_html

        task = obj.session.definition.task(obj.task_id)
        shown = task.get("options") if obj.kind == TaskKind.APPROVAL else task.get("inputSchema")
        return format_html("<pre>{}</pre>", json.dumps(shown, indent=2))

    def _answer(self, request, run: TaskRun, body: dict) -> bool:
        try:
            services.human_task_answer(
                session_id=run.session_id, task_id=run.task_id, actor=actor_for(request.user), body=body,
                interface="admin",
            )  # fmt: skip
        except ApiError as exc:
            self.message_user(request, f"{run.task_id} of {run.session_id}: {exc.message} {exc.errors or ''}",
                              messages.WARNING)  # fmt: skip
            return False
        return True

    def save_model(self, request, obj, form, change):
        if self._answer(request, obj, form.answer_body()):
            self.message_user(request, f"Task {obj.task_id} answered.", messages.SUCCESS)

    def save_related(self, request, form, formsets, change):
        pass  # nothing related is edited here

    def _each(self, request, queryset: QuerySet, option: str) -> None:
        done = sum(
            self._answer(request, run, {"option": option, "comment": ""})
            for run in queryset
            if run.kind == TaskKind.APPROVAL
        )
        if done:
            self.message_user(request, f"{done} task(s) answered {option}.", messages.SUCCESS)

    @admin.action(description="Approve selected approval tasks")
    def approve_tasks(self, request, queryset):
        self._each(request, queryset, "approve")

    @admin.action(description="Reject selected approval tasks")
    def reject_tasks(self, request, queryset):
        self._each(request, queryset, "reject")
