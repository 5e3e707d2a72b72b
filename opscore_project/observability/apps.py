from django.apps import AppConfig


class ObservabilityConfig(AppConfig):
    name = "opscore_project.observability"
    label = "observability"
    verbose_name = "Operation log"

    def ready(self) -> None:
        from opscore_project.observability import celery_signals  # noqa: F401 - connects the signal handlers
