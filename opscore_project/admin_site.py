from django.contrib import admin
from django.contrib.admin.apps import AdminConfig
from django.urls import NoReverseMatch, reverse


class OpsCoreAdminSite(admin.AdminSite):
    site_header = "Ops-Core"
    site_title = "Ops-Core"
    index_template = "admin/opscore_index.html"

    def index(self, request, extra_context=None):
        from lifecycle.selectors import agent_counts_by_state

        try:
            dashboard_url = reverse("dashboard")
        except NoReverseMatch:
            dashboard_url = None
        context = {"agent_state_counts": agent_counts_by_state(), "dashboard_url": dashboard_url}
        context.update(extra_context or {})
        return super().index(request, extra_context=context)


class OpsCoreAdminConfig(AdminConfig):
    default_site = "opscore_project.admin_site.OpsCoreAdminSite"
