from django.urls import path

from opscore_project.observability import apis, views

# Included at the root by opscore_project.urls (the events API lives under /v1/opscore/).
urlpatterns = [
    path("v1/opscore/events", apis.EventListApi.as_view(), name="event-list"),
    path("dashboard/", views.dashboard, name="dashboard"),
    path("dashboard/sessions/<str:session_id>/", views.session_detail, name="dashboard-session"),
    path("dashboard/agents/<str:agent_id>/", views.agent_redirect, name="dashboard-agent"),
]
