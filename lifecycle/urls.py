from django.urls import path

from lifecycle import apis

urlpatterns = [
    path("agent/<str:agent_id>/state", apis.AgentStateApi.as_view(), name="agent-state"),
    path("agents", apis.AgentListApi.as_view(), name="agent-list"),
    path("agents/<str:agent_id>", apis.AgentDetailApi.as_view(), name="agent-detail"),
    path("agents/<str:agent_id>/history", apis.AgentHistoryApi.as_view(), name="agent-history"),
    path("agents/<str:agent_id>/drain", apis.AgentDrainApi.as_view(), name="agent-drain"),
    path("agents/<str:agent_id>/undrain", apis.AgentUndrainApi.as_view(), name="agent-undrain"),
    path("agents/<str:agent_id>/quarantine", apis.AgentQuarantineApi.as_view(), name="agent-quarantine"),
    path("agents/<str:agent_id>/release", apis.AgentReleaseApi.as_view(), name="agent-release"),
    path("agents/<str:agent_id>/capabilities", apis.AgentCapabilitiesApi.as_view(), name="agent-capabilities"),
]
