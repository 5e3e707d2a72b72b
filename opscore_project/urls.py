from django.conf import settings
from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerView

from opscore_project.alerts.views import alerts_page
from opscore_project.health import health
from opscore_project.observability.metrics import metrics_view

urlpatterns = [
    path("health", health, name="health"),
    path("v1/opscore/", include("lifecycle.urls")),
    path("v1/opscore/", include("agentkit_bridge.urls")),
    path("v1/opscore/", include("workflows.urls")),
    path("v1/opscore/", include("opscore_project.alerts.urls")),
    path("metrics", metrics_view, name="metrics"),
    path("", include("opscore_project.observability.urls")),
    path("dashboard/alerts/", alerts_page, name="dashboard-alerts"),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="swagger-ui"),
    path("api/redoc/", SpectacularRedocView.as_view(url_name="schema"), name="redoc"),
    path("admin/", admin.site.urls),
]

if settings.OPSCORE_BENCHMARK_ENDPOINTS:
    from opscore_project.bench_views import BareApi

    urlpatterns.append(path("v1/opscore/bench/bare", BareApi.as_view()))

handler404 = "opscore_project.views.not_found"
handler500 = "opscore_project.views.server_error"
