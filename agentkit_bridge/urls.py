from django.urls import path

from agentkit_bridge import apis

urlpatterns = [
    path("internal/agent/notify", apis.AgentNotifyApi.as_view(), name="agentkit-notify"),
]
