from django.urls import path

from lifecycle import apis

urlpatterns = [
    path("agent/<str:agent_id>/state", apis.AgentStateApi.as_view(), name="agent-state"),
    path("agents", apis.AgentListApi.as_view(), name="agent-list"),
    path("agents/<str:agent_id>", apis.AgentDetailApi.as_view(), name="agent-detail"),
    path("agents/<str:agent_id>/history", apis.AgentHistoryApi.as_view(), name="agent-history"),
]
