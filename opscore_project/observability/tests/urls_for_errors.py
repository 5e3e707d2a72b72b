"""The project's URLs plus views that fail on purpose (used with ``@pytest.mark.urls``)."""

from django.db import OperationalError
from django.urls import path
from rest_framework.parsers import JSONParser
from rest_framework.response import Response
from rest_framework.views import APIView

from opscore_project.urls import handler404, handler500  # noqa: F401
from opscore_project.urls import urlpatterns as project_urlpatterns


class BoomApi(APIView):
    required_scope = "agent"

    def get(self, request):
        raise RuntimeError("database password=hunter2 exploded")


class DatabaseDownApi(APIView):
    required_scope = "agent"

    def get(self, request):
        raise OperationalError('connection to server at "127.0.0.1", port 5432 failed: Connection refused')


def plain_database_down(request):
    raise OperationalError("FATAL:  the database system is shutting down")


class EchoApi(APIView):
    required_scope = "agent"
    parser_classes = [JSONParser]

    def post(self, request):
        return Response({"received": request.data})


def plain_boom(request):
    raise ValueError("plain view failure")


urlpatterns = [
    path("v1/opscore/test/boom", BoomApi.as_view()),
    path("v1/opscore/test/echo", EchoApi.as_view()),
    path("v1/opscore/test/plain-boom", plain_boom),
    path("v1/opscore/test/db-down", DatabaseDownApi.as_view()),
    path("v1/opscore/test/plain-db-down", plain_database_down),
    *project_urlpatterns,
]
