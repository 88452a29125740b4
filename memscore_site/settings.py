"""Settings for memscore, read from the environment.

Every default runs on a fresh checkout: SQLite in var/, and an embedded
filesystem broker in var/broker when REDIS_URL is not set.
"""

import os
from pathlib import Path

import dj_database_url

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


SECRET_KEY = envstr("SECRET_KEY") or _local_secret_key()
ALLOWED_HOSTS = [h for h in envstr("ALLOWED_HOSTS", "localhost,127.0.0.1,[::1]").split(",") if h]
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
    "scoring",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.auth.middleware.LoginRequiredMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
]

ROOT_URLCONF = "memscore_site.urls"
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

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
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
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True

# Snapshot uploads can be large (200k tokens of context with ids).
DATA_UPLOAD_MAX_MEMORY_SIZE = envint("DATA_UPLOAD_MAX_MEMORY_SIZE", 200 * 1024 * 1024)
FILE_UPLOAD_MAX_MEMORY_SIZE = DATA_UPLOAD_MAX_MEMORY_SIZE

# --- Cache and Celery ---------------------------------------------------------
REDIS_URL = envstr("REDIS_URL")
# Shared by every web process (e.g. packed heatmaps of finished runs).
if REDIS_URL:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL,
                          "KEY_PREFIX": envstr("CACHE_KEY_PREFIX", "memscore")}}
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
    CELERY_BROKER_URL = "filesystem://"
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
# A worker holding a claimed call must finish it within this many seconds,
# or another worker may take it over (covers SIGKILLed workers).
MEMSCORE_CLAIM_SECONDS = envint("MEMSCORE_CLAIM_SECONDS", 15 * 60)
MEMSCORE_RESERVATION_MINUTES = envint("MEMSCORE_RESERVATION_MINUTES", 5)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": envstr("LOG_LEVEL", "INFO")},
    "loggers": {"httpx": {"level": "WARNING"}, "httpcore": {"level": "WARNING"}},
}
