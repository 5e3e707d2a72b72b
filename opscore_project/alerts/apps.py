from django.apps import AppConfig


class AlertsConfig(AppConfig):
    name = "opscore_project.alerts"
    label = "alerts"
    verbose_name = "Alerts"
