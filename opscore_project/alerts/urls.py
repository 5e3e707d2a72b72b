from django.urls import path

from opscore_project.alerts import apis

urlpatterns = [
    path("alerts", apis.AlertListApi.as_view(), name="alert-list"),
    path("alerts/rules", apis.AlertRuleListApi.as_view(), name="alert-rule-list"),
    path("alerts/rules/<str:rule_id>", apis.AlertRuleDetailApi.as_view(), name="alert-rule-detail"),
]
