from django.apps import AppConfig


class AuthnConfig(AppConfig):
    name = "opscore_project.authn"
    label = "authn"
    verbose_name = "API access"
