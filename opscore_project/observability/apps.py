from django.apps import AppConfig


class ObservabilityConfig(AppConfig):
    name = "opscore_project.observability"
    label = "observability"
    verbose_name = "Operation log"
