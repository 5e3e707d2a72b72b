"""Django's own 404/500 answers in the API's error shape for API paths, HTML elsewhere."""

import sys

from django.views import defaults

from opscore_project.errors import DATABASE_DOWN, DATABASE_DOWN_ERROR, DATABASE_DOWN_RETRY_AFTER, json_error

_API_PREFIXES = ("/v1/", "/api/", "/health", "/metrics")


def not_found(request, exception=None):
    if request.path.startswith(_API_PREFIXES):
        return json_error("not_found", f"No such endpoint: {request.path}", 404)
    return defaults.page_not_found(request, exception)


def server_error(request):
    if request.path.startswith(_API_PREFIXES):
        # Django calls this inside its except block: an unreachable database is 503, not a bug (see errors.py).
        if isinstance(sys.exc_info()[1], DATABASE_DOWN):
            response = json_error(*DATABASE_DOWN_ERROR, 503)
            response["Retry-After"] = str(DATABASE_DOWN_RETRY_AFTER)
            return response
        return json_error("internal_error", "Internal server error.", 500)
    return defaults.server_error(request)
