"""A trivial DRF POST with no database work: the baseline the state-report benchmark compares against.

Routed only when OPSCORE_BENCHMARK_ENDPOINTS=true.
"""

from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView


class BareApi(APIView):
    authentication_classes: list = []
    permission_classes = [AllowAny]

    def post(self, request):
        return Response({"status": "success"}, status=202)
