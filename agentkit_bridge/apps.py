from django.apps import AppConfig


class AgentkitBridgeConfig(AppConfig):
    name = "agentkit_bridge"
