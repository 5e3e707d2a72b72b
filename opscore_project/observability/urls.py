from django.urls import path

from opscore_project.observability import apis, views
from opscore_project.observability.fleet import views as fleet_views

# Included at the root by opscore_project.urls (the events API lives under /v1/opscore/).
urlpatterns = [
    path("v1/opscore/events", apis.EventListApi.as_view(), name="event-list"),
    path("dashboard/", fleet_views.overview_page, name="dashboard"),
    path("dashboard/overview.json", fleet_views.overview_data, name="dashboard-overview-data"),
    path("dashboard/events/", views.events_page, name="dashboard-events"),
    path("dashboard/dispatch/", views.dispatch_page, name="dashboard-dispatch"),
    path("dashboard/inbox/", views.inbox_page, name="dashboard-inbox"),
    path("dashboard/sessions/", fleet_views.sessions_page, name="dashboard-sessions"),
    path("dashboard/sessions/<str:session_id>/", views.session_detail, name="dashboard-session"),
    path("dashboard/agents/<str:agent_id>/", fleet_views.agent_page, name="dashboard-agent"),
    path("dashboard/workflows/<str:workflow_id>/", fleet_views.workflow_page, name="dashboard-workflow"),
]
