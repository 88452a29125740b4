"""Production settings: `check --deploy` is clean with the README's production
environment, and the secure defaults stay off for a site only on 127.0.0.1.

Each case runs in a subprocess, since settings are read once per process.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

# The README's "Production" section, as a deployment would set it.
PRODUCTION = {
    "DEBUG": "0",
    "SECRET_KEY": "x7Qm2-long-random-production-key-9Zp4vK1sLd8RtYw3NcHe6BjUaGf0",
    "ALLOWED_HOSTS": "memscore.example.org",
    "CSRF_TRUSTED_ORIGINS": "https://memscore.example.org",
    "DATABASE_URL": "postgres://memscore@db.example.org:5432/memscore",
    "REDIS_URL": "redis://redis.example.org:6379/0",
    "SECURE_PROXY_SSL_HEADER": "X-Forwarded-Proto=https",
    "PROXY_COUNT": "1",
    "SECURE_HSTS_INCLUDE_SUBDOMAINS": "1",
    "SECURE_HSTS_PRELOAD": "1",
}
SHOWN = [
    "DEBUG", "SECURE_SSL_REDIRECT", "SESSION_COOKIE_SECURE", "CSRF_COOKIE_SECURE",
    "SECURE_HSTS_SECONDS", "SECURE_PROXY_SSL_HEADER",
]
READ_SETTINGS = (
    "import json, django; django.setup(); from django.conf import settings; "
    f"print(json.dumps({{name: getattr(settings, name) for name in {SHOWN!r}}}))"
)


def _env(tmp_path, **extra):
    """This process's environment without its database, broker or Django
    settings, plus `extra`: what a fresh shell with those variables gives."""
    # DJANGO_ALLOW_ASYNC_UNSAFE: the browser tests set it in this process (Playwright's
    # loop), and check --deploy rightly refuses a deployment that has it.
    drop = {"DATABASE_URL", "REDIS_URL", "SECRET_KEY", "DEBUG", "ALLOWED_HOSTS", "MEMSCORE_HTTPS",
            "DJANGO_ALLOW_ASYNC_UNSAFE", *PRODUCTION, *SHOWN}
    env = {k: v for k, v in os.environ.items() if k not in drop}
    env.update(MEMSCORE_VAR_DIR=str(tmp_path), DJANGO_SETTINGS_MODULE="memscore_site.settings",
               LOG_LEVEL="WARNING", **extra)
    return env


def _manage(tmp_path, *args, **extra):
    return subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=_env(tmp_path, **extra),
                          capture_output=True, text=True, timeout=120)


def _settings(tmp_path, **extra):
    done = subprocess.run([sys.executable, "-c", READ_SETTINGS], cwd=ROOT, env=_env(tmp_path, **extra),
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_it_passes_check_deploy_with_the_documented_production_environment(tmp_path):
    done = _manage(tmp_path, "check", "--deploy", "--fail-level", "WARNING", **PRODUCTION)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "System check identified no issues" in done.stdout
    assert "WARNINGS" not in done.stderr


def test_it_turns_https_on_by_default_for_a_site_on_a_network(tmp_path):
    found = _settings(tmp_path, **PRODUCTION)
    assert found["DEBUG"] is False
    assert found["SECURE_SSL_REDIRECT"] and found["SESSION_COOKIE_SECURE"] and found["CSRF_COOKIE_SECURE"]
    assert found["SECURE_HSTS_SECONDS"] >= 365 * 24 * 3600
    assert found["SECURE_PROXY_SSL_HEADER"] == ["HTTP_X_FORWARDED_PROTO", "https"]


def test_it_keeps_plain_http_for_a_site_only_on_this_machine(tmp_path):
    # What `make demo`, the tests and a fresh checkout run with.
    found = _settings(tmp_path)
    assert not found["SECURE_SSL_REDIRECT"] and not found["SESSION_COOKIE_SECURE"]
    assert not found["CSRF_COOKIE_SECURE"] and found["SECURE_HSTS_SECONDS"] == 0
    assert found["SECURE_PROXY_SSL_HEADER"] is None
    demo = _settings(tmp_path, ALLOWED_HOSTS="localhost,127.0.0.1,[::1],0.0.0.0")
    assert not demo["SECURE_SSL_REDIRECT"]


def test_it_lets_the_environment_switch_each_default(tmp_path):
    found = _settings(tmp_path, **{**PRODUCTION, "MEMSCORE_HTTPS": "0"})
    assert not found["SECURE_SSL_REDIRECT"] and not found["SESSION_COOKIE_SECURE"]
    assert found["SECURE_HSTS_SECONDS"] == 0
    found = _settings(tmp_path, **{**PRODUCTION, "SECURE_SSL_REDIRECT": "0", "SECURE_HSTS_SECONDS": "60"})
    assert not found["SECURE_SSL_REDIRECT"] and found["SESSION_COOKIE_SECURE"]
    assert found["SECURE_HSTS_SECONDS"] == 60
    local = _settings(tmp_path, MEMSCORE_HTTPS="1")
    assert local["SECURE_SSL_REDIRECT"] and local["CSRF_COOKIE_SECURE"]


@pytest.mark.parametrize("value", ["X-Forwarded-Proto", "=https", "X-Forwarded-Proto="])
def test_it_refuses_a_proxy_header_it_cannot_read(tmp_path, value):
    done = _manage(tmp_path, "check", SECURE_PROXY_SSL_HEADER=value)
    assert done.returncode != 0
    assert "SECURE_PROXY_SSL_HEADER" in done.stderr and "HEADER=VALUE" in done.stderr


def test_it_warns_on_todays_gaps_without_the_production_variables(tmp_path):
    # The local defaults are what check --deploy is meant to catch.
    done = _manage(tmp_path, "check", "--deploy", "--fail-level", "WARNING")
    assert done.returncode != 0
    assert "security.W008" in done.stderr and "security.W012" in done.stderr


def test_it_refuses_the_old_name_of_the_snapshot_limit(tmp_path):
    # Ignored without a word, a deployment that raised it would see its larger
    # snapshots refused at the default with no clue why.
    done = _manage(tmp_path, "check", DATA_UPLOAD_MAX_MEMORY_SIZE="500000000")
    assert done.returncode != 0
    assert "DATA_UPLOAD_MAX_MEMORY_SIZE is no longer read" in done.stderr and "SNAPSHOT_MAX_BYTES" in done.stderr


# --- what a site on a network must be given ---------------------------------------

def test_it_refuses_a_site_on_a_network_without_a_secret_key(tmp_path):
    # Each web host would make its own key in var/: sessions and CSRF tokens
    # made on one would fail on the next.
    network = {k: v for k, v in PRODUCTION.items() if k != "SECRET_KEY"}
    done = _manage(tmp_path, "check", **network)
    assert done.returncode != 0
    assert "SECRET_KEY is not set while ALLOWED_HOSTS names memscore.example.org" in done.stderr
    assert "50 or more random characters" in done.stderr
    assert not (tmp_path / "secret_key").exists()
    done = _manage(tmp_path, "check", **{**network, "SECRET_KEY": "k" * 49})
    assert done.returncode != 0 and "SECRET_KEY is too short" in done.stderr
    assert _manage(tmp_path, "check", **{**network, "SECRET_KEY": "k" * 50}).returncode == 0


def test_it_refuses_debug_on_a_network(tmp_path):
    done = _manage(tmp_path, "check", **{**PRODUCTION, "DEBUG": "1"})
    assert done.returncode != 0
    assert "DEBUG is on while ALLOWED_HOSTS names memscore.example.org" in done.stderr
    assert "Set DEBUG=0" in done.stderr
    # A wildcard is a network too.
    done = _manage(tmp_path, "check", **{**PRODUCTION, "ALLOWED_HOSTS": "*", "DEBUG": "1"})
    assert done.returncode != 0 and "DEBUG is on" in done.stderr


@pytest.mark.parametrize("hosts", [None, "localhost,127.0.0.1,[::1],0.0.0.0"])
def test_a_site_on_this_machine_needs_no_secret_key_even_debugging(tmp_path, hosts):
    # The tests, `make serve` on 127.0.0.1, and `make demo` (its ALLOWED_HOSTS).
    extra = {"ALLOWED_HOSTS": hosts} if hosts else {}
    assert _manage(tmp_path, "check", **extra).returncode == 0
    assert len((tmp_path / "secret_key").read_text().strip()) == 64
    found = _settings(tmp_path, DEBUG="1", **extra)
    assert found["DEBUG"] is True and not found["SECURE_SSL_REDIRECT"]


def test_it_refuses_a_negative_proxy_count(tmp_path):
    done = _manage(tmp_path, "check", PROXY_COUNT="-1")
    assert done.returncode != 0 and "PROXY_COUNT=-1 is negative" in done.stderr


@pytest.mark.parametrize("concurrency, workers", [(None, "2"), ("3", "3")])
def test_make_serve_starts_the_documented_number_of_workers(tmp_path, concurrency, workers):
    # gunicorn alone starts one worker unless told; README promises WEB_CONCURRENCY, default 2.
    # A stand-in bin/ records what `make serve` runs, past its migrate and collectstatic.
    for name in ("python", "gunicorn"):
        tool = tmp_path / name
        tool.write_text(f'#!/bin/sh\necho "{name} $*" >> "{tmp_path}/ran"\n')
        tool.chmod(0o755)
    env = {k: v for k, v in os.environ.items() if k != "WEB_CONCURRENCY"}
    if concurrency:
        env["WEB_CONCURRENCY"] = concurrency
    subprocess.run(["make", "-s", "serve", f"BIN={tmp_path}", "BIND=127.0.0.1:1"], cwd=ROOT, env=env, check=True,
                   capture_output=True)
    [gunicorn] = [line for line in (tmp_path / "ran").read_text().splitlines() if line.startswith("gunicorn")]
    assert f"--workers {workers} " in gunicorn + " " and "--bind 127.0.0.1:1" in gunicorn
