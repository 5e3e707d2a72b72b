from django.apps import AppConfig


class WorkflowsConfig(AppConfig):
    name = "workflows"

    def ready(self) -> None:
        from agentkit_bridge.hooks import register_dispatch_listener
        from lifecycle.hooks import register_agent_available_listener, register_state_listener, register_state_probe
        from workflows.engine import reports
        from workflows.listeners import on_dispatch_outcomes, on_state_report

        register_state_probe(
            reports.ENGINE_INBOX_PROBE,
            reports.ENGINE_INBOX_EXPRESSION,
            cte=reports.ENGINE_INBOX_CTE,
            params=reports.engine_inbox_params,
        )
        register_state_listener(on_state_report)
        register_dispatch_listener(on_dispatch_outcomes)
        # An agent back in rotation (undrained, released) may take waiting tasks right away.
        register_agent_available_listener(lambda agent_id: reports.engine_wake())
