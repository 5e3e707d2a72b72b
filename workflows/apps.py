from django.apps import AppConfig


class WorkflowsConfig(AppConfig):
    name = "workflows"

    def ready(self) -> None:
        from agentkit_bridge.hooks import register_dispatch_listener
        from lifecycle.hooks import register_state_listener
        from workflows.listeners import on_dispatch_outcome, on_state_report

        register_state_listener(on_state_report)
        register_dispatch_listener(on_dispatch_outcome)
