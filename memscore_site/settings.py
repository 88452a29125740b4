"""Settings for memscore, read from the environment.

Every default runs on a fresh checkout: SQLite in var/, and an embedded
filesystem broker in var/broker when REDIS_URL is not set (memscore_site.broker).
"""

import os
from datetime import timedelta
from pathlib import Path

import dj_database_url
from csp.constants import NONE, SELF, UNSAFE_INLINE
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("MEMSCORE_VAR_DIR", BASE_DIR / "var"))


def envstr(name, default=None):
    return os.environ.get(name, default)


def envbool(name, default):
    value = os.environ.get(name)
    if value is None:
        return default
    if value.lower() in ("1", "true", "yes", "on"):
        return True
    if value.lower() in ("0", "false", "no", "off", ""):
        return False
    raise ValueError(f"{name}={value!r} is not a boolean (use 1/0, true/false)")


def envint(name, default):
    value = os.environ.get(name)
    if value is None:
        return default
    try:
        return int(value)
    except ValueError:
        raise ValueError(f"{name}={value!r} is not an integer") from None


DEBUG = envbool("DEBUG", False)


def _local_secret_key():
    """A random key kept in var/ so every process of this install shares it."""
    path = VAR_DIR / "secret_key"
    VAR_DIR.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        pass  # made earlier, or by a process starting beside this one
    else:
        with os.fdopen(fd, "w") as f:
            f.write(os.urandom(32).hex())
    return path.read_text().strip()


ALLOWED_HOSTS = [h for h in envstr("ALLOWED_HOSTS", "localhost,127.0.0.1,[::1]").split(",") if h]
# A site answering only to this machine's own names (the demo, the tests,
# runserver on a fresh checkout) is not on a network; any other name puts it there.
LOCAL_HOSTS = {"localhost", "127.0.0.1", "[::1]", "::1", "0.0.0.0", "testserver"}
ON_A_NETWORK = not set(ALLOWED_HOSTS) <= LOCAL_HOSTS
_NETWORK_HOSTS = ", ".join(h for h in ALLOWED_HOSTS if h not in LOCAL_HOSTS)

# On a network, refuse to start rather than guess: a debug page shows code,
# settings and request data to whoever causes an error (and DEBUG turns the
# HTTPS defaults off), and a key made in var/ differs on each web host, so
# sessions and CSRF tokens would fail from one host to the next.
if ON_A_NETWORK and DEBUG:
    raise ImproperlyConfigured(
        f"DEBUG is on while ALLOWED_HOSTS names {_NETWORK_HOSTS}: debug pages would show settings and "
        "code to anyone on the network. Set DEBUG=0, or debug with ALLOWED_HOSTS=localhost,127.0.0.1."
    )
SECRET_KEY = envstr("SECRET_KEY")
if ON_A_NETWORK and len(SECRET_KEY or "") < 50:
    raise ImproperlyConfigured(
        f"SECRET_KEY is {'too short' if SECRET_KEY else 'not set'} while ALLOWED_HOSTS names "
        f"{_NETWORK_HOSTS}: set SECRET_KEY to 50 or more random characters, the same for every "
        "process (e.g. python -c 'import secrets; print(secrets.token_urlsafe(50))')."
    )
SECRET_KEY = SECRET_KEY or _local_secret_key()
CSRF_TRUSTED_ORIGINS = [o for o in envstr("CSRF_TRUSTED_ORIGINS", "").split(",") if o]

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django_htmx",
    "django_filters",  # the list pages' FilterSets (scoring/filters.py)
    "template_partials",
    "axes",  # login throttling (AXES_* below)
    "scoring",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "memscore_site.middleware.private_to_the_user",  # Cache-Control: private when logged in
    "memscore_site.middleware.LoginRequiredMiddleware",  # Django's; htmx gets the login page whole
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "csp.middleware.CSPMiddleware",
    # Last, as django-axes asks: it turns a lockout raised during
    # authentication into its 429 answer.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "memscore_site.urls"
# Debug pages (and any error report) mask the password in a URL too:
# REDIS_URL, CELERY_BROKER_URL, DATABASE_URL in runserver's request.META.
DEFAULT_EXCEPTION_REPORTER_FILTER = "memscore_site.reporting.CredentialsFilter"
WSGI_APPLICATION = "memscore_site.wsgi.application"

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
                "scoring.views.context_processors.nav",
            ],
        },
    }
]

VAR_DIR.mkdir(parents=True, exist_ok=True)
DATABASES = {
    "default": dj_database_url.parse(
        envstr("DATABASE_URL", f"sqlite:///{VAR_DIR / 'memscore.sqlite3'}"),
        conn_max_age=envint("DB_CONN_MAX_AGE", 0),
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Web server, workers and beat share one SQLite file: WAL lets readers run
    # beside a writer, IMMEDIATE makes writers queue instead of failing.
    DATABASES["default"]["OPTIONS"] = {
        "timeout": 30,
        "transaction_mode": "IMMEDIATE",
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
    # A file, not :memory:, so worker processes in tests see the test database.
    DATABASES["default"]["TEST"] = {"NAME": str(VAR_DIR / "test.sqlite3")}

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTHENTICATION_BACKENDS = [
    # First: refuses a locked-out username/address before the password is checked.
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
# Django's defaults (startproject's), for the password change page, the
# admin and seed_demo alike; the demo's "memscore-demo" passes them.
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = False
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = VAR_DIR / "static"  # collectstatic's output; made here so WhiteNoise finds it
STATIC_ROOT.mkdir(parents=True, exist_ok=True)
# The app serves its own static files (no separate web server in the demo);
# finders let it do so before or without collectstatic.
WHITENOISE_USE_FINDERS = True

SESSION_COOKIE_HTTPONLY = True
CSRF_COOKIE_HTTPONLY = False  # htmx reads the token from the page, not the cookie
CSRF_FAILURE_VIEW = "memscore_site.middleware.csrf_failure"  # htmx, logged out: the login page
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True

# --- HTTPS ------------------------------------------------------------------
# On by default once the site is on a network (ON_A_NETWORK, above): then it
# is behind a proxy that terminates TLS. A site only for 127.0.0.1 (the demo,
# the tests, runserver on a fresh checkout) stays on plain http. MEMSCORE_HTTPS=0/1
# says it outright; each setting below can be set on its own too.
HTTPS = envbool("MEMSCORE_HTTPS", ON_A_NETWORK)
SECURE_SSL_REDIRECT = envbool("SECURE_SSL_REDIRECT", HTTPS)
SESSION_COOKIE_SECURE = envbool("SESSION_COOKIE_SECURE", HTTPS)
CSRF_COOKIE_SECURE = envbool("CSRF_COOKIE_SECURE", HTTPS)
SECURE_HSTS_SECONDS = envint("SECURE_HSTS_SECONDS", 365 * 24 * 3600 if HTTPS else 0)
# Both bind more than this site (every subdomain; browsers' built-in list),
# so they are asked for, never assumed.
SECURE_HSTS_INCLUDE_SUBDOMAINS = envbool("SECURE_HSTS_INCLUDE_SUBDOMAINS", False)
SECURE_HSTS_PRELOAD = envbool("SECURE_HSTS_PRELOAD", False)


def _proxy_ssl_header(value):
    """"X-Forwarded-Proto=https" -> ("HTTP_X_FORWARDED_PROTO", "https")."""
    if not value:
        return None
    header, sep, expected = value.partition("=")
    if not sep or not header.strip() or not expected.strip():
        raise ValueError(f"SECURE_PROXY_SSL_HEADER={value!r} is not HEADER=VALUE (e.g. X-Forwarded-Proto=https)")
    name = header.strip().upper().replace("-", "_")
    return (name if name.startswith("HTTP_") else f"HTTP_{name}", expected.strip())


# Only behind a proxy that sets this header on every request and drops any
# copy a client sent: with it, a request is secure when the header says so.
SECURE_PROXY_SSL_HEADER = _proxy_ssl_header(envstr("SECURE_PROXY_SSL_HEADER"))

# --- Content-Security-Policy (django-csp) --------------------------------------
# Scripts only from this site's static files: no inline script or handler
# anywhere (json_script's data blocks are not scripts). Styles allow inline
# because templates size progress bars with style attributes and htmx adds
# its indicator style; an injected style can restyle, not run code.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF],
        "style-src": [SELF, UNSAFE_INLINE],
        "img-src": [SELF, "data:"],
        "connect-src": [SELF],
        "object-src": [NONE],
        "base-uri": [NONE],
        "form-action": [SELF],
        "frame-ancestors": [NONE],
    },
}

# --- Login throttling (django-axes) ---------------------------------------------
# After LOGIN_FAILURE_LIMIT wrong passwords for one username from one
# address, that pair is refused (HTTP 429) for LOGIN_COOLOFF_MINUTES.
# The address is the connection's, which a client cannot forge. Behind a
# proxy that is the proxy's, the same for every client, so anyone could lock
# out any user: PROXY_COUNT says how many proxies append to X-Forwarded-For
# in front of this server, and the client is then read from that header
# (memscore_site.proxies), counting from the right. Set it only when every
# request comes through them: a client reaching gunicorn directly could
# name any address there.
PROXY_COUNT = envint("PROXY_COUNT", 0)
if PROXY_COUNT < 0:
    raise ValueError(f"PROXY_COUNT={PROXY_COUNT} is negative (the number of proxies in front, 0 for none)")
AXES_CLIENT_IP_CALLABLE = "memscore_site.proxies.client_ip"
AXES_FAILURE_LIMIT = envint("LOGIN_FAILURE_LIMIT", 10)
AXES_COOLOFF_TIME = timedelta(minutes=envint("LOGIN_COOLOFF_MINUTES", 15))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_DISABLE_ACCESS_LOG = True  # record failures only, not every login

# --- Request sizes -------------------------------------------------------------
# Django's own limits (2.5 MB of form data in memory) stay as they are for
# every page: CsrfViewMiddleware parses a POST's body before login or any
# view runs, so a site-wide 200 MiB let anyone without a login make a
# worker hold a 150 MiB body (76 MB -> 537 MB resident, measured under gunicorn).
# Snapshots can be far larger: the API reads its own body against this
# limit, and the upload form takes the file spilled to a temporary file past
# FILE_UPLOAD_MAX_MEMORY_SIZE and checks its size. 50 MiB is ten times a
# 200k-token context with its ids (~3 MB; the 2,000-response benchmark is
# ~5 MB), and parsing holds about ten times the body (a 42 MB snapshot
# peaked a worker at 428 MB), so a token holder cannot make a worker hold GBs.
SNAPSHOT_MAX_BYTES = envint("SNAPSHOT_MAX_BYTES", 50 * 1024 * 1024)
# Nodes (messages and memories) in one snapshot: a 2,000-response context with
# its memories is ~6,000; past the limit nothing is imported.
SNAPSHOT_MAX_NODES = envint("SNAPSHOT_MAX_NODES", 50_000)
if "DATA_UPLOAD_MAX_MEMORY_SIZE" in os.environ:
    # Renamed: read silently as before, it would raise every form's limit again.
    raise ImproperlyConfigured(
        "DATA_UPLOAD_MAX_MEMORY_SIZE is no longer read: the snapshot size limit is "
        "SNAPSHOT_MAX_BYTES (in bytes); other requests keep Django's 2.5 MB. Rename the variable."
    )

# --- Cache and Celery ---------------------------------------------------------
REDIS_URL = envstr("REDIS_URL")
# Shared by every web process (e.g. packed heatmaps of finished runs).
if REDIS_URL:
    # Short socket timeouts: with Redis unreachable, pages fall back to the
    # database (scoring.heatmap.payload.through_cache) instead of hanging.
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL,
                          "KEY_PREFIX": envstr("CACHE_KEY_PREFIX", "memscore"),
                          "OPTIONS": {"socket_connect_timeout": 1, "socket_timeout": 2}}}
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
                          "LOCATION": str(VAR_DIR / "cache")}}
# The longest task (one shard of a full matrix) is killed after this long;
# the broker must not redeliver a message while its task may still run.
CELERY_TASK_TIME_LIMIT = envint("CELERY_TASK_TIME_LIMIT", 60 * 60)
CELERY_TASK_SOFT_TIME_LIMIT = CELERY_TASK_TIME_LIMIT - 60
BROKER_VISIBILITY_TIMEOUT = CELERY_TASK_TIME_LIMIT * 2

if REDIS_URL:
    CELERY_BROKER_URL = REDIS_URL
    CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": BROKER_VISIBILITY_TIMEOUT}
else:
    # Embedded broker: messages are files under var/broker, shared by every
    # process on this machine. No service to install or run.
    _broker_dir = VAR_DIR / "broker"
    for sub in ("queue", "control", "processed"):
        (_broker_dir / sub).mkdir(parents=True, exist_ok=True)
    # A host names nothing here, but kombu warns "No hostname was supplied" on
    # every connection without one (a URL with no host falls back to localhost).
    # memscore-files: kombu's filesystem transport, writing each message whole
    # before a worker can see it (memscore_site.broker, registered by celery.py).
    CELERY_BROKER_URL = "memscore-files://localhost/"
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_broker_dir / "queue"),
        "data_folder_out": str(_broker_dir / "queue"),
        "control_folder": str(_broker_dir / "control"),
        "processed_folder": str(_broker_dir / "processed"),
        "store_processed": False,
        "visibility_timeout": BROKER_VISIBILITY_TIMEOUT,
    }

# Results live in the database, never in a Celery result backend.
# Tests and side-by-side installs use their own queue name.
CELERY_TASK_DEFAULT_QUEUE = envstr("CELERY_QUEUE", "memscore")
# scoring.tasks is a package: autodiscovery imports only its __init__, so each
# task module is named here for workers to register its tasks.
CELERY_IMPORTS = ["scoring.tasks.runs", "scoring.tasks.training"]
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
CELERY_TIMEZONE = "UTC"
CELERY_BEAT_SCHEDULE = {
    "every-minute-score-memories-due-for-rescoring": {
        "task": "scoring.tasks.scoring.score_due_memories",
        "schedule": envint("INCREMENTAL_SCORING_INTERVAL", 60),
    },
    "every-15-seconds-resume-stalled-runs": {
        "task": "scoring.tasks.scoring.resume_stalled_runs",
        "schedule": 15,
    },
    "every-minute-resend-lost-alternates": {
        "task": "scoring.tasks.scoring.resend_lost_alternates",
        "schedule": 60,
    },
    "every-10-seconds-dispatch-pending-train-jobs": {
        "task": "scoring.tasks.training.dispatch_train_jobs",
        "schedule": 10,
    },
    "every-10-seconds-poll-running-train-jobs": {
        "task": "scoring.tasks.training.poll_train_jobs",
        "schedule": 10,
    },
}

# --- memscore ---------------------------------------------------------------
# Retries for transient inference-server errors (timeouts, 5xx, dropped
# connections): attempts per call and the first backoff delay in seconds.
MEMSCORE_CALL_ATTEMPTS = envint("MEMSCORE_CALL_ATTEMPTS", 4)
MEMSCORE_RETRY_BACKOFF = float(envstr("MEMSCORE_RETRY_BACKOFF", "0.5"))
# A claimed call's lease: a worker renews it a few times per lease while the
# call waits on the server (a heartbeat), so a killed worker's calls are taken
# over about this many seconds after it died, however slow live calls are.
MEMSCORE_CLAIM_SECONDS = envint("MEMSCORE_CLAIM_SECONDS", 60)
# Causal windows: a leave-one-out call asks only for the responses after the
# memory's first appearance (those before it are exactly zero, "unaffected").
# Off (0) only to compare with the naive calls (bench/floor_speed.py).
MEMSCORE_CAUSAL_WINDOWS = envint("MEMSCORE_CAUSAL_WINDOWS", 1) != 0
# An alternate still pending after this long lost its task (a killed worker,
# the broker down) and is sent again: longer than a generation may take.
MEMSCORE_ALTERNATE_LOST_SECONDS = envint("MEMSCORE_ALTERNATE_LOST_SECONDS", 15 * 60)
# Agents may read their API key only from environment variables named with
# this prefix (never DATABASE_URL, SECRET_KEY, ...); empty allows none.
MEMSCORE_AGENT_KEY_ENV_PREFIX = envstr("MEMSCORE_AGENT_KEY_ENV_PREFIX", "MEMSCORE_AGENT_KEY_")
MEMSCORE_RESERVATION_MINUTES = envint("MEMSCORE_RESERVATION_MINUTES", 5)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": envstr("LOG_LEVEL", "INFO")},
    # axes logs every process start and every failed login at INFO.
    "loggers": {"httpx": {"level": "WARNING"}, "httpcore": {"level": "WARNING"}, "axes": {"level": "WARNING"}},
}
