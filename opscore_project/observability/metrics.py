"""``GET /metrics``: Prometheus text format, computed from Postgres at scrape time.

A custom collector reads gauges (agents by state, sessions and task runs by status, state reports in the last
minute) and counters (``observability.MetricCounter`` rows written by ``log_operation``) from the database, so
every web and worker process is counted without prometheus_client's multi-process directory.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterator

from django.apps import apps
from django.conf import settings
from django.db.models import Count, Max
from django.http import HttpRequest, HttpResponse
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector

from opscore_project.authn.authentication import missing_scope_message
from opscore_project.authn.plain import bearer_principal, forbidden, scope_refusal
from opscore_project.authn.scopes import METRICS, scopes_for_user
from opscore_project.errors import WWW_AUTHENTICATE, json_error
from opscore_project.observability.counters import counters_flush
from opscore_project.observability.models import MetricCounter
from opscore_project.observability.oplog import TASK_DURATION_BUCKETS
from opscore_project.observability.selectors import state_reports_last_minute, task_duration_histogram


def _model(app_label: str, name: str):
    try:
        return apps.get_model(app_label, name)
    except LookupError:
        return None


class OpsCoreCollector(Collector):
    def describe(self) -> list[Metric]:
        return []  # do not query the database when the collector is registered

    def collect(self) -> Iterator[Metric]:
        from lifecycle.models import Agent

        agents = GaugeMetricFamily(
            "opscore_agents", "Agents by current state (unknown = no report yet).", labels=["state"]
        )
        for row in Agent.objects.values("state").annotate(n=Count("id")).order_by("state"):
            agents.add_metric([row["state"] or "unknown"], row["n"])
        yield agents
        registered = GaugeMetricFamily("opscore_agents_registered", "Agents not deregistered.")
        registered.add_metric([], Agent.objects.filter(deregistered_at__isnull=True).count())
        yield registered

        for model_name, metric, help_text in (
            ("WorkflowSession", "opscore_sessions", "Workflow sessions by status."),
            ("TaskRun", "opscore_task_runs", "Task runs by status."),
        ):
            family = GaugeMetricFamily(metric, help_text, labels=["status"])
            model = _model("workflows", model_name)
            if model is not None and any(f.name == "status" for f in model._meta.fields):
                for row in model.objects.values("status").annotate(n=Count("pk")).order_by("status"):
                    family.add_metric([str(row["status"])], row["n"])
            yield family

        reports = GaugeMetricFamily(
            "opscore_state_reports_last_minute", "State reports received in the last 60 seconds."
        )
        reports.add_metric([], state_reports_last_minute())
        yield reports
        rate = GaugeMetricFamily("opscore_state_reports_per_second", "State reports per second over the last minute.")
        rate.add_metric([], reports.samples[0].value / 60)
        yield rate

        yield from self._counters()

    def _bridge(self) -> Iterator[Metric]:
        """Dispatch attempts (append-only ``DispatchAttempt`` rows) and polling syncs (``SyncRun`` rows, which the
        bridge prunes: hence gauges of the retained runs plus the time of the last run per outcome)."""
        attempts = CounterMetricFamily(
            "opscore_dispatch_attempts", "Task dispatch attempts to AgentKit, by outcome.", labels=["outcome"]
        )
        failures = CounterMetricFamily(
            "opscore_dispatch_failures", "Dispatch attempts that failed (retrying or failed for good)."
        )
        failed = 0
        dispatch_attempt = _model("agentkit_bridge", "DispatchAttempt")
        if dispatch_attempt is not None:
            for row in dispatch_attempt.objects.values("outcome").annotate(n=Count("pk")).order_by("outcome"):
                attempts.add_metric([row["outcome"]], row["n"])
                if row["outcome"] != "accepted":
                    failed += row["n"]
        failures.add_metric([], failed)
        yield attempts
        yield failures

        runs = GaugeMetricFamily(
            "opscore_sync_runs_retained", "AgentKit polling syncs still on record, by outcome.", labels=["outcome"]
        )
        last = GaugeMetricFamily(
            "opscore_sync_last_run_timestamp_seconds", "Start of the latest sync with this outcome.", labels=["outcome"]
        )
        sync_run = _model("agentkit_bridge", "SyncRun")
        if sync_run is not None:
            rows = sync_run.objects.values("outcome").annotate(n=Count("pk"), last=Max("started_at"))
            for row in rows.order_by("outcome"):
                runs.add_metric([row["outcome"]], row["n"])
                last.add_metric([row["outcome"]], row["last"].timestamp())
        yield runs
        yield last

    def _counters(self) -> Iterator[Metric]:
        counters_flush()  # this process's own buffered increments first
        counters: dict[str, dict[str, float]] = defaultdict(dict)
        for counter in MetricCounter.objects.all():
            counters[counter.name][counter.labels] = counter.value

        def labels_of(key: str) -> dict[str, str]:
            return dict(part.split("=", 1) for part in key.split(",") if "=" in part)

        events_total = CounterMetricFamily(
            "opscore_operation_events", "Operation-log events recorded, by type and level.", labels=["type", "level"]
        )
        for key, value in sorted(counters["operation_events_total"].items()):
            labels = labels_of(key)
            events_total.add_metric([labels.get("type", ""), labels.get("level", "")], value)
        yield events_total
        yield from self._bridge()

        histogram = HistogramMetricFamily(
            "opscore_task_duration_seconds", "Run time of finished task runs, by final status.", labels=["status"]
        )
        from_runs = task_duration_histogram(TASK_DURATION_BUCKETS)
        if from_runs is not None:
            # The engine's task runs are the truth (run time = ended_at - started/accepted/dispatched).
            for status, data in from_runs.items():
                labels = [*(str(le) for le in TASK_DURATION_BUCKETS), "+Inf"]
                histogram.add_metric(
                    [status], list(zip(labels, [*data["buckets"], data["count"]], strict=True)), data["sum"]
                )
            yield histogram
            return
        # Without the engine: from the duration_ms of task-ending events (counted by log_operation).
        bucket_counts: dict[str, dict[str, float]] = defaultdict(dict)
        for key, value in counters["task_duration_seconds_bucket"].items():
            labels = labels_of(key)
            bucket_counts[labels.get("status", "")][labels.get("le", "+Inf")] = value
        for key in sorted(counters["task_duration_seconds_count"]):
            status = labels_of(key).get("status", "")
            cumulative, buckets = 0.0, []
            for le in [*TASK_DURATION_BUCKETS, math.inf]:
                label = "+Inf" if le == math.inf else str(le)
                cumulative += bucket_counts[status].get(label, 0.0)
                buckets.append((label, cumulative))
            total = counters["task_duration_seconds_sum"].get(key, 0.0)
            histogram.add_metric([status], buckets, total)
        yield histogram


def _refusal(request: HttpRequest) -> HttpResponse | None:
    """None when the caller may scrape: the ``metrics`` scope (Bearer token, or a staff session)."""
    if settings.OPSCORE_METRICS_PUBLIC:
        return None
    header = request.META.get("HTTP_AUTHORIZATION")
    if header:
        principal = bearer_principal(request.META, header)
        if isinstance(principal, HttpResponse):
            return principal
        return scope_refusal(principal, METRICS)
    user = getattr(request, "user", None)
    if user is not None and user.is_authenticated:
        return None if METRICS in scopes_for_user(user) else forbidden(missing_scope_message(METRICS))
    response = json_error("not_authenticated", "Authentication credentials were not provided.", 401)
    response["WWW-Authenticate"] = WWW_AUTHENTICATE
    return response


def metrics_view(request: HttpRequest) -> HttpResponse:
    """Prometheus scrape endpoint: the ``metrics`` scope (token or staff session), or OPSCORE_METRICS_PUBLIC=true."""
    if request.method not in ("GET", "HEAD"):
        response = json_error("method_not_allowed", f"Method {request.method} not allowed; allowed: GET.", 405)
        response["Allow"] = "GET, HEAD"
        return response
    refusal = _refusal(request)
    if refusal is not None:
        return refusal
    registry = CollectorRegistry(auto_describe=False)
    registry.register(OpsCoreCollector())
    return HttpResponse(generate_latest(registry), content_type=CONTENT_TYPE_LATEST)
