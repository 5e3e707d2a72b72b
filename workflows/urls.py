from django.urls import path

from workflows import apis

urlpatterns = [
    path("agent/<str:agent_id>/workflow", apis.AgentWorkflowApi.as_view(), name="agent-workflow"),
    path("workflows", apis.WorkflowListApi.as_view(), name="workflow-list"),
    path("workflows/<str:workflow_id>", apis.WorkflowDetailApi.as_view(), name="workflow-detail"),
    path("workflows/<str:workflow_id>/versions", apis.WorkflowVersionsApi.as_view(), name="workflow-versions"),
    path("workflows/<str:workflow_id>/run", apis.WorkflowRunApi.as_view(), name="workflow-run"),
    path("sessions", apis.SessionListApi.as_view(), name="session-list"),
    path("sessions/<str:session_id>", apis.SessionDetailApi.as_view(), name="session-detail"),
    path("sessions/<str:session_id>/cancel", apis.SessionCancelApi.as_view(), name="session-cancel"),
    path("sessions/<str:session_id>/retry", apis.SessionRetryApi.as_view(), name="session-retry"),
    path("sessions/<str:session_id>/tasks/<str:task_id>/input", apis.TaskInputApi.as_view(), name="task-input"),
    path("inbox", apis.InboxApi.as_view(), name="inbox"),
]
