"""The staff dashboard page listing alerts with their deliveries."""

from __future__ import annotations

from django.contrib.admin.views.decorators import staff_member_required
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from opscore_project.alerts import selectors
from opscore_project.alerts.models import AlertStatus

PAGE_SIZE = 50


@staff_member_required
def alerts_page(request: HttpRequest) -> HttpResponse:
    """Alerts newest first (optionally only firing or resolved), each with its deliveries and their attempts."""
    status = request.GET.get("status", "")
    if status not in AlertStatus.values:
        status = ""
    page = Paginator(selectors.alert_list(status=status or None), PAGE_SIZE).get_page(request.GET.get("page"))
    context = {
        "page": page,
        "status": status,
        "statuses": AlertStatus.values,
        "rules": selectors.rule_list(),
        "firing": selectors.alert_list(status=AlertStatus.FIRING).count(),
    }
    return render(request, "alerts/alerts.html", context)
