"""Ops-Core settings: one module, every value from the environment (docs/configuration.md lists every variable)."""

from __future__ import annotations

import sys
from pathlib import Path

import dj_database_url

from opscore_project.lib.env import (
    ConfigurationError,
    env_bool,
    env_float,
    env_int,
    env_list,
    env_str,
    weak_secrets,
)

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(env_str("OPSCORE_VAR_DIR", str(BASE_DIR / "var")))

DEBUG = env_bool("DEBUG", False)
# True only inside the test runner (pytest imported). Test subprocesses (Celery workers) get their secrets passed
# explicitly by opscore_project.testing; nothing in the environment can switch this on.
TESTING = "pytest" in sys.modules
_DEV_MODE = DEBUG or TESTING

# --- secrets: required outside DEBUG/tests -------------------------------------------------------------------
_INSECURE_DEV_SECRET = "insecure-dev-only-secret-key-change-me"
SECRET_KEY = env_str("SECRET_KEY") or (_INSECURE_DEV_SECRET if _DEV_MODE else "")
OPSCORE_API_KEY = env_str("OPSCORE_API_KEY") or ("dev-api-key" if _DEV_MODE else "")
# Unset means the registration webhook refuses every call (503) rather than accept unsigned ones.
OPSCORE_WEBHOOK_SECRET = env_str("OPSCORE_WEBHOOK_SECRET")
# Signs completion callbacks; falls back to OPSCORE_WEBHOOK_SECRET. Unset both: callbacks go unsigned.
OPSCORE_CALLBACK_SECRET = env_str("OPSCORE_CALLBACK_SECRET")

_missing = [name for name, value in (("SECRET_KEY", SECRET_KEY), ("OPSCORE_API_KEY", OPSCORE_API_KEY)) if not value]
if _missing:
    raise ConfigurationError(
        "Missing required setting(s) in production mode (DEBUG=false): "
        + ", ".join(_missing)
        + ". Set them in the environment (see .env.example), or set DEBUG=true for local development."
    )
if not _DEV_MODE:
    _weak = weak_secrets(
        {
            "SECRET_KEY": SECRET_KEY,
            "OPSCORE_API_KEY": OPSCORE_API_KEY,
            "OPSCORE_WEBHOOK_SECRET": OPSCORE_WEBHOOK_SECRET,
            "OPSCORE_CALLBACK_SECRET": OPSCORE_CALLBACK_SECRET,
        }
    )
    if _weak:
        raise ConfigurationError(
            "Refusing to start with DEBUG=false: "
            + "; ".join(_weak)
            + ". Generate one with: python -c 'import secrets; print(secrets.token_urlsafe(48))'"
        )

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]", "testserver"])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])

# --- HTTPS (docs/security.md, production checklist) ---------------------------------------------------------
# OPSCORE_BEHIND_TLS=true when clients reach Ops-Core over https (directly or through a TLS-terminating proxy):
# secure cookies, HSTS and the https redirect. The proxy header is trusted only when named explicitly.
OPSCORE_BEHIND_TLS = env_bool("OPSCORE_BEHIND_TLS", False)
SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = OPSCORE_BEHIND_TLS
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", OPSCORE_BEHIND_TLS)
# /health stays reachable over plain http for load balancers and container health checks.
SECURE_REDIRECT_EXEMPT = [r"^health$"]
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 31_536_000 if OPSCORE_BEHIND_TLS else 0, minimum=0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", OPSCORE_BEHIND_TLS)
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", OPSCORE_BEHIND_TLS)
_proxy_ssl_header = env_str("SECURE_PROXY_SSL_HEADER")  # e.g. "HTTP_X_FORWARDED_PROTO,https"
if _proxy_ssl_header:
    _header, _, _value = _proxy_ssl_header.partition(",")
    if not _header.strip() or not _value.strip():
        raise ConfigurationError(
            f"SECURE_PROXY_SSL_HEADER={_proxy_ssl_header!r}: use 'HEADER,value', e.g. HTTP_X_FORWARDED_PROTO,https"
        )
    SECURE_PROXY_SSL_HEADER = (_header.strip(), _value.strip())
SESSION_COOKIE_HTTPONLY = True
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True

# --- apps ----------------------------------------------------------------------------------------------------
INSTALLED_APPS = [
    "opscore_project.admin_site.OpsCoreAdminConfig",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_celery_beat",
    "opscore_project.authn",
    "opscore_project.observability",
    "lifecycle",
    "agentkit_bridge",
    "workflows",
    "opscore_project.alerts",
]

MIDDLEWARE = [
    # First: request id + one log line per request, timing the whole stack.
    "opscore_project.observability.middleware.RequestLogMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    # 400 naming the field for NUL characters anywhere in API input (Postgres cannot store them).
    "opscore_project.inputguard.NulCharacterGuardMiddleware",
    # Answers Bearer state reports (the hot path) before the session/CSRF/auth middleware and DRF; see the module.
    "lifecycle.fastpath.StateReportFastPathMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

# The AgentKit SDK treats a redirect as a failure (contract section 2): never append slashes.
APPEND_SLASH = False

ROOT_URLCONF = "opscore_project.urls"
WSGI_APPLICATION = "opscore_project.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "opscore_project" / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# --- database ------------------------------------------------------------------------------------------------
DATABASE_URL = env_str("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/opscore")
DATABASES = {
    "default": dj_database_url.parse(
        DATABASE_URL,
        conn_max_age=env_int("DB_CONN_MAX_AGE", 600, minimum=0),
        conn_health_checks=True,
    )
}
if DATABASES["default"]["ENGINE"].endswith("sqlite3"):
    # Embedded mode: several processes write at once. IMMEDIATE transactions take the write lock up front (a
    # deferred one that upgrades fails at once with "database is locked"), WAL lets readers run beside the writer.
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {"timeout": 20, "transaction_mode": "IMMEDIATE", "init_command": "PRAGMA journal_mode=WAL;"}
    )
IS_POSTGRES = DATABASES["default"]["ENGINE"].endswith("postgresql")
if IS_POSTGRES:
    # Statements run on a server-binding cursor (the state report write, opscore_project.lib.db) are prepared
    # on the server after this many runs on a connection. Django's ordinary cursors bind client-side and are
    # never prepared, whatever this says. Empty disables it (PgBouncer < 1.21 in transaction mode).
    _prepare_threshold = env_str("DB_PREPARE_THRESHOLD", "2").strip()
    DATABASES["default"].setdefault("OPTIONS", {})["prepare_threshold"] = (
        env_int("DB_PREPARE_THRESHOLD", 2, minimum=0) if _prepare_threshold else None
    )
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Celery --------------------------------------------------------------------------------------------------
REDIS_URL = env_str("REDIS_URL", "redis://127.0.0.1:6379/0")
CELERY_BROKER_URL = REDIS_URL
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_IGNORE_RESULT = True
CELERY_RESULT_BACKEND = None
CELERY_TIMEZONE = "UTC"
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# Workers log through LOGGING below (JSON lines with request ids), not Celery's own root handler.
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
# Countdowns (retry backoff) must stay below this, or Redis would redeliver the message early.
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 3600}
if REDIS_URL.startswith("filesystem://"):
    # Embedded mode: a file-based broker under var/ so Ops-Core runs without Redis.
    _broker_dir = VAR_DIR / "broker"
    for _sub in ("out", "processed", "control"):
        (_broker_dir / _sub).mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_URL = "filesystem://"
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_broker_dir / "out"),
        "data_folder_out": str(_broker_dir / "out"),
        "processed_folder": str(_broker_dir / "processed"),
        "control_folder": str(_broker_dir / "control"),
    }

# --- AgentKit ------------------------------------------------------------------------------------------------
AGENTKIT_API_URL = env_str("AGENTKIT_API_URL", "http://127.0.0.1:8000").rstrip("/")
AGENTKIT_POLL_INTERVAL = env_int("AGENTKIT_POLL_INTERVAL", 30, minimum=1)
AGENTKIT_CONNECT_TIMEOUT = env_float("AGENTKIT_CONNECT_TIMEOUT", 3.0, minimum=0.1)
AGENTKIT_READ_TIMEOUT = env_float("AGENTKIT_READ_TIMEOUT", 10.0, minimum=0.1)
AGENTKIT_DISPATCH_MAX_RETRIES = env_int("AGENTKIT_DISPATCH_MAX_RETRIES", 3, minimum=0)
AGENTKIT_DISPATCH_BACKOFF_SECONDS = env_float("AGENTKIT_DISPATCH_BACKOFF_SECONDS", 1.0, minimum=0.0)
OPSCORE_WEBHOOK_TOLERANCE_SECONDS = env_int("OPSCORE_WEBHOOK_TOLERANCE_SECONDS", 300, minimum=1)
# A webhook signature seen within this many seconds is a replay (no-op, logged). Must cover the tolerance both
# ways (a timestamp may be up to the tolerance in the future or the past).
OPSCORE_WEBHOOK_REPLAY_WINDOW_SECONDS = 2 * OPSCORE_WEBHOOK_TOLERANCE_SECONDS

# --- Ops-Core behaviour --------------------------------------------------------------------------------------
OPSCORE_AGENT_STALE_SECONDS = env_int("OPSCORE_AGENT_STALE_SECONDS", 600, minimum=1)
OPSCORE_TOKEN_CACHE_SECONDS = env_float("OPSCORE_TOKEN_CACHE_SECONDS", 5.0, minimum=0.0)
# A state report timestamped further ahead of the server clock is refused (400 naming `timestamp`): the newest
# timestamp wins, so one report from the future would freeze the agent's state until that time.
OPSCORE_MAX_CLOCK_SKEW_SECONDS = env_int("OPSCORE_MAX_CLOCK_SKEW_SECONDS", 300, minimum=0)
OPSCORE_BENCHMARK_ENDPOINTS = env_bool("OPSCORE_BENCHMARK_ENDPOINTS", False)

# --- workflows -----------------------------------------------------------------------------------------------
OPSCORE_TASK_TIMEOUT_SECONDS = env_float("OPSCORE_TASK_TIMEOUT_SECONDS", 300.0, minimum=0.01)
OPSCORE_TASK_QUEUE_TIMEOUT_SECONDS = env_float("OPSCORE_TASK_QUEUE_TIMEOUT_SECONDS", 600.0, minimum=0.01)
OPSCORE_WORKFLOW_SWEEP_SECONDS = env_int("OPSCORE_WORKFLOW_SWEEP_SECONDS", 5, minimum=1)
# A dispatched task whose agent reports no `active` within this time was never delivered (AgentKit answers 202
# and may still never deliver, contract 3): it goes to another agent. The real example agent reports `active`
# only when its work is done, so this also bounds how long such an agent may work before it counts as failed.
OPSCORE_TASK_START_TIMEOUT_SECONDS = env_float("OPSCORE_TASK_START_TIMEOUT_SECONDS", 120.0, minimum=0.01)
OPSCORE_TASK_MAX_REDELIVERIES = env_int("OPSCORE_TASK_MAX_REDELIVERIES", 2, minimum=0)
# The agents' circuit breaker (docs/operations.md#quarantine): failures in a row that quarantine an agent (0: never),
# the first cool-down, and the cap of the cool-down that doubles after each failed trial task.
OPSCORE_QUARANTINE_AFTER_FAILURES = env_int("OPSCORE_QUARANTINE_AFTER_FAILURES", 5, minimum=0)
OPSCORE_QUARANTINE_COOLDOWN_SECONDS = env_int("OPSCORE_QUARANTINE_COOLDOWN_SECONDS", 300, minimum=1)
OPSCORE_QUARANTINE_MAX_COOLDOWN_SECONDS = env_int("OPSCORE_QUARANTINE_MAX_COOLDOWN_SECONDS", 3600, minimum=1)
# The engine loop runs in every Celery worker (one is active at a time); it wakes on NOTIFY or after this long.
OPSCORE_ENGINE_IN_WORKER = env_bool("OPSCORE_ENGINE_IN_WORKER", True)
OPSCORE_ENGINE_TICK_SECONDS = env_float("OPSCORE_ENGINE_TICK_SECONDS", 0.5, minimum=0.01)
OPSCORE_ENGINE_BATCH = env_int("OPSCORE_ENGINE_BATCH", 500, minimum=1)
# While busy, engine steps start at most this often (they take whatever gathered meanwhile); idle: no delay.
OPSCORE_ENGINE_MIN_STEP_SECONDS = env_float("OPSCORE_ENGINE_MIN_STEP_SECONDS", 0.005, minimum=0.0)
# Threads of each engine loop that POST dispatches to AgentKit while the next step runs.
OPSCORE_RELAY_THREADS = env_int("OPSCORE_RELAY_THREADS", 16, minimum=1)
# A claimed dispatch not recorded within this time (its relay died) is sent again; above the /run timeouts.
OPSCORE_DISPATCH_LEASE_SECONDS = env_float("OPSCORE_DISPATCH_LEASE_SECONDS", 30.0, minimum=1.0)
OPSCORE_CALLBACK_MAX_ATTEMPTS = env_int("OPSCORE_CALLBACK_MAX_ATTEMPTS", 5, minimum=1)
OPSCORE_CALLBACK_BACKOFF_SECONDS = env_float("OPSCORE_CALLBACK_BACKOFF_SECONDS", 2.0, minimum=0.0)
OPSCORE_CALLBACK_TIMEOUT_SECONDS = env_float("OPSCORE_CALLBACK_TIMEOUT_SECONDS", 5.0, minimum=0.1)
# Callback safety (workflows/callback_safety.py): https only unless http is allowed; hosts resolving to private,
# loopback, link-local or metadata addresses are refused unless listed here (host names or CIDR ranges).
OPSCORE_CALLBACK_ALLOW_HTTP = env_bool("OPSCORE_CALLBACK_ALLOW_HTTP", False)
OPSCORE_CALLBACK_ALLOWED_HOSTS = env_list("OPSCORE_CALLBACK_ALLOWED_HOSTS", [])
OPSCORE_CALLBACK_MAX_RESPONSE_BYTES = env_int("OPSCORE_CALLBACK_MAX_RESPONSE_BYTES", 65_536, minimum=0)

# --- alerts (docs/alerts.md) ---------------------------------------------------------------------------------
# Rules are evaluated by a Celery beat task at this interval, never in the engine's path.
OPSCORE_ALERT_EVALUATE_SECONDS = env_int("OPSCORE_ALERT_EVALUATE_SECONDS", 15, minimum=1)
OPSCORE_ALERT_MAX_ATTEMPTS = env_int("OPSCORE_ALERT_MAX_ATTEMPTS", 6, minimum=1)
OPSCORE_ALERT_BACKOFF_SECONDS = env_float("OPSCORE_ALERT_BACKOFF_SECONDS", 5.0, minimum=0.0)
# Email alerts go through Django's email backend (SMTP unless another backend is named).
EMAIL_BACKEND = env_str("OPSCORE_EMAIL_BACKEND", "django.core.mail.backends.smtp.EmailBackend")
EMAIL_HOST = env_str("OPSCORE_EMAIL_HOST", "localhost")
EMAIL_PORT = env_int("OPSCORE_EMAIL_PORT", 25, minimum=1)
EMAIL_HOST_USER = env_str("OPSCORE_EMAIL_HOST_USER")
EMAIL_HOST_PASSWORD = env_str("OPSCORE_EMAIL_HOST_PASSWORD")
EMAIL_USE_TLS = env_bool("OPSCORE_EMAIL_USE_TLS", False)
EMAIL_TIMEOUT = 10
DEFAULT_FROM_EMAIL = env_str("OPSCORE_ALERT_EMAIL_FROM", "opscore@localhost")

# --- throttling (opscore_project/authn/throttling.py) ----------------------------------------------------------
# Failed authentications per client address, then 429 with Retry-After. Writes (POST/PUT/PATCH/DELETE through
# DRF) per API key or user. DRF rate syntax: "<n>/<second|minute|hour|day>"; empty disables that limit.
OPSCORE_THROTTLE_FAILED_AUTH = env_str("OPSCORE_THROTTLE_FAILED_AUTH", "30/minute")
OPSCORE_THROTTLE_WRITES = env_str("OPSCORE_THROTTLE_WRITES", "1200/minute")
# Throttle counters and seen webhook signatures live in the default cache (Redis in normal mode), under this
# namespace (tests give each test its own).
OPSCORE_CACHE_NAMESPACE = "opscore"
if REDIS_URL.startswith("filesystem://"):
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
else:
    CACHES = {
        "default": {
            "BACKEND": "opscore_project.lib.redis_cache.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": "opscore",
            "OPTIONS": {"socket_connect_timeout": 1, "socket_timeout": 1},
        }
    }

# --- DRF and OpenAPI -----------------------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "opscore_project.authn.authentication.BearerAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    # Every view declares the scope it needs (opscore_project.authn.permissions); a view that declares none is
    # refused to everyone, so a new endpoint cannot be open by accident.
    "DEFAULT_PERMISSION_CLASSES": ["opscore_project.authn.permissions.ScopePermission"],
    "DEFAULT_THROTTLE_CLASSES": ["opscore_project.authn.throttling.WriteRateThrottle"],
    "DEFAULT_THROTTLE_RATES": {"writes": OPSCORE_THROTTLE_WRITES or None},
    # Behind N reverse proxies that append X-Forwarded-For, the client address is the one the outermost saw.
    "NUM_PROXIES": env_int("OPSCORE_NUM_PROXIES", 0, minimum=0) or None,
    "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser"],
    "DEFAULT_RENDERER_CLASSES": [
        "rest_framework.renderers.JSONRenderer",
        "rest_framework.renderers.BrowsableAPIRenderer",
    ],
    "DEFAULT_PAGINATION_CLASS": "opscore_project.pagination.StandardPagination",
    "PAGE_SIZE": 50,
    "EXCEPTION_HANDLER": "opscore_project.errors.api_exception_handler",
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Ops-Core API",
    "DESCRIPTION": (
        "Operations backbone for AgentKit agents: agent lifecycle and state, workflow definitions and sessions. "
        "Authenticate with `Authorization: Bearer <key>`: the shared `OPSCORE_API_KEY` (scope `agent`) or an API "
        "token with its scopes (`agent`, `operator`, `metrics`, `admin`). Each operation names the scope it needs; "
        "a request outside its scope answers 403 naming it. See docs/security.md."
    ),
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    "SERVE_PERMISSIONS": ["rest_framework.permissions.AllowAny"],
    # The schema and docs are public: a stray or stale Bearer header must not turn them into a 401.
    "SERVE_AUTHENTICATION": [],
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "opscore_project.schema.document_common_errors",
    ],
    "ENUM_NAME_OVERRIDES": {
        "SessionStatusEnum": "workflows.models.SessionStatus",
        "TaskRunStatusEnum": "workflows.models.TaskRunStatus",
        "TaskKindEnum": "workflows.models.TaskKind",
        "AlertStatusEnum": "opscore_project.alerts.models.AlertStatus",
        "AlertDeliveryStatusEnum": "opscore_project.alerts.models.DeliveryStatus",
    },
}

# --- auth, i18n, static --------------------------------------------------------------------------------------
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 12}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "/admin/login/"
LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True
STATIC_URL = "/static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}
# Serve static files straight from the installed apps: `make run` needs no collectstatic step.
WHITENOISE_USE_FINDERS = True

# --- logging -------------------------------------------------------------------------------------------------
LOG_LEVEL = env_str("LOG_LEVEL", "INFO").upper()
LOG_FORMAT = env_str("LOG_FORMAT", "json").lower()
if LOG_FORMAT not in {"json", "plain"}:
    raise ConfigurationError(f"LOG_FORMAT must be json or plain, not {LOG_FORMAT!r}.")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {
        "redact": {"()": "opscore_project.observability.logs.RedactionFilter"},
        "context": {"()": "opscore_project.observability.logs.ContextFilter"},
        "idle_sweep": {"()": "opscore_project.observability.logs.IdleSweepFilter"},
    },
    "formatters": {
        "json": {"()": "opscore_project.observability.logs.JsonFormatter"},
        "plain": {"()": "opscore_project.observability.logs.PlainFormatter"},
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": LOG_FORMAT,
            "filters": ["idle_sweep", "redact", "context"],  # idle_sweep first: it reads the raw arguments
        }
    },
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {
        "django.db.backends": {"level": "WARNING"},
        # The request middleware logs every request (with its id); Django's own 4xx warnings would duplicate it.
        "django.request": {"level": "ERROR"},
        "django.server": {"level": "WARNING"},
        "opscore.request": {"level": env_str("OPSCORE_REQUEST_LOG_LEVEL", "INFO").upper()},
    },
}

# --- observability -------------------------------------------------------------------------------------------
OPSCORE_EVENT_RETENTION_DAYS = env_int("OPSCORE_EVENT_RETENTION_DAYS", 14, minimum=1)
OPSCORE_METRICS_PUBLIC = env_bool("OPSCORE_METRICS_PUBLIC", False)
OPSCORE_DASHBOARD_POLL_MS = env_int("OPSCORE_DASHBOARD_POLL_MS", 2000, minimum=250)
