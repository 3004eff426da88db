"""Baton's one settings module, driven by the environment.

Defaults give the embedded mode (SQLite, no Redis, a file-based Celery broker,
the built-in fake upstream) so a fresh clone runs with ``make run``. Setting
``DATABASE_URL`` and ``REDIS_URL`` switches to PostgreSQL and Redis. With
``DEBUG`` off nothing insecure is assumed: missing secrets stop the process.
"""

from __future__ import annotations

import base64
import ipaddress
import logging
import secrets
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import dj_database_url
from django.utils.translation import gettext_lazy as _

from config import redis_clients
from config.env import (
    ImproperlyConfiguredEnv,
    envbool,
    envfloat,
    envint,
    envlist,
    envstr,
)
from config.logging import logging_config

BASE_DIR = Path(__file__).resolve().parent.parent
DATA_DIR = Path(envstr("BATON_DATA_DIR", str(BASE_DIR / "var"))).resolve()

DEBUG = envbool("DEBUG", False)
# The test suite runs with DEBUG off, like production, but with fixed test-only
# secrets so no environment set-up is needed to run pytest.
TESTING = envbool("BATON_TESTING", "pytest" in sys.modules)

_log = logging.getLogger("baton.settings")


def _local_secret(filename: str, make: str, what: str) -> str:
    """Read a secret kept in the data directory, creating it on first use.

    Only used when DEBUG is on (the embedded default); production must pass
    every secret through the environment.
    """
    path = DATA_DIR / filename
    if path.exists():
        return path.read_text().strip()
    DATA_DIR.mkdir(parents=True, exist_ok=True)
    path.touch(mode=0o600)
    path.write_text(make)
    _log.warning(
        "Generated a local %s in %s; set it in the environment for production.", what, path
    )
    return make


def _required(name: str, hint: str) -> str:
    value = envstr(name)
    if not value:
        raise ImproperlyConfiguredEnv(f"{name} must be set when DEBUG is off: {hint}")
    return value


def _required_secret(name: str, hint: str, min_length: int) -> str:
    """A required secret that is long and varied enough to be random.

    The rules are those of Django's deployment check for SECRET_KEY (security.W009:
    50 characters, 5 different ones, not Django's development prefix), enforced at
    start instead of left as a warning. The message never repeats the value.
    """
    return _strong(name, _required(name, hint), hint, min_length)


def _strong(name: str, value: str, hint: str, min_length: int) -> str:
    if len(value) < min_length or len(set(value)) < 5:
        raise ImproperlyConfiguredEnv(
            f"{name} must be at least {min_length} characters with at least 5 different ones "
            f"(got {len(value)} characters): {hint}"
        )
    if value.startswith("django-insecure-"):
        raise ImproperlyConfiguredEnv(
            f"{name} must not start with 'django-insecure-', the mark of a development key: {hint}"
        )
    return value


if TESTING:
    SECRET_KEY = "test-only-secret-key-" + "x" * 40
    ALLOWED_HOSTS = ["localhost", "127.0.0.1", "testserver"]
elif DEBUG:
    SECRET_KEY = envstr("SECRET_KEY") or _local_secret(
        "secret_key", secrets.token_urlsafe(50), "Django SECRET_KEY"
    )
    ALLOWED_HOSTS = envlist("ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]", "testserver"])
else:
    SECRET_KEY = _required_secret(
        "SECRET_KEY",
        "a long random string, e.g. `python -c 'import secrets; print(secrets.token_urlsafe(50))'`",
        min_length=50,
    )
    ALLOWED_HOSTS = envlist("ALLOWED_HOSTS")
    if not ALLOWED_HOSTS:
        raise ImproperlyConfiguredEnv(
            "ALLOWED_HOSTS must be set when DEBUG is off: a comma-separated list of the host names Baton answers to"
        )

CSRF_TRUSTED_ORIGINS = envlist("CSRF_TRUSTED_ORIGINS")
SITE_URL = envstr("SITE_URL", "http://127.0.0.1:8000").rstrip("/")

# --- Keys ---------------------------------------------------------------------
# BATON_MASTER_KEYS: "id:base64key,id2:base64key". The first one wraps new team
# data keys; all of them can unwrap. Rotating means putting a new key first,
# running `manage.py rotate_master_key`, then dropping the old one.
if TESTING:
    BATON_MASTER_KEYS = envstr("BATON_MASTER_KEYS", "test1:" + base64.b64encode(b"t" * 32).decode())
    BATON_API_KEY_PEPPER = "test-only-pepper"
elif DEBUG:
    BATON_MASTER_KEYS = envstr("BATON_MASTER_KEYS") or _local_secret(
        "master_keys",
        "local1:" + base64.b64encode(secrets.token_bytes(32)).decode(),
        "master key (BATON_MASTER_KEYS)",
    )
    BATON_API_KEY_PEPPER = envstr("BATON_API_KEY_PEPPER") or _local_secret(
        "api_key_pepper", secrets.token_urlsafe(32), "API key pepper (BATON_API_KEY_PEPPER)"
    )
else:
    BATON_MASTER_KEYS = _required(
        "BATON_MASTER_KEYS",
        "`id:base64-of-32-random-bytes`, e.g. `k1:$(head -c32 /dev/urandom | base64)`",
    )
    BATON_API_KEY_PEPPER = _required_secret(
        "BATON_API_KEY_PEPPER",
        "a random string used to hash team API keys, not SECRET_KEY, e.g. "
        "`python -c 'import secrets; print(secrets.token_urlsafe(32))'`",
        min_length=32,
    )

# Custom upstream URLs that resolve to loopback/private/link-local addresses are
# refused unless the operator allows them. The embedded default allows loopback
# so the built-in fake upstream works.
BATON_ALLOW_PRIVATE_UPSTREAMS = envbool("BATON_ALLOW_PRIVATE_UPSTREAMS", False)
BATON_ALLOW_LOOPBACK_UPSTREAMS = envbool("BATON_ALLOW_LOOPBACK_UPSTREAMS", DEBUG)

# --- Relay --------------------------------------------------------------------
BATON_FAKE_UPSTREAM_URL = envstr(
    "BATON_FAKE_UPSTREAM_URL", "http://127.0.0.1:8001" if DEBUG else ""
)
BATON_MAX_BODY_BYTES = envint("BATON_MAX_BODY_BYTES", 8 * 1024 * 1024, minimum=1024)
BATON_CONNECT_TIMEOUT = envfloat("BATON_CONNECT_TIMEOUT", 5.0, minimum=0.01)
BATON_FIRST_BYTE_TIMEOUT = envfloat("BATON_FIRST_BYTE_TIMEOUT", 60.0, minimum=0.01)
BATON_IDLE_TIMEOUT = envfloat("BATON_IDLE_TIMEOUT", 60.0, minimum=0.01)
BATON_TOTAL_TIMEOUT = envfloat("BATON_TOTAL_TIMEOUT", 600.0, minimum=0.01)
BATON_MAX_ATTEMPTS = envint("BATON_MAX_ATTEMPTS", 3, minimum=1)
# How long an agent loop's turns are remembered: where they were served, and (per team)
# their reasoning, encrypted (gateway/turns.py).
BATON_TURN_MEMORY_SECONDS = envint("BATON_TURN_MEMORY_SECONDS", 3600, minimum=60)
# How long Baton remembers which target issued a stored Responses response, so that a
# previous_response_id naming it goes back there (gateway/turns.py). OpenAI keeps 30 days.
BATON_RESPONSE_IDS_SECONDS = envint("BATON_RESPONSE_IDS_SECONDS", 30 * 86400, minimum=60)
BATON_COOLDOWN_SECONDS = envint("BATON_COOLDOWN_SECONDS", 30, minimum=1)
BATON_CACHE_CHECK_SECONDS = envfloat("BATON_CACHE_CHECK_SECONDS", 0.5, minimum=0.0)
# The relay's cached keys and teams (gateway/cache.py): reloaded from the database after
# this long; served this much longer while the database does not answer; and how long a
# request waits on the database for one it has not cached.
BATON_CACHE_RELOAD_SECONDS = envfloat("BATON_CACHE_RELOAD_SECONDS", 300.0, minimum=0.1)
BATON_STALE_IF_ERROR_SECONDS = envfloat("BATON_STALE_IF_ERROR_SECONDS", 3600.0, minimum=0.0)
BATON_CACHE_LOAD_TIMEOUT = envfloat("BATON_CACHE_LOAD_TIMEOUT", 3.0, minimum=0.05)

# --- Apps ---------------------------------------------------------------------
INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "allauth",
    "allauth.account",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_htmx",
    "csp",
    "accounts",
    "relay",
    "billing",
    "console",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "csp.middleware.CSPMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "allauth.account.middleware.AccountMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
]

ROOT_URLCONF = "config.urls"
ASGI_APPLICATION = "config.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "django.template.context_processors.i18n",
                "accounts.context_processors.current_team",
            ],
        },
    },
]

# --- Database -----------------------------------------------------------------
_database_url = envstr("DATABASE_URL")
if _database_url:
    _scheme = urlsplit(_database_url).scheme
    if _scheme not in {"postgres", "postgresql", "sqlite"}:
        raise ImproperlyConfiguredEnv(
            f"DATABASE_URL must start with postgres:// or sqlite://, got scheme {_scheme!r}"
        )
    try:
        _db = dict(dj_database_url.parse(_database_url))
    except ValueError as exc:
        raise ImproperlyConfiguredEnv(f"DATABASE_URL cannot be parsed: {exc}") from exc
    if _scheme != "sqlite":
        # psycopg 3 connection pool, one per process; safe under ASGI where
        # persistent per-thread connections are not.
        _db_options: dict[str, Any] = _db.setdefault("OPTIONS", {})  # type: ignore[assignment]
        _db_options["pool"] = {
            "min_size": 1,
            "max_size": envint("DB_POOL_SIZE", 10, minimum=1),
        }
        _db["CONN_MAX_AGE"] = 0
    DATABASES = {"default": _db}
else:
    DATA_DIR.mkdir(parents=True, exist_ok=True)
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": DATA_DIR / "baton.sqlite3",
            "OPTIONS": {
                "transaction_mode": "IMMEDIATE",
                "init_command": "PRAGMA journal_mode=WAL;",
            },
        }
    }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Redis and caches ---------------------------------------------------------
# One server, a Sentinel group or a Cluster: config/redis_clients.py reads every form and makes
# every Redis client Baton has (docs/configuration.md, "Redis").
REDIS_URL = envstr("REDIS_URL")


def _redis_url(name: str, value: str) -> str:
    if value and redis_clients.scheme_of(value) not in redis_clients.SCHEMES:
        raise ImproperlyConfiguredEnv(
            f"{name} must start with redis://, rediss://, unix://, redis+sentinel:// or "
            f"redis+cluster://, got {value.split(':')[0]!r}"
        )
    if value:
        try:
            redis_clients.parse(value)
        except redis_clients.RedisURLError as exc:
            raise ImproperlyConfiguredEnv(f"{name} is not a Redis URL Baton reads: {exc}") from None
    return value


_redis_url("REDIS_URL", REDIS_URL)
if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "config.redis_cache.BatonRedisCache",
            "LOCATION": [REDIS_URL],  # a list: Django would split a string at its commas
            "KEY_PREFIX": "baton",
        }
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
# The usage streams (billing/events.py: how many, a team's events all in one), and the replicas
# that must have each batch the relay appends before it counts as written (gateway/metering.py:
# WAIT; by default one on Sentinel and Cluster, which have replicas, none on one server).
BATON_USAGE_STREAMS = envint("BATON_USAGE_STREAMS", 1, minimum=1)
BATON_USAGE_WAIT_REPLICAS = envint(
    "BATON_USAGE_WAIT_REPLICAS",
    1 if REDIS_URL and redis_clients.parse(REDIS_URL).replicated else 0,
    minimum=0,
)
BATON_USAGE_WAIT_TIMEOUT_MS = envint("BATON_USAGE_WAIT_TIMEOUT_MS", 500, minimum=1)

# --- Quotas, credits and billing ------------------------------------------------
# Read here as given; billing/conf.py validates them at start (BillingConfig.ready)
# and docs/configuration.md lists what each means. Empty means "the default".
BATON_SIGNUP_CREDIT = envstr("BATON_SIGNUP_CREDIT", "5.00")
BATON_NEW_TEAM_BILLING = envstr("BATON_NEW_TEAM_BILLING", "prepaid")
BATON_UNPRICED_MODELS = envstr("BATON_UNPRICED_MODELS", "zero")
BATON_LIMITS_ON_REDIS_FAILURE = envstr("BATON_LIMITS_ON_REDIS_FAILURE", "open")
BATON_LIMITS_REDIS_URL = _redis_url(
    "BATON_LIMITS_REDIS_URL", envstr("BATON_LIMITS_REDIS_URL", REDIS_URL)
)
BATON_LIMITS_REDIS_TIMEOUT = envstr("BATON_LIMITS_REDIS_TIMEOUT", "1.0")
BATON_RATE_LIMIT_WINDOW = envstr("BATON_RATE_LIMIT_WINDOW", "60")
BATON_LEASE_SECONDS = envstr("BATON_LEASE_SECONDS", "15")
BATON_RECONCILE_SECONDS = envstr("BATON_RECONCILE_SECONDS", "300")
BATON_HOLD_DEFAULT_OUTPUT_TOKENS = envstr("BATON_HOLD_DEFAULT_OUTPUT_TOKENS", "4096")
BATON_LOW_BALANCE = envstr("BATON_LOW_BALANCE", "1.00")
BATON_BILLING_PERIOD = envstr("BATON_BILLING_PERIOD", "month")
BATON_LEDGER_RETENTION_DAYS = envstr("BATON_LEDGER_RETENTION_DAYS", "90")
BATON_USAGE_CLAIM_IDLE_SECONDS = envstr("BATON_USAGE_CLAIM_IDLE_SECONDS", "60")

# --- Celery -------------------------------------------------------------------
# Without Redis the broker is kombu's filesystem transport: messages are files in
# the data directory, so the embedded default needs no broker server yet still
# runs a real worker and beat.
# kombu reads one-server Redis URLs, and Sentinel in a form of its own, which Baton's Sentinel
# URL is translated into; it has no Redis Cluster transport, so a cluster REDIS_URL needs a
# CELERY_BROKER_URL of its own (redis_clients.celery_broker says what it accepts).
if REDIS_URL:
    _broker_url = envstr("CELERY_BROKER_URL")
    if not _broker_url and redis_clients.is_cluster(REDIS_URL):
        raise ImproperlyConfiguredEnv(
            "REDIS_URL is a Redis Cluster, which Celery's broker (kombu) cannot use: set "
            "CELERY_BROKER_URL to a one-server Redis (redis://...), a Sentinel group "
            "(redis+sentinel://...) or another broker kombu supports"
        )
    _broker_url = _broker_url or REDIS_URL
    CELERY_BROKER_TRANSPORT_OPTIONS: dict[str, object] = {}
    if redis_clients.scheme_of(_broker_url) in (
        *redis_clients.SENTINEL_SCHEMES,
        *redis_clients.CLUSTER_SCHEMES,
    ):
        try:
            _broker = redis_clients.celery_broker(_broker_url)
        except redis_clients.RedisURLError as exc:
            raise ImproperlyConfiguredEnv(f"CELERY_BROKER_URL: {exc}") from None
        CELERY_BROKER_URL = _broker.url
        CELERY_BROKER_TRANSPORT_OPTIONS = dict(_broker.transport_options)
        if _broker.use_ssl is not None:
            CELERY_BROKER_USE_SSL = _broker.use_ssl
    else:
        CELERY_BROKER_URL = _broker_url  # kombu's own: redis://, sentinel://, amqp://...
else:
    _queue_dir = DATA_DIR / "celery-queue"
    (_queue_dir / "processed").mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_URL = "filesystem://"
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_queue_dir),
        "data_folder_out": str(_queue_dir),
        "processed_folder": str(_queue_dir / "processed"),
        "control_folder": str(_queue_dir / "control"),
        "store_processed": False,
    }
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ALWAYS_EAGER = envbool("CELERY_TASK_ALWAYS_EAGER", False)
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_BEAT_SCHEDULE_FILENAME = str(DATA_DIR / "celerybeat-schedule")
CELERY_TIMEZONE = "UTC"

# --- Auth and accounts (django-allauth) --------------------------------------
AUTH_USER_MODEL = "accounts.User"
AUTHENTICATION_BACKENDS = [
    "django.contrib.auth.backends.ModelBackend",
    "allauth.account.auth_backends.AuthenticationBackend",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {
        "NAME": "django.contrib.auth.password_validation.MinimumLengthValidator",
        "OPTIONS": {"min_length": 10},
    },
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
if TESTING:
    # Hashing cost buys nothing in tests and costs seconds per fixture.
    PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
ACCOUNT_LOGIN_METHODS = {"email"}
ACCOUNT_SIGNUP_FIELDS = ["email*", "password1*", "password2*"]
ACCOUNT_USER_MODEL_USERNAME_FIELD = None
# Sign-up and password reset answer the same for known and unknown addresses (no account
# enumeration): the owner of a known address is told by mail instead. allauth can only do
# that for sign-up when the address must be verified before the account is used.
ACCOUNT_EMAIL_VERIFICATION = envstr("ACCOUNT_EMAIL_VERIFICATION", "mandatory").strip().lower()
if ACCOUNT_EMAIL_VERIFICATION not in {"mandatory", "optional", "none"}:
    raise ImproperlyConfiguredEnv(
        "ACCOUNT_EMAIL_VERIFICATION must be mandatory, optional or none, "
        f"got {ACCOUNT_EMAIL_VERIFICATION!r}"
    )
ACCOUNT_PREVENT_ENUMERATION = True
# Confirming the address in the browser that signed up signs in (allauth checks the session).
ACCOUNT_LOGIN_ON_EMAIL_CONFIRMATION = True
ACCOUNT_UNIQUE_EMAIL = True
ACCOUNT_LOGOUT_ON_PASSWORD_CHANGE = False
ACCOUNT_DEFAULT_HTTP_PROTOCOL = "https" if not DEBUG else "http"
ACCOUNT_ADAPTER = "accounts.adapter.AccountAdapter"
LOGIN_REDIRECT_URL = "dashboard"
LOGIN_URL = "account_login"

# --- Email --------------------------------------------------------------------
DEFAULT_FROM_EMAIL = envstr("DEFAULT_FROM_EMAIL", "Baton <noreply@localhost>")
# A mail server that does not answer must not hold a request (Django's default is no timeout).
EMAIL_TIMEOUT = envint("EMAIL_TIMEOUT", 10)
if envstr("EMAIL_HOST"):
    EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    EMAIL_HOST = envstr("EMAIL_HOST")
    EMAIL_PORT = envint("EMAIL_PORT", 587)
    EMAIL_HOST_USER = envstr("EMAIL_HOST_USER")
    EMAIL_HOST_PASSWORD = envstr("EMAIL_HOST_PASSWORD")
    EMAIL_USE_TLS = envbool("EMAIL_USE_TLS", True)
elif envstr("EMAIL_FILE_PATH"):
    EMAIL_BACKEND = "django.core.mail.backends.filebased.EmailBackend"
    EMAIL_FILE_PATH = envstr("EMAIL_FILE_PATH")
else:
    EMAIL_BACKEND = "django.core.mail.backends.console.EmailBackend"

# --- Internationalisation -------------------------------------------------------
LANGUAGE_CODE = "en"
LANGUAGES = [("en", _("English")), ("zh-hans", _("Simplified Chinese"))]
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

# --- Static files ---------------------------------------------------------------
STATIC_URL = "static/"
STATIC_ROOT = Path(envstr("STATIC_ROOT", str(BASE_DIR / "staticfiles")))
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"
        if DEBUG or TESTING
        else "whitenoise.storage.CompressedManifestStaticFilesStorage"
    },
}
WHITENOISE_USE_FINDERS = DEBUG or TESTING

# --- REST API ------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "accounts.api.auth.PersonalTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    # The API speaks JSON only (no page posts forms to it), and its schema says so.
    "DEFAULT_PARSER_CLASSES": ["accounts.api.parsers.JSONParser"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "accounts.api.errors.exception_handler",
    "DEFAULT_PAGINATION_CLASS": "accounts.api.pagination.LimitOffsetPagination",
    "PAGE_SIZE": 100,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Baton management API",
    "DESCRIPTION": "Teams, members, keys, routes and usage. The LLM relay itself lives at /v1.",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "COMPONENT_SPLIT_REQUEST": True,
    # Swagger UI served from our own static files: no CDN, works offline.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "accounts.api.schema.document_errors",
    ],
    # Several models call a field "status"; name each set of values after its owner.
    "ENUM_NAME_OVERRIDES": {
        "CredentialStatusEnum": "relay.models.CredentialStatus",
        "BillingRecordStatusEnum": "billing.models.BillingRecord.Status",
        "ApiKeyStatusEnum": "console.api.API_KEY_STATUSES",
        "InvitationStatusEnum": "accounts.api.serializers.INVITATION_STATUSES",
    },
}

# --- Security -----------------------------------------------------------------
SESSION_COOKIE_SECURE = not DEBUG and envbool("SECURE_COOKIES", True)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
BEHIND_TLS_PROXY = envbool("BEHIND_TLS_PROXY", False)
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https") if BEHIND_TLS_PROXY else None
# HSTS: a browser that reached Baton over HTTPS refuses plain HTTP to it for this long.
# SecurityMiddleware sends it on HTTPS responses only; on by default behind a TLS proxy.
# Subdomains and preloading reach beyond Baton's own host, so only the operator turns them on.
SECURE_HSTS_SECONDS = envint(
    "SECURE_HSTS_SECONDS", 365 * 24 * 3600 if BEHIND_TLS_PROXY else 0, minimum=0
)
SECURE_HSTS_INCLUDE_SUBDOMAINS = envbool("SECURE_HSTS_INCLUDE_SUBDOMAINS", False)
SECURE_HSTS_PRELOAD = envbool("SECURE_HSTS_PRELOAD", False)
# Deployment checks (`manage.py check --deploy`) left silent on purpose:
# - W005, W021: HSTS's includeSubDomains and preload commit every host under the operator's
#   domain to HTTPS (preload for months, through browsers' built-in lists); only the operator
#   knows those hosts, so the two settings above are theirs to turn on.
# - W008 behind a TLS proxy: redirecting plain HTTP to HTTPS is that proxy's job. Done here,
#   it would also redirect the proxy's own plain-HTTP hop whenever the proxy does not say
#   `X-Forwarded-Proto: https`, which loops instead of serving.
SILENCED_SYSTEM_CHECKS = ["security.W005", "security.W021"]
if BEHIND_TLS_PROXY:
    SILENCED_SYSTEM_CHECKS.append("security.W008")
SECURE_CONTENT_TYPE_NOSNIFF = True
# Proxies whose X-Forwarded-For entries are believed (addresses or CIDRs); empty: none, the
# TCP peer is the client. config/client_address.py resolves the one client address that
# key allow-lists, /metrics, sign-in rate limits and the audit log use.
BATON_TRUSTED_PROXIES = envlist("BATON_TRUSTED_PROXIES")
for _network in BATON_TRUSTED_PROXIES:
    try:
        ipaddress.ip_network(_network, strict=False)
    except ValueError as _exc:
        raise ImproperlyConfiguredEnv(
            f"BATON_TRUSTED_PROXIES: {_network!r} is not an address or network"
        ) from _exc
X_FRAME_OPTIONS = "DENY"

# Content-Security-Policy (django-csp) on every page, the API docs included: scripts, styles
# and images only from Baton's own static files, no inline script or style, no eval.
# tests/browser/test_csp.py loads every page and fails on any violation.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "img-src": ["'self'", "data:"],
        "object-src": ["'none'"],
        "base-uri": ["'self'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
    }
}

INVITATION_TTL_DAYS = envint("BATON_INVITATION_TTL_DAYS", 7, minimum=1)
BATON_OPEN_SIGNUP = envbool("BATON_OPEN_SIGNUP", True)

# --- Logging and operations ------------------------------------------------------
# LOG_FORMAT=json: one JSON object per line with the relay request id (config/logging.py).
LOG_FORMAT = envstr("LOG_FORMAT", "plain").strip().lower()
if LOG_FORMAT not in {"plain", "json"}:
    raise ImproperlyConfiguredEnv(f"LOG_FORMAT must be 'plain' or 'json', got {LOG_FORMAT!r}")
LOG_LEVEL = envstr("LOG_LEVEL", "INFO").strip().upper()
LOGGING = logging_config(LOG_FORMAT, LOG_LEVEL)
# One log line per relay request: "off", "errors" (5xx and upstream failures) or "all".
BATON_REQUEST_LOG = envstr("BATON_REQUEST_LOG", "errors").strip().lower()
if BATON_REQUEST_LOG not in {"off", "errors", "all"}:
    raise ImproperlyConfiguredEnv(
        f"BATON_REQUEST_LOG must be off, errors or all, got {BATON_REQUEST_LOG!r}"
    )

# /metrics (Prometheus) is served only to a bearer token and/or from allowed
# networks; with neither set, only loopback may scrape. With several worker
# processes set PROMETHEUS_MULTIPROC_DIR to an empty directory (see docs/operations.md).
BATON_METRICS_TOKEN = envstr("BATON_METRICS_TOKEN")
if BATON_METRICS_TOKEN and not DEBUG:
    # A bearer token for a public path: a placeholder left from the example file is refused.
    _strong(
        "BATON_METRICS_TOKEN",
        BATON_METRICS_TOKEN,
        "a long random string, e.g. `openssl rand -hex 24`",
        24,
    )
BATON_METRICS_ALLOW = envlist("BATON_METRICS_ALLOW")
for _network in BATON_METRICS_ALLOW:
    try:
        ipaddress.ip_network(_network, strict=False)
    except ValueError as _exc:
        raise ImproperlyConfiguredEnv(
            f"BATON_METRICS_ALLOW: {_network!r} is not an address or network"
        ) from _exc
PROMETHEUS_MULTIPROC_DIR = envstr("PROMETHEUS_MULTIPROC_DIR")
# /readyz: how long one dependency check may take, and how old the oldest
# unsent usage event may get before the process reports itself not ready.
BATON_READY_TIMEOUT = envfloat("BATON_READY_TIMEOUT", 2.0, minimum=0.05)
BATON_READY_MAX_SINK_AGE = envfloat("BATON_READY_MAX_SINK_AGE", 30.0, minimum=0.1)
# Graceful shutdown: after SIGTERM open streams may run this long, then they
# are ended cleanly (a final SSE error event) and their usage is recorded.
BATON_SHUTDOWN_GRACE_SECONDS = envfloat("BATON_SHUTDOWN_GRACE_SECONDS", 25.0, minimum=0.0)
