from django.urls import path

from workflows import apis, control_apis

urlpatterns = [
    path("agent/<str:agent_id>/workflow", apis.AgentWorkflowApi.as_view(), name="agent-workflow"),
    path("workflows", apis.WorkflowListApi.as_view(), name="workflow-list"),
    path("workflows/<str:workflow_id>", apis.WorkflowDetailApi.as_view(), name="workflow-detail"),
    path("workflows/<str:workflow_id>/versions", apis.WorkflowVersionsApi.as_view(), name="workflow-versions"),
    path("workflows/<str:workflow_id>/run", apis.WorkflowRunApi.as_view(), name="workflow-run"),
    path("workflows/<str:workflow_id>/controls", control_apis.WorkflowControlApi.as_view(), name="workflow-controls"),
    path("workflows/<str:workflow_id>/pause", control_apis.WorkflowPauseApi.as_view(), name="workflow-pause"),
    path("workflows/<str:workflow_id>/resume", control_apis.WorkflowResumeApi.as_view(), name="workflow-resume"),
    path("workflows/<str:workflow_id>/limits", control_apis.WorkflowLimitsApi.as_view(), name="workflow-limits"),
    path("dispatch", control_apis.DispatchStatusApi.as_view(), name="dispatch-status"),
    path("dispatch/pause", control_apis.DispatchPauseApi.as_view(), name="dispatch-pause"),
    path("dispatch/resume", control_apis.DispatchResumeApi.as_view(), name="dispatch-resume"),
    path("dispatch/waiting", control_apis.WaitingRunsApi.as_view(), name="dispatch-waiting"),
    path("capability-limits", control_apis.CapabilityLimitListApi.as_view(), name="capability-limit-list"),
    path("capability-limits/<str:capability>", control_apis.CapabilityLimitApi.as_view(), name="capability-limit"),
    path("sessions", apis.SessionListApi.as_view(), name="session-list"),
    path("sessions/<str:session_id>", apis.SessionDetailApi.as_view(), name="session-detail"),
    path("sessions/<str:session_id>/cancel", apis.SessionCancelApi.as_view(), name="session-cancel"),
    path("sessions/<str:session_id>/retry", apis.SessionRetryApi.as_view(), name="session-retry"),
    path("sessions/<str:session_id>/tasks/<str:task_id>/input", apis.TaskInputApi.as_view(), name="task-input"),
    path("inbox", apis.InboxApi.as_view(), name="inbox"),
]
