import logging

from django.apps import AppConfig

logger = logging.getLogger(__name__)


class WorkflowsConfig(AppConfig):
    name = "workflows"

    def ready(self) -> None:
        from lifecycle.hooks import register_state_listener
        from workflows.listeners import on_dispatch_outcome, on_state_report

        register_state_listener(on_state_report)
        try:
            from agentkit_bridge.hooks import register_dispatch_listener
        except ImportError:  # the bridge's hooks land separately; without them outcomes arrive by timeout only
            logger.warning("agentkit_bridge.hooks not available: dispatch outcomes are not tracked")
        else:
            register_dispatch_listener(on_dispatch_outcome)
